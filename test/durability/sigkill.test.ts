import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import {
  newAcknowledged,
  verifyAcknowledged,
  writeUntilKilled,
} from "../helpers/acknowledged-writes.ts";
import { startDevServer } from "../helpers/server-process.ts";

/** Kill rounds; each starts the server, writes under load, and kills it with SIGKILL. */
const ROUNDS = 15;
/** Concurrent writers per round. */
const WRITERS = 4;
const ROOT_TOKEN = "sigkill-test-root-token";

describe("durability under SIGKILL", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "keyward-sigkill-"));
  after(() => rmSync(dataDir, { recursive: true, force: true }));

  it("keeps every acknowledged write", async () => {
    const acknowledged = newAcknowledged();
    for (let round = 0; round < ROUNDS; round++) {
      const server = await startDevServer({ dataDir, args: ["--dev-root-token", ROOT_TOKEN] });
      await verifyAcknowledged(server, acknowledged);

      const writers = Array.from({ length: WRITERS }, (_, writer) =>
        writeUntilKilled(server, round, writer, acknowledged),
      );
      // Kill at a varying moment: 150 to 650 ms into the load.
      await new Promise((resolve) => setTimeout(resolve, 150 + ((round * 97) % 500)));
      await server.stop("SIGKILL");
      await Promise.all(writers);
    }

    const final = await startDevServer({ dataDir, args: ["--dev-root-token", ROOT_TOKEN] });
    try {
      await verifyAcknowledged(final, acknowledged);
      assert.ok(
        acknowledged.keys.size >= ROUNDS,
        `too few writes acknowledged: ${acknowledged.keys.size}`,
      );
    } finally {
      await final.stop();
    }
  });
});
