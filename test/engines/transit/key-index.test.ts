import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { formatIndexTime, nextRotationTime } from "../../../src/engines/transit/key-index.ts";
import { SWEEP_BATCH_SIZE } from "../../../src/engines/transit/lifecycle.ts";
import { KeywardError } from "../../../src/errors.ts";
import { createKey } from "../../../src/keys/index.ts";
import type { MemoryBarrier } from "../../helpers/memory-barrier.ts";
import { createFixture, DAY_MS, HOUR_MS } from "./fixtures.ts";

/** Returns the index entries stored under the mount, as `<index>/<time>/<name>`, sorted. */
function indexEntries(barrier: MemoryBarrier, mount = "transit"): string[] {
  const prefix = `${mount}/index/`;
  return [...barrier.values.keys()]
    .filter((key) => key.startsWith(prefix) && key !== `${prefix}state`)
    .map((key) => key.slice(prefix.length))
    .sort();
}

function at(iso: string): string {
  return formatIndexTime(Date.parse(iso));
}

async function rejectsWith(promise: Promise<unknown>, code: string, field?: string) {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof KeywardError, `expected a KeywardError, got ${String(error)}`);
    assert.equal(error.code, code);
    if (field !== undefined) assert.equal(error.field, field);
    return true;
  });
}

/** Stores a key as a Keyward version without indexes did: the key alone, no index entries. */
async function storeWithoutIndex(barrier: MemoryBarrier, name: string, period: number) {
  const key = createKey(name, "aes256-gcm96", { autoRotatePeriod: period }, new Date());
  await barrier.put(`transit/keys/${name}`, Buffer.from(JSON.stringify(key)));
}

describe("transit key index", () => {
  it("follows every key change", async () => {
    const { service, barrier, clock } = createFixture();
    const start = clock.now().getTime();
    await service.createKey("k", { autoRotatePeriod: "1h" });
    assert.deepEqual(indexEntries(barrier), [`rotation/${formatIndexTime(start + HOUR_MS)}/k`]);

    clock.advance(10 * 60 * 1000);
    await service.rotateKey("k");
    const rotatedAt = clock.now().getTime();
    assert.deepEqual(indexEntries(barrier), [`rotation/${formatIndexTime(rotatedAt + HOUR_MS)}/k`]);

    await service.configureKey("k", { deletionAllowed: true });
    const scheduled = await service.scheduleDeletion("k", { deletionWindowDays: 7 });
    assert.deepEqual(indexEntries(barrier), [`deletion/${at(scheduled.value.deletionDate)}/k`]);

    await service.cancelDeletion("k");
    assert.deepEqual(indexEntries(barrier), [`rotation/${formatIndexTime(rotatedAt + HOUR_MS)}/k`]);

    await service.setKeyState("k", "suspended");
    assert.deepEqual(indexEntries(barrier), []);
  });

  it("indexes a pre-active key from activation", () => {
    const now = new Date("2030-01-01T00:00:00Z");
    const activation = new Date("2030-06-01T00:00:00Z");
    const key = createKey(
      "later",
      "aes256-gcm96",
      { autoRotatePeriod: 3600, activationDate: activation },
      now,
    );
    assert.equal(nextRotationTime(key), activation.getTime());
    const open = createKey(
      "open",
      "aes256-gcm96",
      { autoRotatePeriod: 3600 },
      new Date("2030-01-01T00:00:00Z"),
    );
    assert.equal(nextRotationTime(open), now.getTime() + HOUR_MS);
    assert.equal(nextRotationTime({ ...open, state: "pre-active" }), undefined);
    assert.equal(nextRotationTime({ ...open, autoRotatePeriod: 0 }), undefined);
  });

  it("failed write leaves the index", async () => {
    const { service, barrier } = createFixture();
    await service.createKey("k", { autoRotatePeriod: "1h" });
    const before = indexEntries(barrier);
    barrier.failWrites = true;
    await rejectsWith(service.configureKey("k", { autoRotatePeriod: "2h" }), "storage_failure");
    barrier.failWrites = false;
    assert.deepEqual(indexEntries(barrier), before);
    assert.equal((await service.readKey("k")).autoRotatePeriod, 3600);
  });

  it("deleted key leaves no entries", async () => {
    const { service, barrier, clock } = createFixture();
    await service.createKey("k", { autoRotatePeriod: "1h" });
    await service.configureKey("k", { deletionAllowed: true });
    await service.scheduleDeletion("k", { deletionWindowDays: 7 });
    const summary = await service.deleteDueKeys(new Date(clock.now().getTime() + 8 * DAY_MS));
    assert.equal(summary.count, 1);
    assert.deepEqual(indexEntries(barrier), []);
    assert.equal(barrier.values.has("transit/keys/k"), false);
  });
});

