import { spawn } from "node:child_process";

/** Exit status of a check or reload command. */
export interface CommandResult {
  /** True when the command exited with status 0 within its time limit. */
  ok: boolean;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
}

/** Quotes `text` as one word for a POSIX shell. */
export function shellQuote(text: string): string {
  return `'${text.replaceAll("'", "'\\''")}'`;
}

/** Replaces every `{path}` in a check command with the quoted candidate path. */
export function substitutePath(command: string, path: string): string {
  return command.replaceAll("{path}", shellQuote(path));
}

/**
 * Runs `command` with `shell -c`. The command's output is discarded, not
 * logged, because checks such as `wg-quick strip` print the private key.
 * The command runs in its own process group, and on timeout the whole group
 * is killed with SIGKILL.
 */
export function runShellCommand(
  shell: string,
  command: string,
  timeoutMs: number,
): Promise<CommandResult> {
  return new Promise((resolve) => {
    const child = spawn(shell, ["-c", command], { stdio: "ignore", detached: true });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
      } catch {
        child.kill("SIGKILL");
      }
    }, timeoutMs);
    child.once("error", () => {
      clearTimeout(timer);
      resolve({ ok: false, exitCode: null, signal: null, timedOut: false });
    });
    child.once("exit", (exitCode, signal) => {
      clearTimeout(timer);
      resolve({ ok: exitCode === 0 && !timedOut, exitCode, signal, timedOut });
    });
  });
}

/** Describes a failed command for a log line or an error, without its output. */
export function describeFailure(result: CommandResult, timeoutMs: number): string {
  if (result.timedOut) return `timed out after ${timeoutMs / 1000} s`;
  if (result.signal !== null) return `killed by ${result.signal}`;
  if (result.exitCode === null) return "could not be started";
  return `exited with status ${result.exitCode}`;
}
