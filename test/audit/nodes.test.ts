import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { AuditBroker, type AuditBrokerOptions } from "../../src/audit/broker.ts";
import { chainCheckpoint, chainRecord, GENESIS_HASH, recordLine } from "../../src/audit/chain.ts";
import { buildPayload } from "../../src/audit/payload.ts";
import { loadOrCreateKeys } from "../../src/audit/persistence.ts";
import { DEFAULT_SENSITIVE_FIELDS } from "../../src/audit/redact.ts";
import type { AuditRecord, ChainedRecord, ChainHead } from "../../src/audit/types.ts";
import { createSealManager } from "../../src/seal/seal-manager.ts";
import type { Barrier } from "../../src/seal/types.ts";
import { openPostgresStorage } from "../../src/storage/index.ts";
import type { Storage } from "../../src/storage/storage.ts";
import { MemoryBarrier } from "../helpers/memory-barrier.ts";
import { type PostgresServer, postgresSkipReason, startPostgres } from "../helpers/postgres.ts";
import {
  openBroker,
  openSqliteBarrier,
  readLines,
  requestEntry,
  responseEntry,
  type SqliteBarrierFixture,
  silentLogger,
} from "./fixtures.ts";

/** Returns the barrier key of the batch that starts at `seq` in a chain; null names the legacy chain. */
function batchKey(node: string | null, seq: number, device = "store"): string {
  const folder = node === null ? "" : `${node}/`;
  return `sys/audit/store/${device}/${folder}${String(seq).padStart(20, "0")}`;
}

/** Returns a clock that moves one second forward at each call. Brokers that share it interleave their records in time. */
function steppingClock(start = "2024-05-01T00:00:00Z"): () => Date {
  let ms = Date.parse(start);
  return () => {
    ms += 1000;
    return new Date(ms);
  };
}

/** Opens one broker per node id on the same barrier. */
async function openNodes(
  barrier: Barrier,
  nodeIds: string[],
  options: Partial<AuditBrokerOptions> = {},
): Promise<AuditBroker[]> {
  const clock = options.clock ?? steppingClock();
  const brokers: AuditBroker[] = [];
  for (const nodeId of nodeIds) {
    const broker = new AuditBroker({ logger: silentLogger, clock, ...options, barrier, nodeId });
    await broker.open();
    brokers.push(broker);
  }
  return brokers;
}

async function readText(barrier: Barrier, key: string): Promise<string> {
  const value = await barrier.get(key);
  assert.ok(value !== undefined, `a value is stored at ${key}`);
  return Buffer.from(value).toString("utf8");
}

async function writeText(barrier: Barrier, key: string, text: string): Promise<void> {
  await barrier.put(key, Buffer.from(text, "utf8"));
}

function range(count: number, start = 1): number[] {
  return Array.from({ length: count }, (_, index) => start + index);
}

