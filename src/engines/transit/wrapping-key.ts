import { createPrivateKey, createPublicKey, generateKeyPair, type KeyObject } from "node:crypto";
import { promisify } from "node:util";
import { isKeywardError, KeywardError } from "../../errors.ts";
import { sealedError } from "../../seal/keyring-store.ts";
import type { Barrier } from "../../seal/types.ts";
import type { Logger } from "./types.ts";

const generateKeyPairAsync = promisify(generateKeyPair);

/** Modulus size of every mount's wrapping key, in bits, as Vault's transit engine uses. */
export const WRAPPING_KEY_BITS = 4096;

/** The RSA key that import requests wrap their ephemeral AES key for. */
export interface WrappingKey {
  privateKey: KeyObject;
  /** SubjectPublicKeyInfo PEM of the public half. */
  publicKeyPem: string;
  /** Length of an RSA-OAEP ciphertext under the key: the modulus length in bytes. */
  ciphertextLength: number;
}

/** The stored form, JSON behind the barrier. */
interface StoredWrappingKey {
  /** PKCS#8 DER, base64. */
  privateKey: string;
  /** ISO 8601 creation time. */
  createdAt: string;
}

/**
 * A transit mount's wrapping key, stored at `<mount>/config/wrapping_key`
 * behind the barrier, so unmounting deletes it with the mount's other
 * entries. The key is generated on the first read, in the background
 * (RSA-4096 generation takes seconds of CPU). Concurrent first reads in
 * this process share one generation, and the store keeps whichever key a
 * node committed first, so every node ends with the same key.
 *
 * The parsed key stays in memory for the store's life, which is one
 * unsealed period, as the key cache's keys do.
 */
export class WrappingKeyStore {
  readonly #barrier: Barrier;
  readonly #path: string;
  readonly #clock: () => Date;
  readonly #logger: Logger;
  readonly #mount: string;
  #loading: Promise<WrappingKey> | undefined;
  #closed = false;

  constructor(barrier: Barrier, mount: string, clock: () => Date, logger: Logger) {
    this.#barrier = barrier;
    this.#path = `${mount}/config/wrapping_key`;
    this.#clock = clock;
    this.#logger = logger;
    this.#mount = mount;
  }

  /**
   * Marks the mount as removed. A generation still running then stores
   * nothing: its key would otherwise land under the path after the
   * unmount deleted the mount's entries, where a new mount at the same
   * path would take it as its own.
   */
  close(): void {
    this.#closed = true;
  }

  /** Returns the mount's wrapping key, generating and storing it when there is none yet. */
  async get(): Promise<WrappingKey> {
    if (this.#barrier.sealed) throw sealedError();
    if (this.#loading === undefined) {
      const loading = this.#load();
      this.#loading = loading;
      // A failed load is tried again by the next request instead of being cached.
      loading.catch(() => {
        if (this.#loading === loading) this.#loading = undefined;
      });
    }
    return this.#loading;
  }

  async #load(): Promise<WrappingKey> {
    const stored = await this.#barrier.get(this.#path);
    if (stored !== undefined) return parseStored(stored);

    const { privateKey } = await generateKeyPairAsync("rsa", {
      modulusLength: WRAPPING_KEY_BITS,
      publicExponent: 0x10001,
      publicKeyEncoding: { type: "spki", format: "der" },
      privateKeyEncoding: { type: "pkcs8", format: "der" },
    });
    const record: StoredWrappingKey = {
      privateKey: privateKey.toString("base64"),
      createdAt: this.#clock().toISOString(),
    };
    const encoded = Buffer.from(JSON.stringify(record), "utf8");
    let storedValue: Uint8Array = encoded;
    let written = false;
    try {
      await this.#barrier.transaction(async (tx) => {
        // A backend may run the transaction again after a conflict, so start over.
        written = false;
        // Checked in the transaction: an unmount closes the store before it deletes the entries.
        if (this.#closed) throw this.#removedError();
        // Another node may have stored its key meanwhile; the first one committed wins.
        const existing = await tx.get(this.#path);
        if (existing !== undefined) {
          storedValue = existing;
          return;
        }
        storedValue = encoded;
        await tx.put(this.#path, encoded);
        written = true;
      });
    } catch (error) {
      if (isKeywardError(error)) throw error;
      throw new KeywardError("storage_failure", "failed to store the transit wrapping key", {
        cause: error,
      });
    }
    if (written) this.#logger.info({ mount: this.#mount }, "transit wrapping key generated");
    return parseStored(storedValue);
  }

  #removedError(): KeywardError {
    return new KeywardError("not_found", `no secrets engine is mounted at "${this.#mount}/"`);
  }
}

function parseStored(value: Uint8Array): WrappingKey {
  try {
    const record = JSON.parse(Buffer.from(value).toString("utf8")) as StoredWrappingKey;
    const privateKey = createPrivateKey({
      key: Buffer.from(record.privateKey, "base64"),
      format: "der",
      type: "pkcs8",
    });
    const publicKeyPem = createPublicKey(privateKey).export({ format: "pem", type: "spki" });
    const bits = privateKey.asymmetricKeyDetails?.modulusLength ?? 0;
    return { privateKey, publicKeyPem: publicKeyPem.toString(), ciphertextLength: bits / 8 };
  } catch (error) {
    throw new KeywardError("internal", "internal error", {
      cause: error,
      details: { reason: "the stored transit wrapping key cannot be parsed" },
    });
  }
}
