import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import SqliteDatabase from "better-sqlite3";
import { certificateWrites } from "../../src/engines/pki/inventory.ts";
import type { CertificateRecord } from "../../src/engines/pki/types.ts";
import { AesGcmBarrier } from "../../src/seal/barrier.ts";
import type { KeyringStore } from "../../src/seal/keyring-store.ts";
import type { Storage } from "../../src/storage/storage.ts";

/** Certificates encrypted by a worker and written to SQLite per transaction. */
const SEED_BATCH_SIZE = 25_000;
const MINUTE_MS = 60 * 1000;
const DAY_MS = 24 * 3600 * 1000;

/** The active barrier key, copied while the server is unsealed, to encrypt seeded values with. */
export interface BarrierKey {
  term: number;
  key: Buffer;
}

/** What every seeded certificate shares, and the notAfter of certificate 0. */
export interface SeedPlan {
  mount: string;
  /** A stored record whose certificate, issuer and role every seeded record copies. */
  template: CertificateRecord;
  /** The notAfter of certificate 0, in milliseconds; certificate `i` expires `i` minutes later. */
  base: number;
}

/** One batch of encrypted rows, packed for transfer from a worker. */
export interface PackedRows {
  /** The storage keys, joined with newlines. */
  keys: string;
  /** The encrypted values, one after another. */
  values: ArrayBuffer;
  /** The end offset of each value in `values`. */
  ends: ArrayBuffer;
}

/** Returns the serial number of seeded certificate `index`: eight octets, in plain hex. */
export function seededSerial(index: number): string {
  return `4b${index.toString(16).padStart(14, "0")}`;
}

/** Returns the common name, also the only DNS SAN, of seeded certificate `index`. */
export function seededName(index: number): string {
  return `host-${String(index).padStart(7, "0")}.scale.example`;
}

/** Builds the record of seeded certificate `index`: the template with its own serial, name and validity. */
export function seededRecord(plan: SeedPlan, index: number): CertificateRecord {
  const notAfter = plan.base + index * MINUTE_MS;
  const name = seededName(index);
  return {
    ...plan.template,
    serialHex: seededSerial(index),
    subject: `CN=${name}`,
    commonName: name,
    sans: [`dns:${name}`],
    notBefore: new Date(notAfter - 90 * DAY_MS).toISOString(),
    notAfter: new Date(notAfter).toISOString(),
  };
}

/** Copies the active barrier key of an unsealed barrier. */
export function copyBarrierKey(barrier: AesGcmBarrier): BarrierKey {
  const active = barrier.openStore().keyring.active;
  return { term: active.term, key: Buffer.from(active.key) };
}

/**
 * Returns a barrier that only encrypts: the real `AesGcmBarrier.encrypt`
 * over a copied key, so seeded values have exactly the format the server
 * reads. It counts no encryptions in the stored keyring, which is fine for
 * a test database.
 */
function encryptingBarrier(key: BarrierKey): AesGcmBarrier {
  const barrier = new AesGcmBarrier(undefined as unknown as Storage);
  const term = { term: key.term, key: key.key, encryptions: 0, storedEncryptions: Infinity };
  barrier.open({ keyring: { active: term } } as unknown as KeyringStore);
  return barrier;
}

/**
 * Encrypts the records of certificates `first` to `end - 1` and their index
 * entries, as the engine writes them (`certificateWrites`), and packs the
 * rows for transfer.
 */
