// Bundles what `sgrid node` runs into one file, dist/cli/agent.bundle.js
// (cli/agent-bundle.ts says why and how `sgrid` picks it), with esbuild.
//
// The bundle is dist/cli/main.js with everything the agent loads: the
// platform's dist, sgridnext, grpc-js, pino, commander, @bufbuild/protobuf.
// What the agent only loads once it needs it stays a require at run time,
// resolved from the module that asks for it, as before: the other sub-
// commands, zod, tar, prom-client, OpenTelemetry, reflection's
// descriptors (@bufbuild/protobuf's main and wkt parts), grpc-js's proto
// loader (LAZY below). yaml is bundled: the agent's --config file needs it
// at start, and its ~70 modules loaded one by one would make the start as
// hot as before (below its require, it is initialised only then). A bundled package file that uses __dirname gets the
// directory it has at run time (grpc-js's channelz and ORCA protos, pino's
// worker), found through the package that depends on it.
//
// Next to the bundle, agent.bundle.inputs.json lists its first-party inputs
// (relative to dist/cli), so a build (or `sgrid`) can tell when one is newer
// than the bundle; the bundle is skipped when none is.
const fs = require("node:fs");
const path = require("node:path");

const root = path.resolve(__dirname, "..");
const outDir = path.join(root, "dist/cli");
const { AGENT_BUNDLE, AGENT_BUNDLE_INPUTS, bundleIsStale } = require(path.join(outDir, "agent-bundle.js"));
const outFile = path.join(outDir, AGENT_BUNDLE);
const inputsFile = path.join(outDir, AGENT_BUNDLE_INPUTS);

