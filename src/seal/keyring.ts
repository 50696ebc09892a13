import { randomBytes } from "node:crypto";
import { decryptionFailed, KeywardError } from "../errors.ts";
import { AES_KEY_BYTES, decryptAesGcm, encryptAesGcm, GCM_NONCE_BYTES } from "./aes-gcm.ts";

/** Storage key of the keyring, stored outside the barrier and encrypted under the root key. */
export const KEYRING_KEY = "core/keyring";

const KEYRING_FORMAT_VERSION = 1;
/** The associated data of the keyring's encryption under the root key. */
const KEYRING_AAD = Buffer.from("keyward/core/keyring/v1", "utf8");

/** One barrier key. Terms are numbered from 1, and each rotation adds the next. */
export interface KeyringTerm {
  readonly term: number;
  /** The AES-256-GCM key. Zeroed when the keyring is destroyed. */
  readonly key: Buffer;
  /** When the term was installed (ISO 8601). */
  readonly installTime: string;
  /** Values this term has encrypted, counted in memory. */
  encryptions: number;
  /**
   * The encryption count last written to storage. While the barrier is
   * open it is at least `encryptions`, as a reservation for writes not yet
   * made, so the stored count never falls below the real one after a crash.
   */
  storedEncryptions: number;
}

/**
 * The barrier keys. Decryption picks a value's term; encryption uses the
 * active term, which is always the newest.
 *
 * A rotated keyring shares its existing term objects with the one it came
 * from, so encryption counts taken on either stay in one place.
 */
export class Keyring {
  readonly #terms: ReadonlyMap<number, KeyringTerm>;
  readonly activeTerm: number;

  private constructor(terms: ReadonlyMap<number, KeyringTerm>, activeTerm: number) {
    this.#terms = terms;
    this.activeTerm = activeTerm;
  }

  /** Creates a keyring with one new random key as term 1. */
  static create(installTime: Date): Keyring {
    return new Keyring(new Map([[1, newTerm(1, installTime)]]), 1);
  }

