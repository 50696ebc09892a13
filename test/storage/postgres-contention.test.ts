import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { inspect } from "node:util";
import { openPostgresStorage } from "../../src/storage/postgres/index.ts";
import type { Storage } from "../../src/storage/storage.ts";
import { type PostgresServer, postgresSkipReason, startPostgres } from "../helpers/postgres.ts";

/** Storages on one database, each with its own pool, as separate nodes have. */
const NODES = 2;
/**
 * Increments each storage makes, one after the other, as a node's per-key
 * lock runs the changes queued for one key. A storage that loses a
 * conflict retries while the other one starts its next increment at once.
 */
const INCREMENTS_PER_NODE = 25;

function decodeCount(value: Uint8Array | undefined): number {
  assert.ok(value !== undefined, "the counter is missing");
  return Number(Buffer.from(value).toString("utf8"));
}

describe("postgresql storage under contention", { skip: postgresSkipReason() }, () => {
  let server: PostgresServer;
  let storages: Storage[] = [];

  before(async () => {
    server = await startPostgres();
    const url = await server.createDatabase();
    for (let node = 0; node < NODES; node++) storages.push(await openPostgresStorage({ url }));
  });
  after(async () => {
    for (const storage of storages) await storage.close();
    storages = [];
    await server?.stop();
  });

  it("commits every queued increment of one key", async () => {
    const [first] = storages;
    assert.ok(first !== undefined);
    await first.put("counter", Buffer.from("0"));

    const failures: unknown[] = [];
    const incrementQueue = async (storage: Storage) => {
      for (let i = 0; i < INCREMENTS_PER_NODE; i++) {
        try {
          await storage.transaction(async (tx) => {
            const current = decodeCount(await tx.get("counter"));
            await tx.put("counter", Buffer.from(String(current + 1)));
          });
        } catch (error) {
          failures.push(error);
        }
      }
    };
    await Promise.all(storages.map(incrementQueue));

    assert.deepEqual(
      failures.map((error) => inspect(error, { depth: 1 })),
      [],
    );
    assert.equal(decodeCount(await first.get("counter")), NODES * INCREMENTS_PER_NODE);
  });
});
