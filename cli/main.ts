#!/usr/bin/env node
/**
 * The `sgrid` command line. Each sub-command reads flags, then `SGRID_*`
 * env, then an optional config file, in that order of precedence.
 */
import { Command, CommanderError } from "commander";
import { SgridError } from "sgridnext";
import { registerAdmin } from "./admin";
import { registerLogin } from "./client";
import { registerConfig } from "./config";
import { registerCreate } from "./create";
import { registerDemo } from "./demo";
import { registerNode } from "./node";
import { registerGen, registerPackage } from "sgridnext-tools";
import { registerPublish, registerRollback } from "./publish";
import { registerRegistry } from "./registry";
import { registerUp } from "./up";

const pkg = require("../../package.json") as { version: string };

export function buildProgram(): Command {
  const program = new Command();
  program.name("sgrid").description("Sgrid: run gRPC services on a fleet of machines").version(pkg.version);
  program.exitOverride();
  // Program options (-V, -h) only before the sub-command, so sub-commands may have their own --version (sgrid package).
  program.enablePositionalOptions();
  registerGen(program);
  registerNode(program);
  registerDemo(program);
  registerCreate(program);
  registerPackage(program);
  registerPublish(program);
  registerRollback(program);
  registerConfig(program);
  registerLogin(program);
  registerRegistry(program);
  registerAdmin(program);
  registerUp(program);
  return program;
}

async function main(): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(process.argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode;
      return;
    }
    if (err instanceof SgridError) {
      process.stderr.write(`sgrid: ${err.message}\n`);
    } else {
      process.stderr.write(`sgrid: ${(err as Error)?.stack ?? String(err)}\n`);
    }
    process.exitCode = 1;
  }
}

/**
 * grpc-js sets the TLS server name to the host even when it is an IP address
 * (`grpcs://10.0.0.5:9500`), and Node then prints DEP0123 on every command.
 * The certificate is still checked against the IP (its subjectAltName); the
 * warning says nothing an operator can act on, so the command line drops
 * that one warning and passes every other on.
 */
function quietIpServerNameWarning(): void {
  const emit = process.emitWarning.bind(process) as (...args: unknown[]) => void;
  process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
    const opts = rest[0];
    const code = typeof opts === "object" && opts !== null ? (opts as { code?: string }).code : rest[1];
    if (code === "DEP0123") return;
    emit(warning, ...rest);
  }) as typeof process.emitWarning;
}

if (require.main === module) {
  quietIpServerNameWarning();
  void main();
}
