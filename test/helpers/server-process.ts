import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const REPO_ROOT = new URL("../../", import.meta.url).pathname;

export interface ServerProcess {
  child: ChildProcess;
  address: string;
  rootToken: string;
  dataDir: string;
  output(): string;
  /** Stops the process with SIGTERM (or the given signal) and waits for it to exit. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * Returns the command that runs the CLI. `npm test` builds dist/ first and sets
 * `KEYWARD_TEST_CLI=dist`, so the many server starts in the suite skip
 * compiling TypeScript (about 2 s per start instead of 6 on two cores).
 * Otherwise the CLI runs from source through tsx, so a test run after an
 * edit never uses a stale build.
 */
export function cliCommand(): string[] {
  if (process.env.KEYWARD_TEST_CLI === "dist") return [join(REPO_ROOT, "dist/cli/main.js")];
  return ["--import", "tsx", join(REPO_ROOT, "src/cli/main.ts")];
}

/** Runs the CLI (see `cliCommand`) and returns the child process. */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  return spawn(process.execPath, [...cliCommand(), ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env },
    stdio: ["pipe", "pipe", "pipe"],
  });
}

/** Runs a CLI command to completion and returns its exit status and output. */
export async function cli(
  args: string[],
  env: NodeJS.ProcessEnv = {},
  stdin?: string,
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const child = runCli(args, env);
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  child.stdin?.end(stdin ?? "");
  const status = await new Promise<number | null>((resolve) => child.on("close", resolve));
  return { status, stdout, stderr };
}

/**
 * Starts `keyward server --dev` on a free loopback port in a data directory
 * (a new temporary one unless given) and waits until it prints its address.
 */
export async function startDevServer(
  options: { dataDir?: string; args?: string[]; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<ServerProcess> {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), "keyward-server-"));
  const child = runCli(
    [
      "server",
      "--dev",
      "--listen",
      "127.0.0.1:0",
      "--data-dir",
      dataDir,
      "--log-level",
      "warn",
      ...(options.args ?? []),
    ],
    options.env,
  );
  let output = "";
  const collect = (chunk: Buffer) => {
    output += chunk.toString();
  };
  child.stdout?.on("data", collect);
  child.stderr?.on("data", collect);

  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const started = await new Promise<{ address: string; rootToken: string }>((resolve, reject) => {
    const timer = setTimeout(
      () =>
        reject(
          new Error(`server did not start within ${options.timeoutMs ?? 30000} ms:\n${output}`),
        ),
      options.timeoutMs ?? 30_000,
    );
    const check = () => {
      const address = /Address:\s+(\S+)/.exec(output)?.[1];
      const rootToken = /Root token:\s+(\S+)/.exec(output)?.[1];
      if (address && rootToken) {
        clearTimeout(timer);
        resolve({ address, rootToken });
      }
    };
    child.stdout?.on("data", check);
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with status ${code} before starting:\n${output}`));
    });
  });

  return {
    child,
    ...started,
    dataDir,
    output: () => output,
    async stop(signal: NodeJS.Signals = "SIGTERM") {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

export interface PlainServerProcess {
  child: ChildProcess;
  address: string;
  output(): string;
  /** Stops the process with SIGTERM (or the given signal) and waits for it to exit. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * Starts `keyward server` without dev mode, with the given flags after
 * `--listen 127.0.0.1:0`, and waits until it prints its address. The server
 * starts sealed (and uninitialised on new storage).
 */
export async function startServerProcess(
  args: string[],
  env: NodeJS.ProcessEnv = {},
  timeoutMs = 30_000,
): Promise<PlainServerProcess> {
  const child = runCli(["server", "--listen", "127.0.0.1:0", ...args], env);
  let output = "";
  const collect = (chunk: Buffer) => {
    output += chunk.toString();
  };
  child.stdout?.on("data", collect);
  child.stderr?.on("data", collect);

  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const address = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`server did not start within ${timeoutMs} ms:\n${output}`)),
      timeoutMs,
    );
    child.stdout?.on("data", () => {
      const match = /listening on (\S+)/.exec(output);
      if (match?.[1]) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with status ${code} before starting:\n${output}`));
    });
  });

  return {
    child,
    address,
    output: () => output,
    async stop(signal: NodeJS.Signals = "SIGTERM") {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}
