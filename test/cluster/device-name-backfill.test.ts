import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import pino from "pino";
import {
  NAME_CLAIMS_BACKFILLED_PATH,
  NAME_CLAIMS_FOLDER,
  nameClaimPath,
} from "../../src/devices/name-claims.ts";
import { DeviceService } from "../../src/devices/service.ts";
import { DeviceStore } from "../../src/devices/store.ts";
import type { DeviceRecord } from "../../src/devices/types.ts";
import { createSealManager } from "../../src/seal/seal-manager.ts";
import type { Barrier } from "../../src/seal/types.ts";
import { openPostgresStorage } from "../../src/storage/index.ts";
import type { Storage } from "../../src/storage/storage.ts";
import type { NameClaim } from "../../src/util/name-claims.ts";
import { type PostgresServer, postgresSkipReason, startPostgres } from "../helpers/postgres.ts";
import { initAndUnseal, unsealWith } from "../seal/fixtures.ts";

const silent = pino({ level: "silent" });

/** Builds a device record as Keyward stored it before name claims existed. */
function legacyDevice(name: string): DeviceRecord {
  const now = new Date().toISOString();
  return {
    name,
    id: randomUUID(),
    tags: {},
    groups: [],
    state: "registered",
    certificates: [],
    bootstrapTokens: [],
    createdAt: now,
    updatedAt: now,
  };
}

/** Runs `work` and returns the error code it rejects with, or "ok". */
async function outcome(work: Promise<unknown>): Promise<string> {
  try {
    await work;
    return "ok";
  } catch (error) {
    return String((error as { code?: string }).code);
  }
}

// Two nodes, each with its own connection pool, barrier and device
// service, share one PostgreSQL database that contains devices stored before
// name claims existed. Creating a device writes the missing claims first,
// so the older devices count as conflicts on both nodes.
describe("device name claims of older devices", { skip: postgresSkipReason() }, () => {
  let postgres: PostgresServer;
  const storages: Storage[] = [];
  let barriers: Barrier[];
  let store: DeviceStore;

  before(async () => {
    postgres = await startPostgres();
    for (const nodeId of ["node-a", "node-b"]) {
      storages.push(await openPostgresStorage({ url: postgres.url, nodeId }));
    }
    const first = createSealManager(storages[0]!);
    const init = await initAndUnseal(first, 1, 1);
    const second = createSealManager(storages[1]!);
    await unsealWith(second, init.keysHex);
    barriers = [first.barrier, second.barrier];
    store = new DeviceStore(first.barrier);
  });
  after(async () => {
    for (const storage of storages) await storage.close();
    await postgres?.stop();
  });

  function node(index: number): DeviceService {
    return new DeviceService({ barrier: barriers[index]!, logger: silent, pki: () => undefined });
  }

  it("rejects case variants of devices without claims", async () => {
    for (const name of ["Legacy-1", "Legacy-2", "Pair-1", "pair-1"]) {
      await store.put(`registry/${name}`, legacyDevice(name));
    }
    assert.deepEqual(await store.list(NAME_CLAIMS_FOLDER), []);

    // Both nodes start the backfill at once, then race to create variants.
    const [a, b] = [node(0), node(1)];
    const attempts = ["legacy-1", "LEGACY-1", "legacy-2", "PAIR-1", "Pair-1"].flatMap((name) => [
      { name, node: a },
      { name, node: b },
    ]);
    const outcomes = await Promise.all(
      attempts.map(({ name, node }) => outcome(node.registry.write(name, {}))),
    );
    // "Pair-1" exists exactly, so writing it updates that device.
    assert.deepEqual(outcomes, [...Array.from({ length: 8 }, () => "already_exists"), "ok", "ok"]);

    assert.deepEqual((await a.registry.list()).sort(), [
      "Legacy-1",
      "Legacy-2",
      "Pair-1",
      "pair-1",
    ]);
    for (const name of ["Legacy-1", "Legacy-2"]) {
      const claim = await store.get<NameClaim>(nameClaimPath(name));
      assert.deepEqual(claim, { id: name });
    }
    // Of two older devices that differ only in case, one owns the claim and the claim lists the other.
    const pairClaim = await store.get<NameClaim & { others?: string[] }>(nameClaimPath("pair-1"));
    const pair = ["Pair-1", "pair-1"];
    assert.ok(pair.includes(String(pairClaim?.id)), JSON.stringify(pairClaim));
    assert.deepEqual(
      pairClaim?.others,
      pair.filter((name) => name !== pairClaim?.id),
    );
    assert.ok((await store.get(NAME_CLAIMS_BACKFILLED_PATH)) !== undefined);
  });

  it("passes a shared claim on when its owner is deleted", async () => {
    const [a, b] = [node(0), node(1)];
    const owner = (await store.get<NameClaim>(nameClaimPath("pair-1")))!.id;
    const other = owner === "Pair-1" ? "pair-1" : "Pair-1";
    await a.registry.delete(owner);
    assert.deepEqual(await store.get(nameClaimPath("pair-1")), { id: other });
    assert.equal(await outcome(b.registry.write("PAIR-1", {})), "already_exists");

    await b.registry.delete(other);
    assert.equal(await store.get(nameClaimPath("pair-1")), undefined);
    assert.equal(await outcome(a.registry.write("PAIR-1", {})), "ok");
  });

  it("frees a claimed name when its device is deleted", async () => {
    const [a, b] = [node(0), node(1)];
    await a.registry.write("Legacy-3", {});
    assert.equal(await outcome(b.registry.write("legacy-3", {})), "already_exists");
    await a.registry.delete("Legacy-3");
    assert.equal(await store.get(nameClaimPath("legacy-3")), undefined);
    assert.equal(await outcome(b.registry.write("legacy-3", {})), "ok");
  });
});
