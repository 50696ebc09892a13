import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from "fastify";
import pino from "pino";
import { buildApp } from "../../src/api/app.ts";
import { Keyward } from "../../src/core/keyward.ts";
import { applyKeyChange } from "../../src/engines/transit/key-index.ts";
import type { TransitService } from "../../src/engines/transit/service.ts";
import type { ManagedKey } from "../../src/keys/types.ts";
import { openPostgresStorage, openSqliteStorage } from "../../src/storage/index.ts";
import type { Storage } from "../../src/storage/storage.ts";
import { CountingStorage } from "../helpers/counting-storage.ts";
import { startPostgres } from "../helpers/postgres.ts";

/** Keys written per transaction while seeding. */
const SEED_BATCH_SIZE = 20_000;

/** The minimum number of keys a scale test seeds, because its searches expect ten keys scheduled for deletion in a window. */
const MIN_SCALE_KEYS = 10_000;

/** Returns the number of keys a scale test seeds: `KEYWARD_SCALE_KEYS` (at least 10,000), or `fallback`. */
export function scaleKeyCount(fallback: number): number {
  const configured = Number(process.env.KEYWARD_SCALE_KEYS);
  if (!Number.isSafeInteger(configured) || configured <= 0) return fallback;
  return Math.max(configured, MIN_SCALE_KEYS);
}

export interface ScaleApp {
  app: FastifyInstance;
  keyward: Keyward;
  storage: CountingStorage;
  transit: TransitService;
  /** Sends a request with the root token. */
  request(options: InjectOptions): Promise<LightMyRequestResponse>;
  close(): Promise<void>;
}

/**
 * Opens Keyward on `storage` behind a row-counting wrapper, initialises and
 * unseals it, and builds the API for inject(). The jobs' interval is one
 * day, so after their run at unseal only the test starts a sweep.
 */
async function openScaleApp(inner: Storage, cleanup: () => Promise<void>): Promise<ScaleApp> {
  const storage = new CountingStorage(inner);
  const logger = pino({ level: process.env.KEYWARD_TEST_LOG ?? "silent" });
  const keyward = await Keyward.open({ storage, logger, jobIntervalMs: 24 * 3600 * 1000 });
  const { rootToken, keysHex } = await keyward.init({ shares: 1, threshold: 1 });
  await keyward.seal.submitUnsealShare(keysHex[0] as string);
  const app = await buildApp({ keyward, logger, maxRequestBytes: 1024 * 1024 });
  await app.ready();
  const transit = keyward.transit("transit");
  if (transit === undefined) throw new Error("the default transit mount is missing");
  // The empty mount's indexes are complete, so seeded keys need no rebuild.
  await transit.prepareIndexes();
  return {
    app,
    keyward,
    storage,
    transit,
    request: (options) =>
      app.inject({ ...options, headers: { "x-vault-token": rootToken, ...options.headers } }),
    async close() {
      await app.close();
      await keyward.close();
      await cleanup();
    },
  };
}

/** Opens a scale app on a new SQLite file in a temporary folder. */
export async function openSqliteScaleApp(): Promise<ScaleApp> {
  const dataDir = mkdtempSync(join(tmpdir(), "keyward-scale-"));
  const storage = await openSqliteStorage({ path: join(dataDir, "keyward.db") });
  return openScaleApp(storage, async () => rmSync(dataDir, { recursive: true, force: true }));
}

/** Opens a scale app on a database of a private PostgreSQL server started for it. */
export async function openPostgresScaleApp(): Promise<ScaleApp> {
  const server = await startPostgres();
  const storage = await openPostgresStorage({ url: server.url });
  return openScaleApp(storage, () => server.stop());
}

/**
 * Writes `count` keys straight through the barrier, SEED_BATCH_SIZE per
 * transaction, each with its index entries as the engine writes them.
 * `make` returns key number `index`. Returns the time taken in milliseconds.
 */
export async function seedKeys(
  scale: ScaleApp,
  count: number,
  make: (index: number) => ManagedKey,
): Promise<number> {
  const started = performance.now();
  const barrier = scale.keyward.seal.barrier;
  for (let first = 0; first < count; first += SEED_BATCH_SIZE) {
    const end = Math.min(count, first + SEED_BATCH_SIZE);
    await barrier.transaction(async (tx) => {
      for (let index = first; index < end; index += 1) {
        const key = make(index);
        await applyKeyChange(tx, "transit", key.name, undefined, key);
      }
    });
  }
  return performance.now() - started;
}

/**
 * Creates key `name` through the API and returns it as stored, to copy
 * under other names while seeding. The copies share its key material,
 * which is fine for tests that measure storage access.
 */
export async function storedTemplate(scale: ScaleApp, name: string): Promise<ManagedKey> {
  const created = await scale.request({
    method: "POST",
    url: `/v1/transit/keys/${name}`,
    payload: { type: "aes256-gcm96" },
  });
  if (created.statusCode !== 200) throw new Error(`creating the template failed: ${created.body}`);
  const stored = await scale.keyward.seal.barrier.get(`transit/keys/${name}`);
  if (stored === undefined) throw new Error("the template key is not stored");
  return JSON.parse(Buffer.from(stored).toString("utf8")) as ManagedKey;
}

/** Formats milliseconds for the timing lines the scale tests print. */
export function ms(milliseconds: number): string {
  return `${milliseconds.toFixed(1)} ms`;
}

/** Returns the value at quantile `q` (0 to 1) of unsorted `values`. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}
