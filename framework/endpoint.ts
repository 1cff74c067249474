/**
 * Endpoints and the two string forms that name them.
 *
 * Tars form: `Demo.HelloServer.GreeterObj@tcp -h 127.0.0.1 -p 10000 -t 3000:sgrid -h 10.0.0.2 -p 10001`
 *   - the protocol word is `tcp` or `grpc` (gRPC, the default), `ssl` (gRPC over TLS),
 *     `sgrid` (native framed TCP) or `sgrids` (native over TLS);
 *   - `-h host` and `-p port` are required, `-t timeout` (ms, ignored: deadlines are per call)
 *     and `-w weight` are optional.
 * Short form: `host:port,host:port`, each optionally prefixed with `grpc://`, `grpcs://`,
 *   `sgrid://` or `sgrids://`; IPv6 hosts in brackets (`[::1]:10000`).
 *
 * A string without `@` and without `:` is an Obj name to be resolved through the registry.
 */
import { EndpointParseError } from "./errors";

export type Protocol = "grpc" | "sgrid";

export interface Endpoint {
  readonly host: string;
  readonly port: number;
  readonly protocol: Protocol;
  readonly tls: boolean;
  /** Relative weight for weighted balancing; default 100. */
  readonly weight: number;
  /** Node the endpoint lives on, when known from the registry. */
  readonly node?: string;
}

export interface ParsedProxyTarget {
  /** The Obj name, when given (`Demo.HelloServer.GreeterObj`). */
  readonly obj?: string;
  /** Explicit endpoints; empty when the Obj is to be resolved through the registry. */
  readonly endpoints: Endpoint[];
}

const OBJ_RE = /^[A-Za-z_][\w-]*\.[A-Za-z_][\w-]*\.[A-Za-z_][\w-]*$/;

const keyCache = new WeakMap<object, string>();

/** `host:port`, with brackets around an IPv6 host (`[::1]:9500`). */
export function formatHostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Stable key for an endpoint: `grpc://host:port` (cached per endpoint object: it is on the call path). */
export function endpointKey(ep: Pick<Endpoint, "protocol" | "host" | "port" | "tls">): string {
  let key = keyCache.get(ep);
  if (key === undefined) {
    const scheme = ep.protocol + (ep.tls ? "s" : "");
    key = `${scheme}://${formatHostPort(ep.host, ep.port)}`;
    if (Object.isFrozen(ep)) keyCache.set(ep, key);
  }
  return key;
}

export function makeEndpoint(host: string, port: number, protocol: Protocol = "grpc", extra: Partial<Endpoint> = {}): Endpoint {
  return Object.freeze({ host, port, protocol, tls: extra.tls ?? false, weight: extra.weight ?? 100, ...(extra.node ? { node: extra.node } : {}) });
}

function parsePort(text: string | undefined, whole: string, allowZero = false): number {
  if (text === undefined || !/^\d+$/.test(text)) throw new EndpointParseError(`endpoint "${whole}": port "${text ?? ""}" is not a number`);
  const port = Number(text);
  if (port < (allowZero ? 0 : 1) || port > 65535) throw new EndpointParseError(`endpoint "${whole}": port ${port} is out of range 1-65535`);
  return port;
}

const WORDS: Record<string, { protocol: Protocol; tls: boolean }> = {
  tcp: { protocol: "grpc", tls: false },
  grpc: { protocol: "grpc", tls: false },
  ssl: { protocol: "grpc", tls: true },
  grpcs: { protocol: "grpc", tls: true },
  sgrid: { protocol: "sgrid", tls: false },
  sgrids: { protocol: "sgrid", tls: true },
};

