import type { Storage } from "../storage/storage.ts";
import type { KeyringStore } from "./keyring-store.ts";
import { generateRootKey, splitRootKey } from "./root-key.ts";
import { createSealConfig, type SealConfig, validateShareCounts } from "./seal-config.ts";
import {
  type CreatedSeal,
  type NewShares,
  SealManagerBase,
  type SealManagerOptions,
} from "./seal-manager-base.ts";
import type { InitRequest, SealManager } from "./types.ts";

export type { SealManagerOptions } from "./seal-manager-base.ts";

/**
 * Creates the Shamir seal manager for `storage`. It starts sealed;
 * `status()` reads whether the storage is initialised.
 */
export function createSealManager(storage: Storage, options: SealManagerOptions = {}): SealManager {
  return new ShamirSealManager(storage, options);
}

/**
 * The Shamir seal: the root key is split into unseal key shares at
 * initialisation and never stored whole, and a quorum of shares rebuilds
 * it at each unseal.
 */
class ShamirSealManager extends SealManagerBase {
  readonly type = "shamir" as const;
  protected readonly shareNames = { shares: "unseal key", secret: "root key" };

  protected validateInitRequest(request: InitRequest): void {
    validateShareCounts(request.shares, request.threshold);
  }

  protected async createSeal(rootKey: Buffer, request: InitRequest): Promise<CreatedSeal> {
    const config = createSealConfig(request.shares, request.threshold);
    return { config, result: await splitRootKey(rootKey, config), records: [] };
  }

  /** Returns `secret` itself, because the shares rebuild the root key; the keyring's tag checks it. */
  protected async rootKeyFromShares(secret: Buffer): Promise<Buffer> {
    return secret;
  }

  protected keyringNotDecrypted(cause: unknown): unknown {
    return this.wrongShares(cause, "the unseal attempt was reset; submit the shares again");
  }

  protected secretMatches(secret: Buffer, _config: SealConfig, store: KeyringStore): boolean {
    return store.rootKeyEquals(secret);
  }

  /** Creates a new root key split into the new shares. */
  protected async createShares(shares: number, threshold: number): Promise<NewShares> {
    const config = createSealConfig(shares, threshold);
    const rootKey = generateRootKey();
    try {
      return { config, result: await splitRootKey(rootKey, config), secret: rootKey };
    } catch (error) {
      rootKey.fill(0);
      throw error;
    }
  }

  /**
   * Re-encrypts the keyring under the new root key and stores it with the
   * new configuration. The store fails with `sealed` when another node
   * replaced the root key first.
   */
  protected async commitShares(store: KeyringStore, created: NewShares): Promise<void> {
    // The store keeps the copy as its root key; the caller zeroes the original.
    const rootKey = Buffer.from(created.secret);
    try {
      await store.replaceRootKey(rootKey, created.config);
    } catch (error) {
      rootKey.fill(0);
      throw error;
    }
  }
}
