import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";

/**
 * Runs `worker` (a TypeScript file that does `count` rounds of some work
 * and prints `count`) with a 1 MB semi-space, so garbage collections
 * interrupt the work often, and fails when it does not finish within
 * `limitMs`. The limit only detects a hang: it is not a timing assertion.
 */
export function assertFinishesUnderFrequentGc(worker: URL, count: number, limitMs: number): void {
  const result = spawnSync(
    process.execPath,
    ["--max-semi-space-size=1", "--import", "tsx", worker.pathname, String(count)],
    { encoding: "utf8", timeout: limitMs, killSignal: "SIGKILL" },
  );
  assert.equal(
    result.signal,
    null,
    `${worker.pathname} did not finish ${count} rounds within ${limitMs} ms: it hung`,
  );
  assert.equal(result.status, 0, result.stderr);
  assert.equal(result.stdout.trim(), String(count));
}
