/**
 * REST paths from google.api.http annotations through the gateway's HTTP
 * front: a real servant (test/fixtures/protos/demo/library.proto) on port 0
 * behind the real forwarder, its bindings read from the descriptors its own
 * server reflection returns. Path variables (one segment, a nested field,
 * several segments), query parameters typed by field, body "*" or one
 * field, response_body, an additional binding, server streaming; the
 * route's auth and the size limit hold as on every other path; bad input
 * is refused naming the field or parameter.
 */
import * as http from "node:http";
import { expect } from "chai";
import { Application, Communicator, InvalidArgumentError, type DeepPartial, type ServerContext } from "sgridnext";
import { Forwarder, StaticServiceResolver } from "../../gateway/forwarder";
import { HttpFront } from "../../gateway/http-front";
import { compileTemplate } from "../../gateway/http-rules";
import { parseRoutes } from "../../gateway/routes";
import type { Book, CreateBookRequest, GetBookRequest, ListBooksReply, ListBooksRequest, SearchRequest, UpdateBookRequest } from "../gen/demo/library";
import { LibraryServant } from "../gen/demo/library.sgrid";

class Library extends LibraryServant {
  readonly seen: unknown[] = [];
  async getBook(request: GetBookRequest): Promise<DeepPartial<Book>> {
    this.seen.push(request);
    if (request.shelf === "missing") throw new InvalidArgumentError("no such shelf", { field: "shelf" });
    return { name: `shelves/${request.shelf}/books/${request.book}`, title: "T", pages: 10, tags: request.withTags ? ["a", "b"] : [] };
  }
  async listBooks(request: ListBooksRequest): Promise<DeepPartial<ListBooksReply>> {
    this.seen.push(request);
    return { books: Array.from({ length: request.pageSize }, (_, i) => ({ name: `shelves/${request.shelf}/books/${i}`, tags: request.tag })), total: 99 };
  }
  async createBook(request: CreateBookRequest): Promise<DeepPartial<Book>> {
    this.seen.push(request);
    return { ...request.book, name: `shelves/${request.shelf}/books/new` };
  }
  async updateBook(request: UpdateBookRequest): Promise<DeepPartial<Book>> {
    this.seen.push(request);
    return request.book ?? {};
  }
  async *search(request: SearchRequest, ctx: ServerContext): AsyncIterable<DeepPartial<Book>> {
    this.seen.push(request);
    for (let i = 0; i < 3 && !ctx.signal.aborted; i++) yield { title: `${request.query} ${i}` };
  }
  async ping(request: SearchRequest): Promise<DeepPartial<SearchRequest>> {
    return request;
  }
}

