import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { ManagedKey } from "../../src/keys/types.ts";
import { postgresSkipReason } from "../helpers/postgres.ts";
import {
  ms,
  openPostgresScaleApp,
  openSqliteScaleApp,
  type ScaleApp,
  scaleKeyCount,
  seedKeys,
  storedTemplate,
} from "./scale-app.ts";

/**
 * Listing, searching and using keys in a mount of many keys (1,000,000,
 * or the count in KEYWARD_SCALE_KEYS) must read a number of storage
 * rows bounded by the page, not by the mount. The PostgreSQL run is opt-in
 * with KEYWARD_SCALE_POSTGRES=1, because it starts a private server. It
 * seeds 200,000 keys, or the count in KEYWARD_SCALE_POSTGRES_KEYS: each
 * write there is a round trip to the server, so seeding is several times
 * slower than on SQLite.
 */
const SQLITE_KEYS = scaleKeyCount(1_000_000);
const POSTGRES_KEYS = Number(process.env.KEYWARD_SCALE_POSTGRES_KEYS) || 200_000;

/** Rows a request may read under the mount beyond what its page needs (the index marker, the mount's settings). */
const OVERHEAD_ROWS = 4;

/**
 * Returns the maximum number of rows a search without `limit` may read for `matches` keys: its
 * scans start at 100 rows and double, so the last one reads at most twice
 * the matches before it, or 100.
 */
function unlimitedSearchRows(matches: number): number {
  return 3 * matches + 100 + OVERHEAD_ROWS;
}
const DAY_MS = 24 * 3600 * 1000;
const MINUTE_MS = 60 * 1000;

function keyName(index: number): string {
  return `key-${String(index).padStart(7, "0")}`;
}

/**
 * Builds key number `index` from the template: every tenth key rotates
 * every 30 days, and every hundredth (at 50 modulo 100) is scheduled for
 * deletion, one minute apart from one day after `start` on.
 */
function seededKey(template: ManagedKey, start: number, index: number): ManagedKey {
  const key: ManagedKey = { ...template, name: keyName(index) };
  if (index % 10 === 0) key.autoRotatePeriod = 30 * 24 * 3600;
  if (index % 100 === 50) {
    key.deletionAllowed = true;
    key.deletionDate = new Date(start + DAY_MS + Math.floor(index / 100) * MINUTE_MS).toISOString();
  }
  return key;
}