describe("per-node store chains", () => {
  let fixture: SqliteBarrierFixture;
  let a: AuditBroker;
  let b: AuditBroker;

  before(async () => {
    fixture = await openSqliteBarrier();
    [a, b] = (await openNodes(fixture.barrier, ["a", "b"], { checkpointInterval: 10 })) as [
      AuditBroker,
      AuditBroker,
    ];
  });
  after(async () => {
    await a.close();
    await b.close();
    await fixture.close();
  });

  it("keeps one chain per node", async () => {
    await a.logRequest(requestEntry(1));
    await b.logRequest(requestEntry(2));
    assert.ok((await fixture.barrier.get(batchKey("a", 1))) !== undefined);
    assert.ok((await fixture.barrier.get(batchKey("b", 1))) !== undefined);
    const recordA = JSON.parse(await readText(fixture.barrier, batchKey("a", 1))) as AuditRecord;
    const recordB = JSON.parse(await readText(fixture.barrier, batchKey("b", 1))) as AuditRecord;
    assert.equal(recordA.node, "a");
    assert.equal(recordA.request.id, "req-1");
    assert.equal(recordB.node, "b");
    assert.equal(recordB.seq, 1);
  });

  it("writes concurrently without losing records", async () => {
    const writes: Promise<void>[] = [];
    for (const index of range(25, 100)) {
      writes.push(a.logRequest(requestEntry(index)), b.logRequest(requestEntry(index + 100)));
      writes.push(a.logResponse(responseEntry(index)), b.logResponse(responseEntry(index + 100)));
    }
    await Promise.all(writes);

    for (const broker of [a, b]) {
      const result = await broker.verifyStore();
      assert.equal(result.ok, true, JSON.stringify(result.firstBad));
      assert.deepEqual(
        result.nodes.map((chain) => [chain.node, chain.ok, chain.records]),
        [
          ["a", true, 51],
          ["b", true, 51],
        ],
      );
      assert.equal(result.records, 102);
    }

    const found = await a.search({ type: "request", limit: 1000 });
    const ids = new Set((found.records as AuditRecord[]).map((record) => record.request.id));
    for (const index of range(25, 100)) {
      assert.ok(ids.has(`req-${index}`), `req-${index} of node a is found`);
      assert.ok(ids.has(`req-${index + 100}`), `req-${index + 100} of node b is found`);
    }
    assert.equal(found.total, 52);
  });

  it("search merges nodes by time", async () => {
    const { records } = await b.search({ type: "request", limit: 1000 });
    const times = records.map((record) => Date.parse(record.time));
    assert.deepEqual(
      times,
      [...times].sort((x, y) => x - y),
    );
    assert.deepEqual(new Set(records.map((record) => record.node)), new Set(["a", "b"]));
  });

  it("search filters by node", async () => {
    const { records, total } = await a.search({ node: "b", type: "request", limit: 1000 });
    assert.equal(total, 26);
    assert.ok(records.every((record) => record.node === "b"));
    const none = await a.search({ node: "c" });
    assert.equal(none.total, 0);
  });

  it("search rejects an invalid node", async () => {
    await assert.rejects(a.search({ node: "../a" }), { code: "invalid_field", field: "node" });
  });

  it("checkpoints name their node", async () => {
    const { records } = await a.search({ type: "checkpoint", limit: 1000 });
    assert.ok(records.length >= 2);
    assert.ok(records.some((record) => record.node === "a"));
    assert.ok(records.some((record) => record.node === "b"));
    assert.ok(records.every((record) => record.node === "a" || record.node === "b"));
  });
});

