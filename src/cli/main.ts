import { Command } from "commander";
import { VERSION } from "../version.ts";
import { ApiError } from "./client.ts";
import { registerAgentCommand } from "./commands/agent.ts";
import { registerAuditCommands } from "./commands/audit.ts";
import { registerOperatorCommands } from "./commands/operator.ts";
import { registerPathCommands } from "./commands/paths.ts";
import { registerServerCommand } from "./commands/server.ts";
import { registerStatusCommand } from "./commands/status.ts";

/** Exit status of a command that failed, as Vault's CLI uses it. */
export const EXIT_ERROR = 1;

function buildProgram(): Command {
  const program = new Command("keyward")
    .description("Keyward: network key management with a Vault-compatible API")
    .version(VERSION)
    .showHelpAfterError()
    .configureOutput({ outputError: (text, write) => write(text) });
  registerServerCommand(program);
  registerStatusCommand(program);
  registerOperatorCommands(program);
  registerPathCommands(program);
  registerAuditCommands(program);
  registerAgentCommand(program);
  return program;
}

/** Prints a one-line error and exits non-zero. */
function fail(error: unknown): never {
  if (error instanceof ApiError) {
    const code = error.code ? ` (${error.code})` : "";
    process.stderr.write(`Error: ${error.message}${code} [HTTP ${error.status}]\n`);
  } else {
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`Error: ${message.split("\n")[0]}\n`);
  }
  process.exit(EXIT_ERROR);
}

buildProgram()
  .parseAsync(process.argv)
  .catch((error: unknown) => fail(error));