describe("transit key index rebuild", () => {
  it("marks an empty mount complete", async () => {
    const { service, barrier } = createFixture();
    await service.prepareIndexes();
    const marker = JSON.parse(
      Buffer.from(barrier.values.get("transit/index/state") ?? []).toString(),
    );
    assert.deepEqual(marker, { version: 1, complete: true });
  });

  it("indexes keys stored before indexes", async () => {
    const { service, barrier } = createFixture();
    for (let i = 0; i < 1200; i += 1) {
      await storeWithoutIndex(barrier, `old-${String(i).padStart(4, "0")}`, i % 2 === 0 ? 3600 : 0);
    }
    await service.prepareIndexes();
    assert.equal(indexEntries(barrier).length, 600);
    const page = await service.searchKeys({ rotatesBefore: "2100-01-01T00:00:00Z", limit: 5 });
    assert.equal(page.keys.length, 5);
  });

  it("search fails while a long rebuild runs", async () => {
    const { service, barrier } = createFixture();
    await storeWithoutIndex(barrier, "old", 3600);
    // Hold every transaction, so the rebuild outlasts the search's wait.
    let release = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const transaction = barrier.transaction.bind(barrier);
    barrier.transaction = async (work) => {
      await held;
      return transaction(work);
    };
    await rejectsWith(
      service.searchKeys({ rotatesBefore: "2100-01-01T00:00:00Z" }),
      "index_rebuilding",
    );
    release();
    await service.prepareIndexes();
    const found = await service.searchKeys({ rotatesBefore: "2100-01-01T00:00:00Z" });
    assert.deepEqual(found.keys, ["old"]);
  });

  it("resumes after the last indexed key", async () => {
    const { service, barrier } = createFixture();
    await storeWithoutIndex(barrier, "a", 3600);
    await storeWithoutIndex(barrier, "b", 3600);
    // A rebuild stopped after "a": only "b" is indexed when it resumes.
    await barrier.put(
      "transit/index/state",
      Buffer.from(JSON.stringify({ version: 1, complete: false, after: "a" })),
    );
    await service.prepareIndexes();
    assert.deepEqual(
      indexEntries(barrier).map((entry) => entry.split("/")[2]),
      ["b"],
    );
  });
});

describe("transit key search", () => {
  async function withKeys(names: string[]) {
    const fixture = createFixture();
    for (const name of names) await fixture.service.createKey(name);
    return fixture;
  }

  it("pages through names", async () => {
    const { service } = await withKeys(["a", "b", "c", "d", "e"]);
    const first = await service.searchKeys({ limit: 2 });
    assert.deepEqual(first, { keys: ["a", "b"], nextAfter: "b" });
    const second = await service.searchKeys({ limit: 2, after: "b" });
    assert.deepEqual(second, { keys: ["c", "d"], nextAfter: "d" });
    const last = await service.searchKeys({ limit: 2, after: "d" });
    assert.deepEqual(last, { keys: ["e"] });
    const exact = await service.searchKeys({ limit: 5 });
    assert.deepEqual(exact, { keys: ["a", "b", "c", "d", "e"] });
  });

  it("finds names by prefix", async () => {
    const { service } = await withKeys(["pay", "pay-1", "pay.2", "pax", "payz", "pb", "pa_"]);
    assert.deepEqual((await service.searchKeys({ prefix: "pay" })).keys, [
      "pay",
      "pay-1",
      "pay.2",
      "payz",
    ]);
    const page = await service.searchKeys({ prefix: "pay", limit: 2 });
    assert.deepEqual(page, { keys: ["pay", "pay-1"], nextAfter: "pay-1" });
    const next = await service.searchKeys({ prefix: "pay", limit: 2, after: "pay-1" });
    assert.deepEqual(next, { keys: ["pay.2", "payz"] });
    assert.deepEqual((await service.searchKeys({ prefix: "q" })).keys, []);
    // A cursor before the prefix starts at the prefix.
    assert.deepEqual((await service.searchKeys({ prefix: "pay", after: "a", limit: 1 })).keys, [
      "pay",
    ]);
  });

  it("finds keys by deletion window", async () => {
    const { service, clock } = await withKeys(["soon", "later", "never", "__proto__"]);
    for (const name of ["soon", "later", "__proto__"]) {
      await service.configureKey(name, { deletionAllowed: true });
    }
    await service.scheduleDeletion("soon", { deletionWindowDays: 7 });
    await service.scheduleDeletion("__proto__", { deletionWindowDays: 8 });
    await service.scheduleDeletion("later", { deletionWindowDays: 20 });
    const day = (days: number) => new Date(clock.now().getTime() + days * DAY_MS).toISOString();

    const window = await service.searchKeys({ expiresAfter: day(7), expiresBefore: day(20) });
    assert.deepEqual(window.keys, ["soon", "__proto__"]);
    assert.deepEqual(window.keyInfo?.soon, { deletionDate: day(7) });
    assert.deepEqual(Object.keys(window.keyInfo ?? {}), ["soon", "__proto__"]);

    const first = await service.searchKeys({ expiresAfter: day(1), limit: 1 });
    assert.deepEqual(first.keys, ["soon"]);
    assert.ok(first.nextAfter);
    const rest = await service.searchKeys({ expiresAfter: day(1), after: first.nextAfter });
    assert.deepEqual(rest.keys, ["__proto__", "later"]);
    assert.equal(rest.nextAfter, undefined);
  });

  it("finds keys by rotation window", async () => {
    const { service, clock } = createFixture();
    await service.createKey("hourly", { autoRotatePeriod: "1h" });
    await service.createKey("daily", { autoRotatePeriod: "24h" });
    await service.createKey("manual");
    const start = clock.now().getTime();
    const found = await service.searchKeys({
      rotatesAfter: new Date(start).toISOString(),
      rotatesBefore: new Date(start + 2 * HOUR_MS).toISOString(),
    });
    assert.deepEqual(found.keys, ["hourly"]);
    assert.deepEqual(found.keyInfo?.hourly, {
      nextRotationDate: new Date(start + HOUR_MS).toISOString(),
    });
    const all = await service.searchKeys({ rotatesBefore: "2100-01-01T00:00:00Z" });
    assert.deepEqual(all.keys, ["hourly", "daily"]);
  });

  it("rejects invalid parameters", async () => {
    const { service } = await withKeys(["a"]);
    const cases: [Parameters<typeof service.searchKeys>[0], string][] = [
      [{ limit: 0 }, "limit"],
      [{ limit: 1001 }, "limit"],
      [{ limit: 1.5 }, "limit"],
      [{ prefix: "a/b" }, "prefix"],
      [{ prefix: "x".repeat(129) }, "prefix"],
      [{ after: "a b" }, "after"],
      [{ expiresAfter: "yesterday" }, "expires_after"],
      [{ expiresBefore: "2030-02-30T00:00:00Zx" }, "expires_before"],
      [
        { expiresAfter: "2031-01-01T00:00:00Z", expiresBefore: "2030-01-01T00:00:00Z" },
        "expires_before",
      ],
      [
        { rotatesAfter: "2030-01-01T00:00:00Z", expiresBefore: "2031-01-01T00:00:00Z" },
        "rotates_after",
      ],
      [{ rotatesBefore: "2031-01-01T00:00:00Z", prefix: "a" }, "prefix"],
      [{ rotatesBefore: "2031-01-01T00:00:00Z", after: "a" }, "after"],
    ];
    for (const [query, field] of cases) {
      await rejectsWith(service.searchKeys(query), "invalid_field", field);
    }
  });
});

