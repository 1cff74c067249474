#!/usr/bin/env node
/**
 * `sgrid-tools`: the build-time half of the `sgrid` command, for service
 * projects that depend on sgridnext-tools only (`gen` and `package`). The
 * platform's `sgrid` registers the same commands.
 */
import { Command } from "commander";
import { registerGen, registerPackage, runCommand } from "./commands";

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

if (require.main === module) void runCommand(buildToolsProgram(), process.argv);
