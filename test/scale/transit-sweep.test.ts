import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { ManagedKey } from "../../src/keys/types.ts";
import {
  ms,
  openSqliteScaleApp,
  quantile,
  type ScaleApp,
  seedKeys,
  storedTemplate,
} from "./scale-app.ts";

/**
 * The automatic rotation sweep over many due keys (100,000, or the
 * count in KEYWARD_SCALE_SWEEP_KEYS) must rotate every one of them
 * while encrypt requests keep being served between its batches.
 */
const DUE_KEYS = Number(process.env.KEYWARD_SCALE_SWEEP_KEYS) || 100_000;
const HOUR_MS = 3600 * 1000;

function keyName(index: number): string {
  return `due-${String(index).padStart(7, "0")}`;
}

describe(`rotation sweep over ${DUE_KEYS} due keys`, () => {
  let scale: ScaleApp;

  before(async () => {
    scale = await openSqliteScaleApp();
    const template = await storedTemplate(scale, "hot");
    // Rotated every hour, last two hours ago: every seeded key is due.
    const lastRotatedAt = new Date(Date.now() - 2 * HOUR_MS).toISOString();
    const due = (index: number): ManagedKey => ({
      ...template,
      name: keyName(index),
      autoRotatePeriod: 3600,
      lastRotatedAt,
    });
    const seeding = await seedKeys(scale, DUE_KEYS, due);
    console.log(`seeded ${DUE_KEYS} due keys in ${ms(seeding)}`);
  });

  after(async () => {
    await scale?.close();
  });

  it("rotates all while encrypts run", async () => {
    let sweeping = true;
    const started = performance.now();
    const sweep = scale.transit.rotateDueKeys().finally(() => {
      sweeping = false;
    });

    const latencies: number[] = [];
    const plaintext = Buffer.from("during the sweep").toString("base64");
    while (sweeping) {
      const sent = performance.now();
      const response = await scale.request({
        method: "POST",
        url: "/v1/transit/encrypt/hot",
        payload: { plaintext },
      });
      assert.equal(response.statusCode, 200, response.body);
      if (sweeping) latencies.push(performance.now() - sent);
    }
    const summary = await sweep;
    const duration = performance.now() - started;

    console.log(
      `sweep rotated ${summary.count} keys in ${ms(duration)}; ${latencies.length} encrypts during it, ` +
        `latency p50 ${ms(quantile(latencies, 0.5))}, p99 ${ms(quantile(latencies, 0.99))}, ` +
        `max ${ms(Math.max(...latencies))}`,
    );
    assert.equal(summary.count, DUE_KEYS);
    assert.equal(summary.failed, 0);
    assert.ok(latencies.length > 0, "no encrypt request completed during the sweep");
  });

  it("leaves no key due", async () => {
    const due = await scale.request({
      method: "GET",
      url: `/v1/transit/keys?list=true&rotates_before=${new Date().toISOString()}`,
    });
    assert.equal(due.statusCode, 200, due.body);
    assert.deepEqual(JSON.parse(due.body).data.keys, []);

    const read = await scale.request({ method: "GET", url: `/v1/transit/keys/${keyName(0)}` });
    assert.equal(JSON.parse(read.body).data.latest_version, 2);
    const last = await scale.request({
      method: "GET",
      url: `/v1/transit/keys/${keyName(DUE_KEYS - 1)}`,
    });
    assert.equal(JSON.parse(last.body).data.latest_version, 2);
  });

  it("keeps the cache to keys in use", () => {
    const usage = scale.transit.keyCacheUsage;
    console.log(`key cache ${usage.entries} entries, ${usage.chars} characters`);
    assert.ok(usage.entries <= 3, `cache holds ${usage.entries} keys`);
  });
});
