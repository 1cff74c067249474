#!/usr/bin/env node
/**
 * `sgrid-tools`: the build-time half of the `sgrid` command, for service
 * projects that depend on sgridnext-tools only (`gen` and `package`). The
 * platform's `sgrid` registers the same commands.
 */
import { Command, CommanderError } from "commander";
import { SgridError } from "sgridnext";
import { registerGen, registerPackage } from "./commands";

const pkg = require("../package.json") as { version: string };

export function buildToolsProgram(): Command {
  const program = new Command();
  program.name("sgrid-tools").description("Sgrid build tools: generate code from .proto files, package a server for upload").version(pkg.version);
  program.exitOverride();
  program.enablePositionalOptions();
  registerGen(program);
  registerPackage(program);
  return program;
}

/** Parses argv and runs the command; a failure prints one line and sets exit code 1. */
export async function runCommand(program: Command, argv: string[]): Promise<void> {
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode;
      return;
    }
    if (err instanceof SgridError) {
      process.stderr.write(`${program.name()}: ${err.message}\n`);
    } else {
      process.stderr.write(`${program.name()}: ${(err as Error)?.stack ?? String(err)}\n`);
    }
    process.exitCode = 1;
  }
}

if (require.main === module) void runCommand(buildToolsProgram(), process.argv);