describe("per-node tamper evidence", () => {
  let fixture: SqliteBarrierFixture;
  let a: AuditBroker;
  let b: AuditBroker;

  /** Opens nodes a and b on a new file; each writes four requests, one batch each. */
  async function setup(): Promise<void> {
    fixture = await openSqliteBarrier();
    [a, b] = (await openNodes(fixture.barrier, ["a", "b"], { checkpointInterval: 100 })) as [
      AuditBroker,
      AuditBroker,
    ];
    for (const index of range(4)) {
      await a.logRequest(requestEntry(index));
      await b.logRequest(requestEntry(index + 10));
    }
  }

  async function teardown(): Promise<void> {
    await a.close();
    await b.close();
    await fixture.close();
  }

  it("names the node of an edited record", async () => {
    await setup();
    try {
      const key = batchKey("b", 3);
      const text = await readText(fixture.barrier, key);
      await writeText(fixture.barrier, key, text.replace("req-13", "req-99"));

      const result = await a.verifyStore();
      assert.equal(result.ok, false);
      assert.equal(result.firstBad?.node, "b");
      assert.equal(result.firstBad?.seq, 3);
      assert.equal(result.firstBad?.reason, "altered");
      const [chainA, chainB] = result.nodes;
      assert.equal(chainA?.node, "a");
      assert.equal(chainA?.ok, true);
      assert.equal(chainB?.node, "b");
      assert.equal(chainB?.ok, false);
      assert.equal(chainB?.records, 2);
    } finally {
      await teardown();
    }
  });

  it("names the node of a deleted record", async () => {
    await setup();
    try {
      await fixture.barrier.delete(batchKey("a", 2));
      const result = await b.verifyStore();
      assert.equal(result.ok, false);
      assert.equal(result.firstBad?.node, "a");
      assert.equal(result.firstBad?.seq, 2);
      assert.equal(result.firstBad?.reason, "removed");
      assert.equal(result.nodes[1]?.ok, true);
    } finally {
      await teardown();
    }
  });

  it("names the node of swapped records", async () => {
    await setup();
    try {
      const first = await readText(fixture.barrier, batchKey("b", 1));
      const second = await readText(fixture.barrier, batchKey("b", 2));
      await writeText(fixture.barrier, batchKey("b", 1), second);
      await writeText(fixture.barrier, batchKey("b", 2), first);

      const result = await a.verifyStore();
      assert.equal(result.ok, false);
      assert.equal(result.firstBad?.node, "b");
      assert.equal(result.firstBad?.seq, 2);
      assert.equal(result.firstBad?.reason, "reordered");
    } finally {
      await teardown();
    }
  });

  it("names a record moved to another node", async () => {
    await setup();
    try {
      const fromA = await readText(fixture.barrier, batchKey("a", 1));
      const fromB = await readText(fixture.barrier, batchKey("b", 1));
      await writeText(fixture.barrier, batchKey("a", 1), fromB);
      await writeText(fixture.barrier, batchKey("b", 1), fromA);

      const result = await a.verifyStore();
      assert.equal(result.ok, false);
      assert.equal(result.firstBad?.node, "a");
      assert.equal(result.firstBad?.seq, 1);
      assert.equal(result.firstBad?.reason, "altered");
      assert.match(result.firstBad?.detail ?? "", /names node "b", not node "a"/);
      assert.equal(result.nodes[1]?.ok, false);
      assert.equal(result.nodes[1]?.ok === false && result.nodes[1].firstBad.seq, 1);
    } finally {
      await teardown();
    }
  });

  it("names a value changed in storage", async () => {
    await setup();
    try {
      const key = batchKey("b", 2);
      const stored = await fixture.storage.get(key);
      assert.ok(stored !== undefined);
      const changed = Buffer.from(stored);
      changed[changed.length - 1] = (changed[changed.length - 1] ?? 0) ^ 0xff;
      await fixture.storage.put(key, changed);

      const result = await a.verifyStore();
      assert.equal(result.ok, false);
      assert.equal(result.firstBad?.node, "b");
      assert.equal(result.firstBad?.seq, 2);
      assert.equal(result.firstBad?.reason, "altered");
      assert.match(result.firstBad?.detail ?? "", /integrity check/);
      // Search skips the value instead of failing.
      const found = await a.search({ node: "b", type: "request" });
      assert.equal(found.total, 3);
    } finally {
      await teardown();
    }
  });

  it("detects another node's truncated chain", async () => {
    await setup();
    try {
      // Closing writes b's checkpoint (seq 5) and saves its head.
      await b.close();
      await fixture.barrier.delete(batchKey("b", 5));
      await fixture.barrier.delete(batchKey("b", 4));

      const result = await a.verifyStore();
      assert.equal(result.ok, false);
      assert.equal(result.firstBad?.node, "b");
      assert.equal(result.firstBad?.reason, "removed");
      assert.equal(result.firstBad?.seq, 4);
    } finally {
      await teardown();
    }
  });

  it("detects another node's deleted chain", async () => {
    await setup();
    try {
      await b.close();
      for (const seq of range(5)) await fixture.barrier.delete(batchKey("b", seq));

      const result = await a.verifyStore();
      assert.equal(result.ok, false);
      assert.deepEqual(
        result.nodes.map((chain) => chain.node),
        ["a", "b"],
      );
      assert.equal(result.firstBad?.node, "b");
      assert.equal(result.firstBad?.reason, "removed");
      assert.equal(result.firstBad?.seq, 1);
    } finally {
      await teardown();
    }
  });

  it("ends every chain with a checkpoint at close", async () => {
    await setup();
    try {
      await b.close();
      const result = await a.verifyStore();
      assert.equal(result.ok, true);
      const chainB = result.nodes.find((chain) => chain.node === "b");
      assert.equal(chainB?.ok && chainB.unsignedRecords, 0);
      assert.equal(chainB?.ok && chainB.checkpoints, 1);
    } finally {
      await teardown();
    }
  });
});