  /** Returns a keyring with one more term, a new random key, which becomes active. */
  withNewTerm(installTime: Date): Keyring {
    const term = this.activeTerm + 1;
    const terms = new Map(this.#terms);
    terms.set(term, newTerm(term, installTime));
    return new Keyring(terms, term);
  }

  get active(): KeyringTerm {
    return this.#terms.get(this.activeTerm)!;
  }

  term(term: number): KeyringTerm | undefined {
    return this.#terms.get(term);
  }

  terms(): KeyringTerm[] {
    return [...this.#terms.values()].sort((a, b) => a.term - b.term);
  }

  /**
   * Returns a keyring with the terms of `stored` (the keyring another node
   * wrote) that this one lacks, such as a term added by a rotation on that
   * node. Terms this keyring has keep their objects and counts, because the
   * counts are this node's own reservations. An added term starts with no
   * reservation: its first encryption here reserves one.
   * Returns this keyring when `stored` adds nothing.
   */
  withTermsOf(stored: Keyring): Keyring {
    const added = stored.terms().filter((term) => !this.#terms.has(term.term));
    if (added.length === 0) return this;
    const terms = new Map(this.#terms);
    for (const term of added) {
      terms.set(term.term, {
        term: term.term,
        key: Buffer.from(term.key),
        installTime: term.installTime,
        encryptions: term.storedEncryptions,
        storedEncryptions: term.storedEncryptions,
      });
    }
    return new Keyring(terms, Math.max(...terms.keys()));
  }

  /** Overwrites every key with zeros (best effort: copies made by the JSON encoding may remain). */
  destroy(): void {
    for (const term of this.#terms.values()) term.key.fill(0);
  }

  /** Builds a keyring from its parsed JSON form; returns undefined when the form is invalid. */
  static fromJson(json: unknown): Keyring | undefined {
    const record = json as Partial<StoredKeyring> | null;
    if (record?.version !== KEYRING_FORMAT_VERSION || !Array.isArray(record.terms))
      return undefined;
    const terms = new Map<number, KeyringTerm>();
    for (const stored of record.terms) {
      const term = parseTerm(stored);
      if (term === undefined || terms.has(term.term)) return undefined;
      terms.set(term.term, term);
    }
    const activeTerm = record.activeTerm;
    if (typeof activeTerm !== "number" || !terms.has(activeTerm)) return undefined;
    if (Math.max(...terms.keys()) !== activeTerm) return undefined;
    return new Keyring(terms, activeTerm);
  }
}

function newTerm(term: number, installTime: Date): KeyringTerm {
  return {
    term,
    key: randomBytes(AES_KEY_BYTES),
    installTime: installTime.toISOString(),
    encryptions: 0,
    storedEncryptions: 0,
  };
}

interface StoredTerm {
  term: number;
  key: string;
  installTime: string;
  encryptions: number;
}

interface StoredKeyring {
  version: number;
  activeTerm: number;
  terms: StoredTerm[];
}

function parseTerm(stored: Partial<StoredTerm> | null): KeyringTerm | undefined {
  if (stored === null || typeof stored !== "object") return undefined;
  const { term, key, installTime, encryptions } = stored;
  if (!Number.isInteger(term) || (term as number) < 1) return undefined;
  if (typeof key !== "string" || typeof installTime !== "string") return undefined;
  if (!Number.isSafeInteger(encryptions) || (encryptions as number) < 0) return undefined;
  const keyBytes = Buffer.from(key, "base64");
  if (keyBytes.length !== AES_KEY_BYTES) return undefined;
  return {
    term: term as number,
    key: keyBytes,
    installTime,
    encryptions: encryptions as number,
    storedEncryptions: encryptions as number,
  };
}

/**
 * Encrypts the keyring under the root key. `countFor` gives the encryption
 * count to store for each term.
 *
 * Format: version byte || nonce (12) || ciphertext || tag (16), with a
 * fixed label as associated data. The tag doubles as the check that a
 * rebuilt root key is the right one.
 */
export function encryptKeyring(
  keyring: Keyring,
  rootKey: Uint8Array,
  countFor: (term: KeyringTerm) => number,
): Buffer {
  const stored: StoredKeyring = {
    version: KEYRING_FORMAT_VERSION,
    activeTerm: keyring.activeTerm,
    terms: keyring.terms().map((term) => ({
      term: term.term,
      key: term.key.toString("base64"),
      installTime: term.installTime,
      encryptions: countFor(term),
    })),
  };
  const plaintext = Buffer.from(JSON.stringify(stored), "utf8");
  try {
    const { nonce, sealed } = encryptAesGcm(rootKey, plaintext, KEYRING_AAD);
    return Buffer.concat([Buffer.from([KEYRING_FORMAT_VERSION]), nonce, sealed]);
  } finally {
    plaintext.fill(0);
  }
}

/**
 * Decrypts a stored keyring. Throws `decryption_failed` when the root key
 * is wrong (the usual cause: a wrong set of unseal shares), and
 * `storage_failure` when the record is not a keyring at all.
 */
export function decryptKeyring(blob: Uint8Array, rootKey: Uint8Array): Keyring {
  const header = 1 + GCM_NONCE_BYTES;
  if (blob.length <= header || blob[0] !== KEYRING_FORMAT_VERSION) {
    throw new KeywardError(
      "storage_failure",
      `the keyring at ${KEYRING_KEY} has an unknown format: the storage data is corrupted`,
    );
  }
  const plaintext = decryptAesGcm(
    rootKey,
    blob.subarray(1, header),
    blob.subarray(header),
    KEYRING_AAD,
  );
  if (plaintext === undefined) throw decryptionFailed();
  try {
    const keyring = Keyring.fromJson(JSON.parse(plaintext.toString("utf8")));
    if (keyring !== undefined) return keyring;
  } catch {
    // Falls through to the error below: the decrypted bytes are not JSON.
  } finally {
    plaintext.fill(0);
  }
  throw new KeywardError(
    "storage_failure",
    `the keyring at ${KEYRING_KEY} decrypted but is malformed: the storage data is corrupted`,
  );
}
