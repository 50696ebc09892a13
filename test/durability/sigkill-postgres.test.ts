import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  newAcknowledged,
  verifyAcknowledged,
  writeUntilKilled,
} from "../helpers/acknowledged-writes.ts";
import { type PostgresServer, postgresSkipReason, startPostgres } from "../helpers/postgres.ts";
import { startDevServer } from "../helpers/server-process.ts";

/** Kill rounds; each starts the server, writes under load, and kills it with SIGKILL. */
const ROUNDS = 10;
/** Concurrent writers per round. */
const WRITERS = 4;
const ROOT_TOKEN = "sigkill-postgres-root-token";

describe("durability under SIGKILL on postgresql", { skip: postgresSkipReason() }, () => {
  const dataDir = mkdtempSync(join(tmpdir(), "keyward-sigkill-pg-"));
  let postgres: PostgresServer;
  before(async () => {
    postgres = await startPostgres();
  });
  after(async () => {
    await postgres?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("keeps every acknowledged write", async () => {
    // The data directory holds only the dev-mode unseal key; the data is in
    // PostgreSQL.
    const start = () =>
      startDevServer({
        dataDir,
        args: ["--dev-root-token", ROOT_TOKEN, "--storage", postgres.url],
      });
    const acknowledged = newAcknowledged();
    for (let round = 0; round < ROUNDS; round++) {
      const server = await start();
      await verifyAcknowledged(server, acknowledged);

      const writers = Array.from({ length: WRITERS }, (_, writer) =>
        writeUntilKilled(server, round, writer, acknowledged),
      );
      // Kill at a varying moment: 150 to 650 ms into the load.
      await new Promise((resolve) => setTimeout(resolve, 150 + ((round * 97) % 500)));
      await server.stop("SIGKILL");
      await Promise.all(writers);
    }

    const final = await start();
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