describe("shared node id", () => {
  it("never overwrites another writer's records", async () => {
    const fixture = await openSqliteBarrier();
    // Both open before either writes, so both start their chain at seq 1.
    const [first, second] = (await openNodes(fixture.barrier, ["same", "same"])) as [
      AuditBroker,
      AuditBroker,
    ];
    try {
      await first.logRequest(requestEntry(1));
      await assert.rejects(second.logRequest(requestEntry(2)), { code: "audit_failure" });
      // The failed write made the device read the chain's tail again.
      await second.logRequest(requestEntry(3));

      const result = await first.verifyStore();
      assert.equal(result.ok, true, JSON.stringify(result.firstBad));
      assert.equal(result.records, 2);
      const { records } = await first.search({ type: "request" });
      assert.deepEqual(
        (records as AuditRecord[]).map((record) => record.request.id),
        ["req-1", "req-3"],
      );
    } finally {
      await first.close();
      await second.close();
      await fixture.close();
    }
  });
});

describe("device table refresh", () => {
  let fixture: SqliteBarrierFixture;
  let a: AuditBroker;
  let b: AuditBroker;

  before(async () => {
    fixture = await openSqliteBarrier();
    [a, b] = (await openNodes(fixture.barrier, ["a", "b"])) as [AuditBroker, AuditBroker];
  });
  after(async () => {
    await a.close();
    await b.close();
    await fixture.close();
  });

  const paths = (broker: AuditBroker) => broker.list().map((entry) => entry.path);

  it("picks up a device enabled on another node", async () => {
    await a.enable("archive", "store", {}, "second store");
    assert.deepEqual(paths(b), ["store"]);
    await b.refresh();
    assert.deepEqual(paths(b), ["store", "archive"]);

    await b.logRequest(requestEntry(1));
    assert.ok((await fixture.barrier.get(batchKey("b", 1, "archive"))) !== undefined);
    const result = await a.verifyStore("archive");
    assert.equal(result.ok, true);
    assert.deepEqual(
      result.nodes.map((chain) => [chain.node, chain.records]),
      [["b", 1]],
    );
  });

  it("keeps requests audited while it opens a device", async () => {
    await a.enable("extra", "store");
    await Promise.all([
      b.refresh(),
      ...range(20, 100).map((index) => b.logRequest(requestEntry(index))),
    ]);
    assert.deepEqual(paths(b), ["store", "archive", "extra"]);
    const result = await b.verifyStore("store");
    assert.equal(result.ok, true);
    assert.equal(result.nodes.find((chain) => chain.node === "b")?.records, 21);
  });

  it("drops a device disabled on another node", async () => {
    await b.logRequest(requestEntry(3));
    await a.disable("extra");
    await b.refresh();
    assert.deepEqual(paths(b), ["store", "archive"]);
    // b's chain of the device ended with its closing checkpoint.
    const prefix = "sys/audit/store/extra/b/";
    const last = (await fixture.barrier.list(prefix)).at(-1);
    assert.ok(last !== undefined);
    const lines = (await readText(fixture.barrier, prefix + last)).split("\n");
    assert.equal((JSON.parse(lines.at(-1) ?? "{}") as ChainedRecord).type, "checkpoint");
    await assert.rejects(b.verifyStore("extra"), { code: "not_found" });
  });

  it("replaces a device enabled again", async () => {
    await a.disable("archive");
    await a.enable("archive", "store", { checkpoint_interval: "7" });
    await b.refresh();
    const entry = b.list().find((device) => device.path === "archive");
    assert.equal(entry?.options.checkpoint_interval, "7");

    const before = (await b.verifyStore("archive")).nodes.find((chain) => chain.node === "b");
    await b.logRequest(requestEntry(2));
    const result = await b.verifyStore("archive");
    assert.equal(result.ok, true, JSON.stringify(result.firstBad));
    const chainB = result.nodes.find((chain) => chain.node === "b");
    assert.equal(chainB?.records, (before?.records ?? 0) + 1);
    // The old device's closing checkpoint comes right before the new record.
    assert.equal(chainB?.checkpoints, 1);
    assert.equal(chainB?.ok && chainB.unsignedRecords, 1);
  });

  it("keeps requests audited while it replaces a device", async () => {
    await a.disable("archive");
    await a.disable("store");
    await a.enable("store", "store");
    await b.refresh();
    await a.disable("store");
    await a.enable("store", "store", { checkpoint_interval: "5" });

    const before = (await a.search({ node: "b", type: "request", limit: 1000 })).total;
    const outcomes = await Promise.allSettled([
      b.refresh(),
      ...range(10, 200).map((index) => b.logRequest(requestEntry(index))),
    ]);
    assert.equal(outcomes[0]?.status, "fulfilled");
    const logged = outcomes.slice(1).filter((outcome) => outcome.status === "fulfilled").length;
    for (const outcome of outcomes.slice(1)) {
      if (outcome.status === "rejected") {
        assert.equal((outcome.reason as { code?: string }).code, "audit_failure");
      }
    }
    const after = (await a.search({ node: "b", type: "request", limit: 1000 })).total;
    // Every request that succeeded has its record: none went unaudited.
    assert.equal(after - before, logged);
    assert.equal((await b.verifyStore()).ok, true);
  });

  it("enable keeps another node's change", async () => {
    await a.enable("from-a", "store");
    await b.enable("from-b", "store");
    await assert.rejects(b.enable("from-a", "store"), { code: "already_exists", field: "path" });
    await a.refresh();
    assert.deepEqual(paths(a), ["store", "from-a", "from-b"]);
  });

  it("disable removes another node's device", async () => {
    await b.disable("from-a");
    await a.refresh();
    assert.deepEqual(paths(a), ["store", "from-b"]);
    await assert.rejects(b.disable("from-a"), { code: "not_found" });
  });

  it("does nothing while closed", async () => {
    const closed = new AuditBroker({ barrier: fixture.barrier, logger: silentLogger, nodeId: "c" });
    await closed.refresh();
    assert.equal(closed.isOpen, false);
  });
});