/** (importer, specifier) pairs the agent requires only on demand: left to run time. */
const LAZY = [
  [/^dist\/cli\/main\.js$/, (spec) => spec.startsWith("./") && spec !== "./node" && spec !== "./agent-v8"],
  [/^dist\/nodeagent\//, (spec) => spec === "zod" || spec === "tar"],
  [/^tools\/dist\/commands\.js$/, (spec) => spec === "./codegen" || spec === "./package/build-package"],
  [/^framework\/dist\/metrics\.js$/, (spec) => spec === "prom-client"],
  [/^framework\/dist\/tracing\/tracing\.js$/, (spec) => spec === "@opentelemetry/api"],
  [/^framework\/dist\/(contract\/manifest|transport\/sgrid\/options)\.js$/, (spec) => spec === "zod"],
  [/^framework\/dist\/config\/config-loader\.js$/, (spec) => spec === "yaml"],
  [/^framework\/dist\/reflection\//, (spec) => spec === "@bufbuild/protobuf" || spec === "@bufbuild/protobuf/wkt"],
  [/node_modules\/@grpc\/grpc-js\//, (spec) => spec === "@grpc/proto-loader"],
];

const rel = (file) => path.relative(root, file).split(path.sep).join("/");

function packageOf(file) {
  const m = /^(.*node_modules\/)((?:@[^/]+\/)?[^/]+)\//.exec(file.split(path.sep).join("/"));
  return m ? { name: m[2], dir: m[1] + m[2] } : undefined;
}

function bundle(esbuild) {
  /** The first module (absolute path) that imported each bundled node_modules file: how it is found at run time. */
  const importerOf = new Map();
  const J = JSON.stringify;
  /** A JS expression giving `file`'s absolute path where the bundle runs. */
  const fileExpr = (file) => {
    const r = rel(file);
    if (r.startsWith("dist/")) return `require("node:path").join(__sgridBundleDir, ${J(path.relative(outDir, file).split(path.sep).join("/"))})`;
    if (r.startsWith("framework/dist/")) return `require.resolve(${J(`sgridnext/internal/${r.slice("framework/dist/".length).replace(/\.js$/, "")}`)})`;
    if (r === "tools/dist/commands.js") return `require.resolve("sgridnext-tools/commands")`;
    const pkg = packageOf(file);
    const importer = importerOf.get(file);
    if (!pkg || !importer) throw new Error(`bundle-agent: no way to find ${r} at run time`);
    const main = require.resolve(pkg.name, { paths: [path.dirname(importer)] });
    const fromMain = path.relative(path.dirname(main), file).split(path.sep).join("/");
    return `require("node:path").join(require("node:path").dirname(require("node:module").createRequire(${fileExpr(importer)}).resolve(${J(pkg.name)})), ${J(fromMain)})`;
  };
  const plugin = {
    name: "sgrid-agent",
    setup(build) {
      build.onResolve({ filter: /.*/ }, async (args) => {
        if (args.kind === "entry-point" || args.pluginData?.own) return undefined;
        const importer = rel(args.importer);
        if (LAZY.some(([from, spec]) => from.test(importer) && spec(args.path))) {
          return { path: `${importer} -> ${args.path}`, namespace: "sgrid-lazy", pluginData: { importer: args.importer, spec: args.path } };
        }
        const r = await build.resolve(args.path, { kind: args.kind, resolveDir: args.resolveDir, importer: args.importer, pluginData: { own: true } });
        if (r.errors.length > 0 || r.external) return r;
        if (r.path.includes(`${path.sep}node_modules${path.sep}`) && !importerOf.has(r.path)) importerOf.set(r.path, args.importer);
        return r;
      });
      build.onLoad({ filter: /.*/, namespace: "sgrid-lazy" }, (args) => ({
        contents: `module.exports = require("node:module").createRequire(${fileExpr(args.pluginData.importer)})(${J(args.pluginData.spec)});\n`,
        loader: "js",
        resolveDir: outDir,
      }));
      build.onLoad({ filter: /node_modules.*\.js$/ }, async (args) => {
        const text = await fs.promises.readFile(args.path, "utf8");
        if (!/\b__(dirname|filename)\b/.test(text)) return undefined;
        // Looked up when first used (every use here is inside a function), so an idle agent does no resolving for it.
        const own = `var __sgridOwnFile; function __sgridFilename() { return (__sgridOwnFile ??= ${fileExpr(args.path)}); }\n`;
        return { contents: own + text.replace(/\b__filename\b/g, "__sgridFilename()").replace(/\b__dirname\b/g, 'require("node:path").dirname(__sgridFilename())'), loader: "js" };
      });
    },
  };
  return esbuild.build({
    entryPoints: [path.join(outDir, "main.js")],
    outfile: outFile,
    bundle: true,
    platform: "node",
    target: "node20",
    format: "cjs",
    // Not minified: V8 compiles a minified bundle's functions more eagerly (~4 MB more of an idle agent's heap).
    minify: false,
    metafile: true,
    logLevel: "warning",
    // The run-time lookups this plugin writes (require.resolve of sgridnext and the tools) are meant to stay run-time.
    logOverride: { "require-resolve-not-external": "silent" },
    plugins: [plugin],
    // The bundle's own directory, for the run-time paths above (a bundled file's __dirname may be its own, see onLoad).
    banner: { js: "// Generated by scripts/bundle-agent.js from dist/cli/main.js: `sgrid node` in one file (cli/agent-bundle.ts).\nvar __sgridBundleDir = __dirname;" },
  });
}

async function bundleAgent() {
  if (!bundleIsStale(outDir)) return false;
  // esbuild comes with sgridnext-tools (its `package` command bundles too).
  const result = await bundle(require(require.resolve("esbuild", { paths: [path.join(root, "tools")] })));
  const inputs = Object.keys(result.metafile.inputs)
    .filter((f) => !f.startsWith("sgrid-lazy:") && !f.includes("node_modules/"))
    .map((f) => path.relative(outDir, path.resolve(root, f)).split(path.sep).join("/"))
    .concat(path.relative(outDir, __filename).split(path.sep).join("/")); // this script too: a change here makes a new bundle
  fs.writeFileSync(inputsFile, `${JSON.stringify(inputs)}\n`);
  return true;
}

module.exports = { bundleAgent };