export function encryptBatch(
  plan: SeedPlan,
  key: BarrierKey,
  first: number,
  end: number,
): PackedRows {
  const barrier = encryptingBarrier(key);
  const keys: string[] = [];
  const values: Buffer[] = [];
  for (let index = first; index < end; index += 1) {
    for (const write of certificateWrites(seededRecord(plan, index))) {
      const storageKey = `${plan.mount}/${write.path}`;
      keys.push(storageKey);
      values.push(barrier.encrypt(storageKey, Buffer.from(JSON.stringify(write.value), "utf8")));
    }
  }
  const packed = Buffer.concat(values);
  const ends = new Uint32Array(values.length);
  let offset = 0;
  values.forEach((value, position) => {
    offset += value.length;
    ends[position] = offset;
  });
  // A fresh ArrayBuffer of exactly the packed bytes, which can be transferred.
  const buffer = packed.buffer.slice(packed.byteOffset, packed.byteOffset + packed.byteLength);
  return { keys: keys.join("\n"), values: buffer as ArrayBuffer, ends: ends.buffer };
}

/** Starts a worker thread that runs `pki-seed-worker.ts`, loading TypeScript through tsx. */
function startWorker(plan: SeedPlan, key: BarrierKey): Worker {
  const register = import.meta.resolve("tsx/esm/api");
  const entry = new URL("./pki-seed-worker.ts", import.meta.url).href;
  const source = `import(${JSON.stringify(register)}).then(({ register }) => { register(); return import(${JSON.stringify(entry)}); });`;
  return new Worker(source, { eval: true, workerData: { plan, key } });
}

/** Sends one batch to a worker and resolves with its rows. */
function requestBatch(worker: Worker, first: number, end: number): Promise<PackedRows> {
  return new Promise((resolve, reject) => {
    const onMessage = (rows: PackedRows) => {
      worker.off("error", onError);
      resolve(rows);
    };
    const onError = (error: Error) => {
      worker.off("message", onMessage);
      reject(error);
    };
    worker.once("message", onMessage);
    worker.once("error", onError);
    worker.postMessage({ first, end });
  });
}

/**
 * Writes `count` seeded certificates (see `seededRecord`), each with its
 * index entries, straight into the SQLite file at `path`, one transaction
 * per SEED_BATCH_SIZE certificates. Worker threads encrypt the batches
 * while this thread writes them. The server must be closed, because it
 * holds the file's lock while open. The rows go into the `entries` table
 * of the SQLite schema (`src/storage/sqlite/migrations.ts`). Returns the
 * time taken in milliseconds.
 */
export async function seedCertificates(options: {
  path: string;
  plan: SeedPlan;
  key: BarrierKey;
  count: number;
}): Promise<number> {
  const started = performance.now();
  const { plan, key, count } = options;
  const workers = Array.from({ length: Math.max(1, availableParallelism()) }, () =>
    startWorker(plan, key),
  );
  const database = new SqliteDatabase(options.path);
  try {
    // The file is a test's own, so commits skip the sync to disk.
    database.pragma("synchronous = OFF");
    const insert = database.prepare("insert or replace into entries (key, value) values (?, ?)");
    const writeRows = database.transaction((rows: PackedRows) => {
      const keys = rows.keys.split("\n");
      const values = Buffer.from(rows.values);
      const ends = new Uint32Array(rows.ends);
      let start = 0;
      keys.forEach((storageKey, position) => {
        const end = ends[position]!;
        insert.run(storageKey, values.subarray(start, end));
        start = end;
      });
    });
    const batches: [number, number][] = [];
    for (let first = 0; first < count; first += SEED_BATCH_SIZE) {
      batches.push([first, Math.min(count, first + SEED_BATCH_SIZE)]);
    }
    // Worker `slot` encrypts batches slot, slot + workers, and so on. It encrypts each
    // batch while this thread writes the one before.
    await Promise.all(
      workers.map(async (worker, slot) => {
        const request = (batch: number) => {
          const [first, end] = batches[batch]!;
          return requestBatch(worker, first, end);
        };
        let batch = slot;
        let pending = batch < batches.length ? request(batch) : undefined;
        while (pending !== undefined) {
          const rows = await pending;
          batch += workers.length;
          pending = batch < batches.length ? request(batch) : undefined;
          writeRows(rows);
        }
      }),
    );
  } finally {
    database.close();
    await Promise.all(workers.map((worker) => worker.terminate()));
  }
  return performance.now() - started;
}