/** Writes `count` requests in the layout before per-node chains, ending with a checkpoint, and returns the keys. */
async function writeLegacyChain(barrier: Barrier, count: number): Promise<string[]> {
  const keys = await loadOrCreateKeys(barrier);
  const settings = { hmacKey: keys.hmacKey, sensitiveFields: new Set(DEFAULT_SENSITIVE_FIELDS) };
  let head: ChainHead = { seq: 0, hash: GENESIS_HASH };
  const written: string[] = [];
  const store = async (record: ChainedRecord, line: string) => {
    const key = batchKey(null, record.seq);
    await barrier.put(key, Buffer.from(line, "utf8"));
    written.push(key);
    head = { seq: record.seq, hash: record.hash };
  };
  for (const index of range(count)) {
    const time = new Date(Date.parse("2023-01-01T00:00:00Z") + index * 1000);
    const { record, line } = chainRecord(
      buildPayload("request", requestEntry(index + 500), time, settings),
      head,
    );
    await store(record, line);
  }
  const checkpoint = chainCheckpoint(head, "2023-01-01T01:00:00.000Z", keys.signer);
  await store(checkpoint, recordLine(checkpoint));
  await barrier.put("sys/audit/chain/store", Buffer.from(JSON.stringify(head), "utf8"));
  return written;
}

