/**
 * The upload progress line: redrawn in place on a terminal (throttled, ending
 * with the final state on its own line), and silent anywhere else so CI logs
 * get no progress spam.
 */
import { expect } from "chai";
import { Writable } from "node:stream";
import { Progress } from "../../cli/progress";

function sink(tty: boolean): { stream: NodeJS.WriteStream; written: () => string } {
  let text = "";
  const w = new Writable({ write(chunk: Buffer, _enc, cb) { text += chunk.toString(); cb(); } });
  (w as unknown as { isTTY: boolean }).isTTY = tty;
  return { stream: w as unknown as NodeJS.WriteStream, written: () => text };
}

describe("upload progress display", () => {
  it("redraws one line on a terminal and ends it with the final state", () => {
    const s = sink(true);
    const p = new Progress("uploading Demo.HelloServer", 4 * 1024 * 1024, s.stream);
    p.update(0);
    for (let i = 1; i <= 16; i++) p.update(i * 256 * 1024); // in one tick: throttled, but the last (100%) is always drawn
    p.done();
    p.done();
    const frames = s.written().split("\r\x1b[K").filter(Boolean);
    expect(frames.length).to.be.within(3, 4);
    expect(frames[0]).to.match(/^uploading Demo\.HelloServer 0% 0 B \/ 4\.00 MiB \(.*\/s\)$/);
    expect(frames[frames.length - 1]).to.match(/^uploading Demo\.HelloServer 100% 4\.00 MiB \/ 4\.00 MiB \(.*\/s\)\n$/);
    expect(s.written().split("\n")).to.have.length(2);
  });

  it("writes nothing when the stream is not a terminal", () => {
    const s = sink(false);
    const p = new Progress("uploading", 1000, s.stream);
    for (let i = 0; i <= 1000; i += 100) p.update(i);
    p.done();
    expect(s.written()).to.equal("");
  });
});
