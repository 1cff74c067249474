/**
 * Keepalive timeout: servants built on the framework report "alive" to
 * their agent over the local channel; the channel code calls
 * InstanceSupervisor.keepalive(), which lands in beat(). When the desired
 * spec enables keepalive and none arrives for `timeoutMs` (counted from the
 * start, or from adoption after an agent restart, then from each beat), the
 * hook asks for a restart with reason "keepalive timeout ...".
 */
import type { ProcessHandle } from "../../process";
import type { HookContext, LifecycleHook } from "./base";

export class KeepaliveHook implements LifecycleHook {
  readonly name = "keepalive";
  private timer: NodeJS.Timeout | undefined;
  private armed: { ctx: HookContext; handle: ProcessHandle; timeoutMs: number } | undefined;
  private lastBeat: number | undefined;

  constructor(private readonly defaultTimeoutMs: number) {}

  async poststart(ctx: HookContext & { handle: ProcessHandle }): Promise<void> {
    this.arm(ctx, ctx.handle);
  }

  async update(ctx: HookContext): Promise<void> {
    if (ctx.handle) this.arm(ctx, ctx.handle);
    else this.disarm();
  }

  async stop(): Promise<void> {
    this.disarm();
  }

  async exited(): Promise<void> {
    this.disarm();
  }

  detach(): void {
    this.disarm();
  }

  /** One keepalive from the servant: restarts the countdown. Ignored when keepalive is not enabled. */
  beat(): void {
    this.lastBeat = Date.now();
    if (this.armed) this.schedule();
  }

  /** When the last keepalive arrived (ms since the epoch), if any. */
  get lastKeepaliveAt(): number | undefined {
    return this.lastBeat;
  }

  private arm(ctx: HookContext, handle: ProcessHandle): void {
    this.disarm();
    const ka = ctx.desired.keepalive;
    if (!ka) return;
    this.armed = { ctx, handle, timeoutMs: ka.timeoutMs ?? this.defaultTimeoutMs };
    this.schedule();
  }

  private schedule(): void {
    const a = this.armed;
    if (!a) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      a.ctx.requestRestart(`keepalive timeout: none received for ${a.timeoutMs} ms`, a.handle);
    }, a.timeoutMs);
  }

  private disarm(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.armed = undefined;
  }
}
