import { KeywardError } from "../errors.ts";

/** Storage key of the root key wrapped by the HSM, stored outside the barrier. */
export const WRAPPED_ROOT_KEY_KEY = "core/hsm-root-key";

const WRAPPED_ROOT_KEY_VERSION = 1;
/** The associated data of the root key's encryption in the HSM. */
const WRAPPED_ROOT_KEY_AAD = Buffer.from("keyward/core/hsm-root-key/v1", "utf8");

/** The default label of the HSM's root key wrapping key. */
export const DEFAULT_WRAPPING_KEY_LABEL = "keyward-root-wrapping-key";

/**
 * Encrypts and decrypts the root key with a key that never leaves an HSM.
 * The PKCS#11 seal depends on this interface only, so tests can give it
 * another implementation.
 */
export interface RootKeyWrapper {
  /** The wrapping key's label, stored with the wrapped root key. */
  readonly keyLabel: string;
  /** The wrapping key's location, for messages, such as `token "kw" of /usr/lib/…/libsofthsm2.so`. */
  readonly location: string;
  /**
   * Encrypts `rootKey`, authenticating `aad`, after generating the wrapping
   * key in the HSM when it has none. `created` is true when it was generated.
   * Throws `hsm_key_not_found` when the key cannot decrypt its own output.
   */
  wrap(
    rootKey: Uint8Array,
    aad: Uint8Array,
  ): Promise<{ iv: Buffer; ciphertext: Buffer; created: boolean }>;
  /**
   * Decrypts the output of `wrap`. Throws `hsm_key_not_found` when the HSM
   * has no wrapping key or the key may not decrypt, and `decryption_failed`
   * when the key does not decrypt the input (another key with the same label).
   */
  unwrap(iv: Buffer, ciphertext: Buffer, aad: Uint8Array): Promise<Buffer>;
  /** Releases the HSM connection. */
  close(): Promise<void>;
}

/** The stored record: which key wrapped the root key, and the AES-GCM output. */
export interface WrappedRootKey {
  keyLabel: string;
  iv: Buffer;
  /** The encrypted root key followed by the GCM tag. */
  ciphertext: Buffer;
}

/** Returns the associated data bound to the wrapped root key, so the record cannot be swapped for another encryption. */
export function wrappedRootKeyAad(): Buffer {
  return Buffer.from(WRAPPED_ROOT_KEY_AAD);
}

export function encodeWrappedRootKey(record: WrappedRootKey): Uint8Array {
  return Buffer.from(
    JSON.stringify({
      version: WRAPPED_ROOT_KEY_VERSION,
      mechanism: "CKM_AES_GCM",
      keyLabel: record.keyLabel,
      iv: record.iv.toString("base64"),
      ciphertext: record.ciphertext.toString("base64"),
    }),
    "utf8",
  );
}

function corruptRecord(cause?: unknown): KeywardError {
  return new KeywardError(
    "storage_failure",
    `the wrapped root key at ${WRAPPED_ROOT_KEY_KEY} is unreadable: the storage data is corrupted`,
    { cause },
  );
}

/** Decodes the stored record; throws `storage_failure` when it is malformed. */
export function decodeWrappedRootKey(stored: Uint8Array): WrappedRootKey {
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(Buffer.from(stored).toString("utf8")) as Record<string, unknown>;
  } catch (error) {
    throw corruptRecord(error);
  }
  const { version, mechanism, keyLabel, iv, ciphertext } = parsed ?? {};
  if (
    version !== WRAPPED_ROOT_KEY_VERSION ||
    mechanism !== "CKM_AES_GCM" ||
    typeof keyLabel !== "string" ||
    typeof iv !== "string" ||
    typeof ciphertext !== "string"
  ) {
    throw corruptRecord();
  }
  return {
    keyLabel,
    iv: Buffer.from(iv, "base64"),
    ciphertext: Buffer.from(ciphertext, "base64"),
  };
}
