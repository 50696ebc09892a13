import { spawnSync } from "node:child_process";
import type { TestContext } from "node:test";

/** True when the test suite runs in CI, where a missing peer program is a failure. */
export const IN_CI = process.env.CI === "true";

/** Returns true when `program` is on PATH. */
export function hasProgram(program: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${program}`], { stdio: "ignore" }).status === 0;
}

/**
 * Skips the test when a peer program is missing, printing what was skipped.
 * In CI (`CI=true`) a missing peer fails the test instead.
 * Returns true when the program is available.
 */
export function requirePeer(t: TestContext, program: string): boolean {
  if (hasProgram(program)) return true;
  const message = `peer program "${program}" is not installed (scripts/install-peers.sh installs it)`;
  if (IN_CI) throw new Error(message);
  console.log(`# skipped: ${t.name}: ${message}`);
  t.skip(message);
  return false;
}
