/**
 * Admin commands a servant answers (Tars' "custom commands"): delivered
 * registry -> agent -> servant over the local agent channel, or run in
 * process with `app.runCommand`. A command is a name (`sgrid.viewstatus`)
 * and one argument string; the reply is text (objects are sent as JSON).
 *
 * Names starting with `sgrid.` are reserved for the built-ins.
 */
export type CommandHandler = (args: string) => unknown;

export interface CommandReply {
  ok: boolean;
  /** The reply text when ok. */
  output: string;
  /** The error message when not ok. */
  error: string;
}

const NAME = /^[A-Za-z_][\w.-]{0,99}$/;

export class CommandRegistry {
  private readonly handlers = new Map<string, { handler: CommandHandler; help: string }>();

  /**
   * Registers a command. Throws TypeError for a bad or taken name, or a
   * reserved `sgrid.` name when `builtin` is not set.
   */
  register(name: string, handler: CommandHandler, help = "", builtin = false): void {
    if (typeof name !== "string" || !NAME.test(name)) throw new TypeError(`bad command name ${JSON.stringify(name)}`);
    if (typeof handler !== "function") throw new TypeError(`command ${name}: handler must be a function`);
    if (!builtin && name.startsWith("sgrid.")) throw new TypeError(`command names starting with "sgrid." are reserved (${name})`);
    if (this.handlers.has(name)) throw new TypeError(`command ${name} is already registered`);
    this.handlers.set(name, { handler, help });
  }

  /** Registered names with their help text, sorted. */
  list(): Array<{ name: string; help: string }> {
    return [...this.handlers.entries()].map(([name, h]) => ({ name, help: h.help })).sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Runs a command. Never throws: an unknown name or a failing handler gives ok=false with a message. */
  async run(name: string, args: string): Promise<CommandReply> {
    const entry = this.handlers.get(name);
    if (!entry) {
      return { ok: false, output: "", error: `unknown command "${name}" (known: ${[...this.handlers.keys()].sort().join(", ")}; try sgrid.help)` };
    }
    try {
      const result = await entry.handler(args);
      const output = result === undefined ? "" : typeof result === "string" ? result : JSON.stringify(result, null, 2);
      return { ok: true, output, error: "" };
    } catch (err) {
      return { ok: false, output: "", error: `${name}: ${err instanceof Error ? err.message : String(err)}` };
    }
  }
}
