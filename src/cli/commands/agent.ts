import type { Command } from "commander";
import { KeywardAgent } from "../../agent/agent.ts";
import { readAgentConfig } from "../../agent/config.ts";
import { createAgentLogger } from "../../agent/logger.ts";
import { LOG_LEVELS, type LogLevel } from "../../config.ts";

interface AgentFlags {
  config: string;
  once?: boolean;
  logLevel?: string;
}

/** Exit status of `keyward agent --once` when the round did not complete. */
const EXIT_ROUND_FAILED = 1;

export function registerAgentCommand(program: Command) {
  program
    .command("agent")
    .description(
      "run the Keyward agent on a device: enrol, then keep the device's credentials installed",
    )
    .requiredOption("--config <file>", "agent config file, JSON (see docs/agent.md)")
    .option(
      "--once",
      "run one round (enrol if needed, fetch the state, install, report) and exit; the exit status is 1 when anything failed",
    )
    .option(
      "--log-level <level>",
      "trace, debug, info, warn, error or silent; overrides log_level in the config file",
    )
    .action(async (flags: AgentFlags) => {
      const config = readAgentConfig(flags.config);
      const level = (flags.logLevel ?? config.logLevel) as LogLevel;
      if (!LOG_LEVELS.includes(level)) {
        throw new Error(
          `invalid --log-level "${flags.logLevel}"; expected one of ${LOG_LEVELS.join(", ")}`,
        );
      }
      const log = createAgentLogger(level);
      const agent = new KeywardAgent({ config, log });
      const controller = new AbortController();
      const stop = (signal: NodeJS.Signals) => {
        log.info({ signal }, "signal received; stopping");
        controller.abort();
      };
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
      try {
        await agent.open();
        if (flags.once) {
          const complete = await agent.runOnce(controller.signal);
          if (!complete) process.exitCode = EXIT_ROUND_FAILED;
        } else {
          await agent.run(controller.signal);
        }
      } finally {
        agent.close();
        process.off("SIGINT", stop);
        process.off("SIGTERM", stop);
      }
    });
}
