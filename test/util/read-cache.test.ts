import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ReadCache } from "../../src/util/read-cache.ts";

describe("ReadCache", () => {
  it("loads once, then serves the cache", async () => {
    const cache = new ReadCache(10);
    let loads = 0;
    const load = async () => {
      loads += 1;
      return "value";
    };
    assert.equal(await cache.read("a", load), "value");
    assert.equal(await cache.read("a", load), "value");
    assert.equal(loads, 1);
  });

  it("does not cache a missing value", async () => {
    const cache = new ReadCache(10);
    let loads = 0;
    const load = async () => {
      loads += 1;
      return undefined;
    };
    await cache.read("a", load);
    await cache.read("a", load);
    assert.equal(loads, 2);
  });

  it("serves a written value", async () => {
    const cache = new ReadCache(10);
    await cache.read("a", async () => "old");
    cache.written("a", "new");
    assert.equal(await cache.read("a", async () => "storage"), "new");
    cache.written("a", undefined);
    assert.equal(await cache.read("a", async () => "storage"), "storage");
  });

  it("read racing a write fills nothing", async () => {
    const cache = new ReadCache(10);
    let release: () => void = () => undefined;
    const slowRead = cache.read("a", async () => {
      await new Promise<void>((resolve) => {
        release = resolve;
      });
      return "stale";
    });
    cache.forget("a");
    release();
    assert.equal(await slowRead, "stale");
    assert.equal(await cache.read("a", async () => "fresh"), "fresh");
  });

  it("evicts the least recently used", async () => {
    const cache = new ReadCache(2);
    await cache.read("a", async () => "1");
    await cache.read("b", async () => "2");
    await cache.read("a", async () => "unused");
    await cache.read("c", async () => "3");
    assert.equal(await cache.read("a", async () => "reloaded"), "1");
    assert.equal(await cache.read("b", async () => "reloaded"), "reloaded");
  });

  it("evicts by total length", async () => {
    const cache = new ReadCache(100, 10);
    await cache.read("a", async () => "aaaa");
    await cache.read("b", async () => "bbbb");
    await cache.read("c", async () => "cccc");
    assert.equal(cache.size, 2);
    assert.equal(cache.chars, 8);
    assert.equal(await cache.read("a", async () => "storage"), "storage");
  });

  it("drops a value longer than the limit", async () => {
    const cache = new ReadCache(100, 10);
    await cache.read("a", async () => "aaaa");
    await cache.read("big", async () => "x".repeat(11));
    assert.equal(cache.size, 0);
    assert.equal(cache.chars, 0);
  });

  it("refreshes only cached entries", async () => {
    const cache = new ReadCache(10);
    await cache.read("a", async () => "old");
    cache.refreshed("a", "new");
    cache.refreshed("b", "new");
    assert.equal(cache.size, 1);
    assert.equal(await cache.read("a", async () => "storage"), "new");
    assert.equal(await cache.read("b", async () => "storage"), "storage");
    cache.refreshed("a", undefined);
    assert.equal(await cache.read("a", async () => "again"), "again");
  });
});