/** Parses one Tars-form endpoint (`tcp -h host -p port [-t ms] [-w weight]`). */
export function parseTarsEndpoint(text: string): Endpoint {
  const parts = text.trim().split(/\s+/);
  const word = (parts.shift() ?? "").toLowerCase();
  const kind = WORDS[word];
  if (!kind) throw new EndpointParseError(`endpoint "${text.trim()}": unknown protocol "${word}" (expected tcp, grpc, ssl, sgrid or sgrids)`);
  let host: string | undefined;
  let port: number | undefined;
  let weight = 100;
  for (let i = 0; i < parts.length; i += 2) {
    const flag = parts[i];
    const value = parts[i + 1];
    if (value === undefined) throw new EndpointParseError(`endpoint "${text.trim()}": option ${flag} has no value`);
    switch (flag) {
      case "-h": host = value; break;
      case "-p": port = parsePort(value, text.trim()); break;
      case "-t": if (!/^\d+$/.test(value)) throw new EndpointParseError(`endpoint "${text.trim()}": timeout "${value}" is not a number`); break;
      case "-w": {
        if (!/^\d+$/.test(value)) throw new EndpointParseError(`endpoint "${text.trim()}": weight "${value}" is not a number`);
        weight = Number(value);
        break;
      }
      default: throw new EndpointParseError(`endpoint "${text.trim()}": unknown option "${flag}"`);
    }
  }
  if (!host) throw new EndpointParseError(`endpoint "${text.trim()}": missing -h host`);
  if (port === undefined) throw new EndpointParseError(`endpoint "${text.trim()}": missing -p port`);
  return makeEndpoint(host, port, kind.protocol, { tls: kind.tls, weight });
}

/** Parses one short-form endpoint (`[scheme://]host:port`). */
export function parseHostPort(text: string, defaultProtocol: Protocol = "grpc", allowZeroPort = false): Endpoint {
  const whole = text.trim();
  let rest = whole;
  let kind = { protocol: defaultProtocol, tls: false };
  const m = /^([a-z]+):\/\/(.*)$/i.exec(rest);
  if (m) {
    const k = WORDS[m[1]!.toLowerCase()];
    if (!k || m[1]!.toLowerCase() === "tcp" || m[1]!.toLowerCase() === "ssl") {
      throw new EndpointParseError(`endpoint "${whole}": unknown scheme "${m[1]}" (expected grpc, grpcs, sgrid or sgrids)`);
    }
    kind = k;
    rest = m[2]!;
  }
  let host: string;
  let portText: string | undefined;
  if (rest.startsWith("[")) {
    const close = rest.indexOf("]");
    if (close < 0) throw new EndpointParseError(`endpoint "${whole}": unclosed "[" in IPv6 address`);
    host = rest.slice(1, close);
    if (rest[close + 1] !== ":") throw new EndpointParseError(`endpoint "${whole}": missing ":port"`);
    portText = rest.slice(close + 2);
  } else {
    const colon = rest.lastIndexOf(":");
    if (colon < 0) throw new EndpointParseError(`endpoint "${whole}": missing ":port"`);
    host = rest.slice(0, colon);
    portText = rest.slice(colon + 1);
  }
  if (!host || /[\s/@]/.test(host)) throw new EndpointParseError(`endpoint "${whole}": bad host "${host}"`);
  return makeEndpoint(host, parsePort(portText, whole, allowZeroPort), kind.protocol, { tls: kind.tls });
}

/**
 * Parses what `stringToProxy` accepts: an Obj name, `Obj@tars endpoints`, or
 * a short `host:port,...` list. Throws EndpointParseError with the offending
 * part named.
 */
export function parseProxyTarget(target: string): ParsedProxyTarget {
  if (typeof target !== "string") throw new TypeError("proxy target must be a string");
  const text = target.trim();
  if (!text) throw new EndpointParseError("empty proxy target");
  const at = text.indexOf("@");
  if (at >= 0) {
    const obj = text.slice(0, at).trim();
    if (!OBJ_RE.test(obj)) throw new EndpointParseError(`proxy target "${text}": "${obj}" is not an App.Server.Obj name`);
    const list = text.slice(at + 1);
    const endpoints = list.split(":").filter((s) => s.trim() !== "").map((s) => parseTarsEndpoint(s));
    if (endpoints.length === 0) throw new EndpointParseError(`proxy target "${text}": no endpoint after "@"`);
    return { obj, endpoints };
  }
  if (OBJ_RE.test(text)) return { obj: text, endpoints: [] };
  if (!text.includes(":")) throw new EndpointParseError(`proxy target "${text}": neither an App.Server.Obj name nor host:port`);
  return { endpoints: text.split(",").filter((s) => s.trim() !== "").map((s) => parseHostPort(s)) };
}

/** True for a well-formed `App.Server.Obj` name. */
export function isObjName(name: string): boolean {
  return OBJ_RE.test(name);
}
