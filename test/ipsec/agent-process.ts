import { type ChildProcess, spawn } from "node:child_process";
import { cliCommand, REPO_ROOT } from "../helpers/server-process.ts";

/** A running `keyward agent`, with its output kept for failure messages. */
export interface AgentProcess {
  child: ChildProcess;
  /** Standard output and error so far: the agent's JSON log lines. */
  output(): string;
  /** Stops the agent with SIGTERM and waits for it to exit. */
  stop(): Promise<void>;
}

/** Starts `keyward agent --config <configPath>` in the test's own network namespace. */
export function startAgent(configPath: string): AgentProcess {
  const child = spawn(process.execPath, [...cliCommand(), "agent", "--config", configPath], {
    cwd: REPO_ROOT,
    env: process.env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const collect = (chunk: Buffer) => {
    output += chunk.toString();
  };
  child.stdout?.on("data", collect);
  child.stderr?.on("data", collect);
  const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
  return {
    child,
    output: () => output,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      await exited;
    },
  };
}
