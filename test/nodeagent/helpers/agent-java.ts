/**
 * A `java` server package built in the test with javac and jar: a plain
 * JDK HTTP server on SGRID_TARGET_PORT that knows nothing of Sgrid beyond
 * the environment contract. Skipped where no JDK is installed.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { writePackage } from "../../fixtures/packages/tar-builder";

const HELLO_JAVA = `
import com.sun.net.httpserver.HttpServer;
import java.net.InetSocketAddress;

public class Hello {
  public static void main(String[] args) throws Exception {
    String host = System.getenv().getOrDefault("SGRID_TARGET_HOST", "127.0.0.1");
    int port = Integer.parseInt(System.getenv("SGRID_TARGET_PORT"));
    String label = "java " + System.getenv("SGRID_APP") + "." + System.getenv("SGRID_SERVER") + " v" + System.getenv("SGRID_VERSION")
        + " pid " + ProcessHandle.current().pid();
    HttpServer server = HttpServer.create(new InetSocketAddress(host, port), 0);
    server.createContext("/", ex -> {
      byte[] body = label.getBytes();
      ex.sendResponseHeaders(200, body.length);
      ex.getResponseBody().write(body);
      ex.close();
    });
    server.start();
    System.out.println("listening " + label);
  }
}
`;

/** True when java, javac and jar are all on the PATH. */
export function haveJdk(): boolean {
  for (const tool of ["java", "javac", "jar"]) {
    try {
      execFileSync(tool, ["--version"], { stdio: "ignore" });
    } catch {
      return false;
    }
  }
  return true;
}

/** Compiles Hello.java into app.jar and packages it as a `java` server; returns the .tgz bytes. */
export async function javaPackage(dir: string, app: string, server: string, tag: string): Promise<Buffer> {
  const src = fs.mkdtempSync(path.join(dir, "java-src-"));
  fs.writeFileSync(path.join(src, "Hello.java"), HELLO_JAVA);
  execFileSync("javac", ["-d", src, path.join(src, "Hello.java")], { stdio: "pipe" });
  const jar = path.join(src, "app.jar");
  execFileSync("jar", ["--create", "--file", jar, "--main-class", "Hello", "-C", src, "Hello.class"], { stdio: "pipe" });
  const file = await writePackage(dir, `${app}.${server}-${tag}.tgz`, {
    "sgrid.json": JSON.stringify({ app, server, type: "java", entry: "app.jar", version: tag }),
    "app.jar": fs.readFileSync(jar),
  });
  return fs.readFileSync(file);
}
