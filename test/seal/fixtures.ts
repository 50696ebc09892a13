import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KeywardError } from "../../src/errors.ts";
import { createSealManager, type SealManagerOptions } from "../../src/seal/seal-manager.ts";
import type { InitResult, SealManager } from "../../src/seal/types.ts";
import { openSqliteStorage } from "../../src/storage/sqlite/index.ts";
import type { Storage } from "../../src/storage/storage.ts";

/** A temporary directory holding one SQLite file, removed by `remove()`. */
export class SealFixture {
  readonly dir: string;
  readonly path: string;
  #open: Storage[] = [];

  private constructor(dir: string) {
    this.dir = dir;
    this.path = join(dir, "keyward.db");
  }

  static async create(): Promise<SealFixture> {
    return new SealFixture(await mkdtemp(join(tmpdir(), "keyward-seal-")));
  }

  /** Opens the SQLite file; `remove()` closes every storage still open. */
  async openStorage(): Promise<Storage> {
    const storage = await openSqliteStorage({ path: this.path });
    this.#open.push(storage);
    return storage;
  }

  /** Opens the file and a new seal manager on it, as a restarted server does. */
  async openManager(
    options?: SealManagerOptions,
  ): Promise<{ storage: Storage; seal: SealManager }> {
    const storage = await this.openStorage();
    return { storage, seal: createSealManager(storage, options) };
  }

  /** Reads the database file and its write-ahead log, which contains the recent writes. */
  async rawBytes(): Promise<Buffer> {
    const parts: Buffer[] = [];
    for (const file of [this.path, `${this.path}-wal`]) {
      try {
        parts.push(await readFile(file));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
      }
    }
    return Buffer.concat(parts);
  }

  async remove(): Promise<void> {
    for (const storage of this.#open) await storage.close();
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** Submits the first `count` shares and returns the final status. */
export async function unsealWith(seal: SealManager, shares: string[], count = shares.length) {
  let status = await seal.status();
  for (const share of shares.slice(0, count)) status = await seal.submitUnsealShare(share);
  return status;
}

/** Initialises with `shares`/`threshold` and unseals with the first `threshold` shares. */
export async function initAndUnseal(
  seal: SealManager,
  shares = 3,
  threshold = 2,
): Promise<InitResult> {
  const result = await seal.init({ shares, threshold });
  await unsealWith(seal, result.keysHex, threshold);
  return result;
}

/** Returns an assert.rejects/throws validator that expects a KeywardError with `code` (and `field` when given). */
export function keywardError(code: string, field?: string) {
  return (error: unknown) => {
    if (!(error instanceof KeywardError)) throw error;
    if (error.code !== code)
      throw new Error(`expected code ${code}, got ${error.code}: ${error.message}`);
    if (field !== undefined && error.field !== field) {
      throw new Error(`expected field ${field}, got ${error.field}`);
    }
    return true;
  };
}

export function text(value: string): Uint8Array {
  return new TextEncoder().encode(value);
}

export function decode(value: Uint8Array | undefined): string | undefined {
  return value === undefined ? undefined : new TextDecoder().decode(value);
}
