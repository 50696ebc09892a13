import assert from "node:assert/strict";
import { existsSync, readFileSync, renameSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import { startDevServer } from "../helpers/server-process.ts";

function seqs(path: string): number[] {
  return readFileSync(path, "utf8")
    .trim()
    .split("\n")
    .map((line) => (JSON.parse(line) as { seq: number }).seq);
}

describe("audit file rotation by signal", () => {
  it("reopens the file on SIGHUP", async () => {
    const server = await startDevServer();
    try {
      const headers = { "x-vault-token": server.rootToken, "content-type": "application/json" };
      const logPath = join(server.dataDir, "audit.log");
      const rotatedPath = `${logPath}.1`;
      const enabled = await fetch(`${server.address}/v1/sys/audit/file`, {
        method: "POST",
        headers,
        body: JSON.stringify({ type: "file", options: { file_path: logPath } }),
      });
      assert.equal(enabled.status, 204, await enabled.text());
      await fetch(`${server.address}/v1/sys/mounts`, { headers });

      renameSync(logPath, rotatedPath);
      server.child.kill("SIGHUP");
      // The server reopens asynchronously; wait for the new file's first record.
      for (let attempt = 0; attempt < 100 && !existsSync(logPath); attempt += 1) {
        await fetch(`${server.address}/v1/sys/mounts`, { headers });
        await delay(50);
      }
      assert.ok(existsSync(logPath), "no new audit file after SIGHUP");

      const older = seqs(rotatedPath);
      const newer = seqs(logPath);
      assert.equal(newer[0], (older.at(-1) ?? 0) + 1);
      const lastOld = JSON.parse(readFileSync(rotatedPath, "utf8").trim().split("\n").at(-1)!);
      assert.equal(lastOld.type, "checkpoint");
    } finally {
      await server.stop();
    }
  });
});