describe("legacy layout", () => {
  it("reads old records as a legacy chain", async () => {
    const fixture = await openSqliteBarrier();
    await writeLegacyChain(fixture.barrier, 3);
    const broker = new AuditBroker({ barrier: fixture.barrier, logger: silentLogger });
    await broker.open();
    try {
      assert.equal(broker.nodeId, "local");
      await broker.logRequest(requestEntry(1));
      await broker.logRequest(requestEntry(2));
      // The node's chain starts at 1 beside the old records, which stay in place.
      assert.ok((await fixture.barrier.get(batchKey("local", 1))) !== undefined);
      assert.ok((await fixture.barrier.get(batchKey(null, 1))) !== undefined);

      const result = await broker.verifyStore();
      assert.equal(result.ok, true, JSON.stringify(result.firstBad));
      assert.deepEqual(
        result.nodes.map((chain) => [chain.node, chain.records, chain.checkpoints]),
        [
          [null, 3, 1],
          ["local", 2, 0],
        ],
      );

      const { records } = await broker.search({ type: "request" });
      assert.deepEqual(
        (records as AuditRecord[]).map((record) => [record.request.id, record.node]),
        [
          ["req-501", undefined],
          ["req-502", undefined],
          ["req-503", undefined],
          ["req-1", "local"],
          ["req-2", "local"],
        ],
      );
    } finally {
      await broker.close();
      await fixture.close();
    }
  });

  it("names the legacy chain of a tampered record", async () => {
    const fixture = await openSqliteBarrier();
    const keys = await writeLegacyChain(fixture.barrier, 3);
    const broker = new AuditBroker({ barrier: fixture.barrier, logger: silentLogger });
    await broker.open();
    try {
      const key = keys[1] as string;
      await writeText(
        fixture.barrier,
        key,
        (await readText(fixture.barrier, key)).replace("req-502", "req-000"),
      );
      const result = await broker.verifyStore();
      assert.equal(result.ok, false);
      assert.equal(result.firstBad?.node, null);
      assert.equal(result.firstBad?.seq, 2);
      assert.equal(result.firstBad?.reason, "altered");
    } finally {
      await broker.close();
      await fixture.close();
    }
  });

  it("detects a truncated legacy chain", async () => {
    const fixture = await openSqliteBarrier();
    const keys = await writeLegacyChain(fixture.barrier, 3);
    const broker = new AuditBroker({ barrier: fixture.barrier, logger: silentLogger });
    await broker.open();
    try {
      await fixture.barrier.delete(keys.at(-1) as string);
      const result = await broker.verifyStore();
      assert.equal(result.ok, false);
      assert.equal(result.firstBad?.node, null);
      assert.equal(result.firstBad?.reason, "removed");
      assert.equal(result.firstBad?.seq, 4);
    } finally {
      await broker.close();
      await fixture.close();
    }
  });

  it("file device continues an old chain head", async () => {
    const fixture = await openBroker();
    const path = join(fixture.dir, "audit.log");
    await fixture.broker.enable("file", "file", { file_path: path });
    for (const index of range(3)) await fixture.broker.logRequest(requestEntry(index));
    await fixture.broker.close();
    // Move the saved head to its key before per-node chains, and empty the file as a rotator would.
    const saved = fixture.barrier.values.get("sys/audit/chain/file/local");
    assert.ok(saved !== undefined);
    fixture.barrier.values.set("sys/audit/chain/file", saved);
    fixture.barrier.values.delete("sys/audit/chain/file/local");
    writeFileSync(path, "");

    await fixture.broker.open();
    await fixture.broker.logRequest(requestEntry(4));
    const [line] = readLines(path);
    const record = JSON.parse(line ?? "{}") as AuditRecord;
    assert.equal(record.seq, 5);
    assert.equal(record.node, "local");
    await fixture.cleanup();
  });
});