describe("gateway HTTP front: REST paths from google.api.http", function () {
  this.timeout(30_000);
  let app: Application;
  let servant: Library;
  let comm: Communicator;
  let forwarder: Forwarder;
  let front: HttpFront;
  let port: number;

  function request(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; text: string; json(): any }> {
    return new Promise((resolve, reject) => {
      const req = http.request({ host: "127.0.0.1", port, method, path, headers: body === undefined ? headers : { "content-type": "application/json", ...headers } }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c)).on("error", reject).on("end", () => {
          const text = Buffer.concat(chunks).toString();
          resolve({ status: res.statusCode!, headers: res.headers, text, json: () => JSON.parse(text) });
        });
      });
      req.on("error", reject);
      req.end(body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body));
    });
  }

  before(async () => {
    servant = new Library();
    app = new Application({ handleSignals: false, app: "Test", server: "Lib", adapters: { LibraryObj: "127.0.0.1:0" } });
    app.addServant("LibraryObj", servant);
    await app.start();
    const backend = app.adapters()[0]!.endpoint.port;
    comm = new Communicator();
    const table = new StaticServiceResolver({ "demo.library.v1.Library": `Test.Lib.LibraryObj@tcp -h 127.0.0.1 -p ${backend}` });
    forwarder = new Forwarder({ communicator: comm, services: table, reportToServiceMonitor: false });
    front = new HttpFront({ forwarder, communicator: comm, services: () => table.services() });
    port = await front.listen("127.0.0.1", 0);
  });

  beforeEach(() => front.setRoutes(parseRoutes("")));

  after(async () => {
    await front.shutdown(500);
    forwarder.close();
    comm.close();
    await app.stop(500);
  });

  it("GET with path variables and typed query parameters", async () => {
    const r = await request("GET", "/v1/shelves/fiction/books/42?with_tags=true");
    expect(r.status, r.text).to.equal(200);
    expect(r.json()).to.deep.include({ name: "shelves/fiction/books/42", title: "T", pages: 10, tags: ["a", "b"] });
    expect(servant.seen.at(-1)).to.deep.equal({ shelf: "fiction", book: 42, withTags: true });
    // JSON names work for query parameters too; a percent-encoded slash stays in a one-segment value.
    const encoded = await request("GET", "/v1/shelves/a%2Fb/books/1?withTags=false");
    expect(encoded.json().name).to.equal("shelves/a/b/books/1");
  });

  it("an additional binding with a custom verb reaches the same method", async () => {
    const r = await request("GET", "/v2/shelves/poetry/books/7:fetch");
    expect(r.status, r.text).to.equal(200);
    expect(r.json().name).to.equal("shelves/poetry/books/7");
  });

  it("response_body answers with that field; repeated query parameters make a list", async () => {
    const r = await request("GET", "/v1/shelves/s/books?page_size=2&tag=x&tag=y");
    expect(r.status, r.text).to.equal(200);
    expect(r.json()).to.deep.equal([
      { name: "shelves/s/books/0", title: "", pages: 0, inPrint: false, tags: ["x", "y"] },
      { name: "shelves/s/books/1", title: "", pages: 0, inPrint: false, tags: ["x", "y"] },
    ]);
  });

  it("POST with body: a field, the path variable beside it", async () => {
    const r = await request("POST", "/v1/shelves/s9/books", { title: "Dune", pages: 412, in_print: true });
    expect(r.status, r.text).to.equal(200);
    expect(r.json()).to.deep.include({ name: "shelves/s9/books/new", title: "Dune", pages: 412, inPrint: true });
    expect(servant.seen.at(-1)).to.deep.include({ shelf: "s9" });
  });

  it("PATCH with a nested variable over several segments", async () => {
    const r = await request("PATCH", "/v1/shelves/s1/books/b2", { title: "New title" });
    expect(r.status, r.text).to.equal(200);
    expect(r.json()).to.deep.include({ name: "shelves/s1/books/b2", title: "New title" });
  });

  it("body \"*\" with a server-streaming method: newline-delimited JSON", async () => {
    const r = await request("POST", "/v1/books:search", { query: "sand" });
    expect(r.status, r.text).to.equal(200);
    expect(r.headers["content-type"]).to.equal("application/x-ndjson");
    expect(r.text.trim().split("\n").map((l) => JSON.parse(l).result.title)).to.deep.equal(["sand 0", "sand 1", "sand 2"]);
  });

  it("refuses what does not fit, naming the field or parameter, before the servant sees it", async () => {
    const before = servant.seen.length;
    const badNumber = await request("GET", "/v1/shelves/s/books/not-a-number");
    expect(badNumber.status).to.equal(400);
    expect(badNumber.json().field).to.equal("book");
    const badBool = await request("GET", "/v1/shelves/s/books/1?with_tags=maybe");
    expect(badBool.status).to.equal(400);
    expect(badBool.json()).to.deep.include({ error: "INVALID_ARGUMENT", field: "with_tags" });
    const unknownParam = await request("GET", "/v1/shelves/s/books/1?colour=red");
    expect(unknownParam.status).to.equal(400);
    expect(unknownParam.json().message).to.contain('has no field "colour"');
    const badBody = await request("POST", "/v1/shelves/s/books", { pages: "many" });
    expect(badBody.status).to.equal(400);
    expect(badBody.json().field).to.equal("book.pages");
    expect(servant.seen.length, "no refused request reached the servant").to.equal(before);
  });

  it("an unmapped path is 404, a mapped path with another verb 501 naming the verbs it takes; the servant's own errors keep their status", async () => {
    const none = await request("GET", "/v2/anything");
    expect(none.status).to.equal(404);
    const wrongVerb = await request("DELETE", "/v1/shelves/s/books");
    expect(wrongVerb.status).to.equal(501);
    expect(wrongVerb.headers.allow).to.contain("GET").and.contain("POST");
    const servantError = await request("GET", "/v1/shelves/missing/books/1");
    expect(servantError.status).to.equal(400);
    expect(servantError.json()).to.deep.include({ message: "no such shelf", field: "shelf" });
  });

  it("the route's bearer token and size limit hold on REST paths", async () => {
    front.setRoutes(parseRoutes("routes:\n  - service: demo.library.v1.Library\n    auth: { bearer: [k3y] }\n    maxMessageBytes: 32\n"));
    expect((await request("GET", "/v1/shelves/s/books/1")).status).to.equal(401);
    expect((await request("GET", "/v1/shelves/s/books/1", undefined, { authorization: "Bearer k3y" })).status).to.equal(200);
    const big = await request("POST", "/v1/shelves/s/books", { title: "x".repeat(100) }, { authorization: "Bearer k3y" });
    expect(big.status).to.equal(413);
    front.setRoutes(parseRoutes("routes:\n  - service: demo.echo.v1.*\n"));
    const hidden = await request("GET", "/v1/shelves/s/books/1");
    expect(hidden.status).to.equal(501);
    expect(hidden.json().message).to.contain("not exposed");
  });

  it("compiles templates and refuses ones that do not parse, naming them", () => {
    const t = compileTemplate("/v1/{name=projects/*/locations/**}:run");
    expect(t.regex.test("/v1/projects/p/locations/a/b:run")).to.equal(true);
    expect(t.regex.test("/v1/projects/p:run")).to.equal(false);
    expect(t.variables).to.deep.equal([{ path: "name", multi: true }]);
    for (const bad of ["v1/x", "/v1/{a", "/v1/{a}}", "/v1/x{a}", "/v1/{a}:{b}", "/v1/{1a}", "/v1//x", "/v1/x:"]) {
      expect(() => compileTemplate(bad), bad).to.throw(TypeError, bad);
    }
  });
});
