import type { Storage } from "../storage/storage.ts";
import type { KeyringStore } from "./keyring-store.ts";
import { generateRootKey, splitRootKey } from "./root-key.ts";
import { createSealConfig, type SealConfig, validateShareCounts } from "./seal-config.ts";
import {
  type CreatedSeal,
  type ReplacedShares,
  SealManagerBase,
  type SealManagerOptions,
} from "./seal-manager-base.ts";
import type { InitRequest, InitResult, SealManager } from "./types.ts";

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

  /** Replaces the root key with a new one split into the new shares; the keyring is re-encrypted under it. */
  protected async replaceShares(
    store: KeyringStore,
    shares: number,
    threshold: number,
  ): Promise<ReplacedShares> {
    const config = createSealConfig(shares, threshold);
    const rootKey = generateRootKey();
    let result: InitResult;
    try {
      result = await splitRootKey(rootKey, config);
      await store.replaceRootKey(rootKey, config);
    } catch (error) {
      rootKey.fill(0);
      throw error;
    }
    return { config, result };
  }
}