describe("transit sweeps in batches", () => {
  it("rotates more keys than one batch", async () => {
    const { service, clock } = createFixture();
    const total = 2 * SWEEP_BATCH_SIZE + 7;
    for (let i = 0; i < total; i += 1) {
      await service.createKey(`k${String(i).padStart(4, "0")}`, { autoRotatePeriod: "1h" });
    }
    await service.createKey("manual");
    clock.advance(HOUR_MS);
    const summary = await service.rotateDueKeys(clock.now());
    assert.equal(summary.count, total);
    assert.equal(summary.failed, 0);
    assert.equal(summary.names.length, 100);
    assert.equal((await service.readKey("k0000")).latestVersion, 2);
    assert.equal(
      (await service.readKey(`k${String(total - 1).padStart(4, "0")}`)).latestVersion,
      2,
    );
    assert.equal((await service.rotateDueKeys(clock.now())).count, 0);
  });

  it("repairs a stale index entry", async () => {
    const { service, barrier, clock } = createFixture();
    await service.createKey("k", { autoRotatePeriod: "1h" });
    await service.prepareIndexes();
    // An entry that matches no key, and one for a key that is not due.
    const past = formatIndexTime(clock.now().getTime() - DAY_MS);
    await barrier.put(`transit/index/rotation/${past}/ghost`, new Uint8Array(0));
    await barrier.put(`transit/index/rotation/${past}/k`, new Uint8Array(0));
    const summary = await service.rotateDueKeys(clock.now());
    assert.equal(summary.count, 0);
    assert.deepEqual(indexEntries(barrier), [
      `rotation/${formatIndexTime(clock.now().getTime() + HOUR_MS)}/k`,
    ]);
  });

  it("leaves the cache to keys in use", async () => {
    const { service, clock } = createFixture();
    for (let i = 0; i < 150; i += 1) {
      await service.createKey(`k${i}`, { autoRotatePeriod: "1h" });
    }
    // Creating a key caches it; a fresh service starts with an empty cache.
    const before = service.keyCacheUsage.entries;
    clock.advance(HOUR_MS);
    await service.rotateDueKeys(clock.now());
    assert.ok(service.keyCacheUsage.entries <= before);
    assert.equal((await service.readKey("k7")).latestVersion, 2);
  });
});