function runScaleSuite(label: string, count: number, open: () => Promise<ScaleApp>) {
  describe(`transit with ${count} keys on ${label}`, () => {
    let scale: ScaleApp;
    let start = 0;

    /** Sends a GET and returns the response data with the mount's rows read, printing both. */
    async function measured(url: string) {
      scale.storage.reset();
      const started = performance.now();
      const response = await scale.request({ method: "GET", url });
      const elapsed = performance.now() - started;
      assert.equal(response.statusCode, 200, response.body);
      const rows = scale.storage.counts("transit").read;
      console.log(`${label}: GET ${url}: ${ms(elapsed)}, ${rows} rows read under transit/`);
      return { data: JSON.parse(response.body).data, rows };
    }

    before(async () => {
      scale = await open();
      const template = await storedTemplate(scale, "template");
      start = Date.parse(template.createdAt);
      const seeding = await seedKeys(scale, count, (index) => seededKey(template, start, index));
      console.log(`${label}: seeded ${count} keys in ${ms(seeding)}`);
    });

    after(async () => {
      await scale?.close();
    });

    it("pages through names", async () => {
      const first = await measured("/v1/transit/keys?list=true&limit=1000");
      assert.equal(first.data.keys.length, 1000);
      assert.equal(first.data.keys[0], keyName(0));
      assert.equal(first.data.next_after, keyName(999));
      assert.ok(first.rows <= 1001 + OVERHEAD_ROWS, `read ${first.rows} rows`);

      let cursor = first.data.next_after as string;
      const started = performance.now();
      const pages = Math.min(50, Math.floor(count / 1000) - 1);
      for (let page = 0; page < pages; page += 1) {
        scale.storage.reset();
        const response = await scale.request({
          method: "GET",
          url: `/v1/transit/keys?list=true&limit=1000&after=${cursor}`,
        });
        const data = JSON.parse(response.body).data;
        assert.equal(data.keys[0], keyName((page + 1) * 1000));
        assert.ok(scale.storage.counts("transit").read <= 1001 + OVERHEAD_ROWS);
        cursor = data.next_after;
      }
      console.log(`${label}: ${pages} more pages of 1000 in ${ms(performance.now() - started)}`);
    });

    it("finds names by prefix", async () => {
      const middle = Math.floor(count / 2);
      const prefix = keyName(middle).slice(0, -2);
      const found = await measured(`/v1/transit/keys?list=true&prefix=${prefix}`);
      assert.equal(found.data.keys.length, 100);
      assert.ok(found.data.keys.every((name: string) => name.startsWith(prefix)));
      assert.ok(found.rows <= unlimitedSearchRows(100), `read ${found.rows} rows`);

      const page = await measured(`/v1/transit/keys?list=true&prefix=${prefix}&limit=30`);
      assert.equal(page.data.keys.length, 30);
      assert.equal(page.data.next_after, page.data.keys[29]);
      assert.ok(page.rows <= 31 + OVERHEAD_ROWS, `read ${page.rows} rows`);
    });

    it("finds keys by expiry window", async () => {
      // Keys 50, 150, … are deleted one minute apart; ten minutes hold ten keys.
      const firstMinute = Math.floor(count / 200);
      const from = new Date(start + DAY_MS + firstMinute * MINUTE_MS).toISOString();
      const to = new Date(start + DAY_MS + (firstMinute + 10) * MINUTE_MS).toISOString();
      const found = await measured(
        `/v1/transit/keys?list=true&expires_after=${from}&expires_before=${to}`,
      );
      assert.equal(found.data.keys.length, 10);
      assert.equal(found.data.keys[0], keyName(firstMinute * 100 + 50));
      assert.equal(found.data.key_info[found.data.keys[0]].deletion_date, from);
      assert.ok(found.rows <= unlimitedSearchRows(10), `read ${found.rows} rows`);
    });

    it("finds keys by rotation window", async () => {
      const found = await measured(
        "/v1/transit/keys?list=true&rotates_before=2100-01-01T00:00:00Z&limit=100",
      );
      assert.equal(found.data.keys.length, 100);
      assert.ok(found.data.next_after);
      assert.ok(found.rows <= 101 + OVERHEAD_ROWS, `read ${found.rows} rows`);
    });

    it("encrypts with one key", async () => {
      const name = keyName(Math.floor(count / 3));
      for (const attempt of ["first", "cached"]) {
        scale.storage.reset();
        const started = performance.now();
        const response = await scale.request({
          method: "POST",
          url: `/v1/transit/encrypt/${name}`,
          payload: { plaintext: Buffer.from("scale").toString("base64") },
        });
        const elapsed = performance.now() - started;
        assert.equal(response.statusCode, 200, response.body);
        const rows = scale.storage.counts("transit");
        console.log(
          `${label}: encrypt (${attempt}): ${ms(elapsed)}, ${rows.read} rows read and ${rows.written} written under transit/`,
        );
        assert.ok(rows.read <= 2, `read ${rows.read} rows`);
        assert.equal(rows.written, 0);
      }
    });

    it("keeps only used keys in memory", () => {
      const usage = scale.transit.keyCacheUsage;
      const heap = process.memoryUsage().heapUsed;
      console.log(
        `${label}: key cache ${usage.entries} entries, ${usage.chars} characters; heap ${Math.round(heap / 1024 / 1024)} MiB`,
      );
      assert.ok(usage.entries <= 2, `cache holds ${usage.entries} keys`);
    });
  });
}

runScaleSuite("SQLite", SQLITE_KEYS, openSqliteScaleApp);

if (process.env.KEYWARD_SCALE_POSTGRES === "1" && postgresSkipReason() === false) {
  runScaleSuite("PostgreSQL", POSTGRES_KEYS, openPostgresScaleApp);
}