describe("audit node id", () => {
  const invalid = ["", "-a", ".", "..", "a/b", "a b", "é", "x".repeat(65)];
  for (const nodeId of invalid) {
    it(`rejects ${JSON.stringify(nodeId.length > 10 ? `${nodeId.slice(0, 10)}…` : nodeId)}`, () => {
      assert.throws(
        () => new AuditBroker({ barrier: new MemoryBarrier(), logger: silentLogger, nodeId }),
        { code: "invalid_field", field: "nodeId" },
      );
    });
  }

  it("accepts letters, digits, dot, dash, underscore", () => {
    const nodeId = "Node-1.eu_west";
    const broker = new AuditBroker({ barrier: new MemoryBarrier(), logger: silentLogger, nodeId });
    assert.equal(broker.nodeId, nodeId);
  });

  it("file records name the node", async () => {
    const fixture = await openBroker({ nodeId: "node-7" });
    const path = join(fixture.dir, "audit.log");
    await fixture.broker.enable("file", "file", { file_path: path });
    await fixture.broker.logRequest(requestEntry(1));
    await fixture.broker.close();
    const records = readLines(path).map((line) => JSON.parse(line) as ChainedRecord);
    await fixture.cleanup();
    assert.deepEqual(
      records.map((record) => [record.type, record.node]),
      [
        ["request", "node-7"],
        ["checkpoint", "node-7"],
      ],
    );
  });
});

const skip = postgresSkipReason();

describe("per-node chains on postgresql", { skip }, () => {
  let server: PostgresServer;
  const storages: Storage[] = [];
  const brokers: AuditBroker[] = [];

  before(async () => {
    server = await startPostgres();
  });
  after(async () => {
    for (const broker of brokers) await broker.close();
    for (const storage of storages) await storage.close();
    await server.stop();
  });

  it("two nodes write and verify one device", async () => {
    const url = await server.createDatabase();
    // Each node has its own connection pool and seal, as two server processes do.
    const barriers: Barrier[] = [];
    let shares: string[] = [];
    for (const nodeId of ["a", "b"]) {
      const storage = await openPostgresStorage({ url });
      storages.push(storage);
      const seal = createSealManager(storage);
      if (shares.length === 0) shares = (await seal.init({ shares: 1, threshold: 1 })).keysHex;
      await seal.submitUnsealShare(shares[0] as string);
      barriers.push(seal.barrier);
      const broker = new AuditBroker({
        barrier: seal.barrier,
        logger: silentLogger,
        nodeId,
        checkpointInterval: 8,
      });
      await broker.open();
      brokers.push(broker);
    }
    const [a, b] = brokers as [AuditBroker, AuditBroker];

    const writes: Promise<void>[] = [];
    for (const index of range(20)) {
      writes.push(a.logRequest(requestEntry(index)), b.logRequest(requestEntry(index + 100)));
    }
    await Promise.all(writes);

    for (const broker of [a, b]) {
      const result = await broker.verifyStore();
      assert.equal(result.ok, true, JSON.stringify(result.firstBad));
      assert.deepEqual(
        result.nodes.map((chain) => [chain.node, chain.records]),
        [
          ["a", 20],
          ["b", 20],
        ],
      );
    }
    assert.equal((await b.search({ type: "request", limit: 1000 })).total, 40);

    await a.enable("archive", "store");
    await b.refresh();
    assert.deepEqual(
      b.list().map((entry) => entry.path),
      ["store", "archive"],
    );

    const key = batchKey("b", 1);
    const text = Buffer.from((await barriers[0]?.get(key)) ?? new Uint8Array()).toString("utf8");
    await barriers[0]?.put(key, Buffer.from(text.replace("req-", "req-x"), "utf8"));
    const tampered = await a.verifyStore();
    assert.equal(tampered.firstBad?.node, "b");
    assert.equal(tampered.firstBad?.seq, 1);
  });
});

describe("store verification result", () => {
  it("lists no chains for an empty device", async () => {
    const fixture = await openBroker();
    const result = await fixture.broker.verifyStore();
    assert.deepEqual(result, {
      ok: true,
      device: "store",
      records: 0,
      checkpoints: 0,
      signaturesChecked: true,
      nodes: [],
    });
    await fixture.cleanup();
  });
});
