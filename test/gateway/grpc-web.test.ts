/**
 * gRPC-Web framing: frames, the trailers frame, text mode with several
 * padded base64 pieces, grpc-timeout, and hostile bodies refused with a
 * clear error.
 */
import { expect } from "chai";
import { InvalidArgumentError, Status, UnimplementedError } from "sgridnext";
import {
  FRAME_DATA, FRAME_TRAILERS, decodeGrpcMessage, decodeTextBody, encodeFrame, encodeGrpcMessage, grpcWebMode, parseFrames, parseGrpcTimeout,
  parseTrailers, singleMessage, trailersFrame,
} from "../../gateway/grpc-web";

function thrown(fn: () => unknown): unknown {
  try { fn(); } catch (e) { return e; }
  return undefined;
}

describe("gateway gRPC-Web framing", () => {
  it("knows the content types of both modes", () => {
    expect(grpcWebMode("application/grpc-web")).to.equal("binary");
    expect(grpcWebMode("application/grpc-web+proto; charset=x")).to.equal("binary");
    expect(grpcWebMode("application/grpc-web-text")).to.equal("text");
    expect(grpcWebMode("Application/GRPC-Web-Text+proto")).to.equal("text");
    expect(grpcWebMode("application/json")).to.equal(undefined);
    expect(grpcWebMode(undefined)).to.equal(undefined);
  });

  it("frames messages and trailers and reads them back", () => {
    const body = Buffer.concat([encodeFrame(FRAME_DATA, Buffer.from("one")), encodeFrame(FRAME_DATA, Buffer.alloc(0)), trailersFrame(Status.NOT_FOUND, "no such thing: 100% sure ✓", { "x-extra": "1" })]);
    const frames = parseFrames(body);
    expect(frames.map((f) => f.flag)).to.deep.equal([FRAME_DATA, FRAME_DATA, FRAME_TRAILERS]);
    expect(frames[0]!.payload.toString()).to.equal("one");
    expect(frames[1]!.payload.length).to.equal(0);
    const trailers = parseTrailers(frames[2]!.payload);
    expect(trailers["grpc-status"]).to.equal(String(Status.NOT_FOUND));
    expect(trailers["grpc-message"]).to.equal("no such thing: 100%25 sure %E2%9C%93"); // only % and non-ASCII are escaped
    expect(decodeGrpcMessage(trailers["grpc-message"]!)).to.equal("no such thing: 100% sure ✓");
    expect(trailers["x-extra"]).to.equal("1");
    expect(encodeGrpcMessage("a%b")).to.equal("a%25b");
  });

  it("decodes a text body made of several padded base64 pieces", () => {
    const a = encodeFrame(FRAME_DATA, Buffer.from("ab"));
    const b = encodeFrame(FRAME_DATA, Buffer.from("cde"));
    const text = a.toString("base64") + b.toString("base64") + "\r\n";
    expect(a.toString("base64")).to.match(/=$/); // the case that matters: padding in the middle
    const frames = parseFrames(decodeTextBody(text));
    expect(frames.map((f) => f.payload.toString())).to.deep.equal(["ab", "cde"]);
  });

  it("refuses truncated, compressed, multi-message and non-base64 bodies", () => {
    const ok = encodeFrame(FRAME_DATA, Buffer.from("hello"));
    expect(thrown(() => parseFrames(ok.subarray(0, 3)))).to.be.instanceOf(InvalidArgumentError);
    const short = thrown(() => parseFrames(ok.subarray(0, 7)));
    expect(short).to.be.instanceOf(InvalidArgumentError);
    expect((short as Error).message).to.contain("5 bytes");
    expect(thrown(() => parseFrames(encodeFrame(0x01, Buffer.from("z"))))).to.be.instanceOf(UnimplementedError);
    expect(thrown(() => singleMessage(parseFrames(Buffer.concat([ok, ok]))))).to.be.instanceOf(InvalidArgumentError);
    expect(thrown(() => singleMessage([]))).to.be.instanceOf(InvalidArgumentError);
    expect(singleMessage(parseFrames(ok)).toString()).to.equal("hello");
    expect(thrown(() => decodeTextBody("not*base64"))).to.be.instanceOf(InvalidArgumentError);
    expect(thrown(() => decodeTextBody("abc"))).to.be.instanceOf(InvalidArgumentError);
  });

  it("reads grpc-timeout in every unit and refuses other forms", () => {
    expect(parseGrpcTimeout(undefined)).to.equal(undefined);
    expect(parseGrpcTimeout("2H")).to.equal(7_200_000);
    expect(parseGrpcTimeout("3M")).to.equal(180_000);
    expect(parseGrpcTimeout("10S")).to.equal(10_000);
    expect(parseGrpcTimeout("250m")).to.equal(250);
    expect(parseGrpcTimeout("1500u")).to.equal(2);
    expect(parseGrpcTimeout("5n")).to.equal(1);
    for (const bad of ["10", "S", "1.5S", "123456789S", "-1S"]) expect(thrown(() => parseGrpcTimeout(bad)), bad).to.be.instanceOf(InvalidArgumentError);
  });
});
