import { invalidField, KeywardError } from "../errors.ts";
import type { StorageReader } from "../storage/storage.ts";
import { MAX_SHARES } from "./shamir.ts";

/** Storage key of the seal configuration, stored as plain JSON outside the barrier. */
export const SEAL_CONFIG_KEY = "core/seal-config";

/** Format version of a Shamir seal's record. */
const SHAMIR_CONFIG_VERSION = 1;
/**
 * Format version of a PKCS#11 seal's record. It differs from the Shamir
 * version so that a Keyward release without PKCS#11 seals rejects the
 * record as unreadable instead of taking it for a Shamir seal.
 */
const PKCS11_CONFIG_VERSION = 2;

/**
 * The seal type, which decides how the root key is protected: split into unseal key shares (`shamir`),
 * or wrapped by a key in an HSM reached through PKCS#11 (`pkcs11`), which
 * issues recovery key shares instead.
 */
export type SealType = "shamir" | "pkcs11";

/** Bytes of the recovery key verifier, an HMAC-SHA256 output. */
export const RECOVERY_VERIFIER_BYTES = 32;

/**
 * The seal's type and its split into shares. It contains no secret: the
 * recovery key verifier is a one-way function of a random 256-bit key.
 */
export interface SealConfig {
  /** The format version of this record: 1 for a Shamir seal, 2 for a PKCS#11 seal. */
  version: typeof SHAMIR_CONFIG_VERSION | typeof PKCS11_CONFIG_VERSION;
  /** The seal type. The stored record of a Shamir seal has no type field. */
  type: SealType;
  /** Unseal key shares (Shamir seal) or recovery key shares (PKCS#11 seal). */
  shares: number;
  threshold: number;
  /** PKCS#11 seal only: identifies the recovery key without revealing it (see `recovery-key.ts`). */
  recoveryKeyVerifier?: Buffer;
}

/** The request field names that share counts are reported under. */
export interface ShareCountFields {
  shares: string;
  threshold: string;
}

/** Vault's names for unseal share counts, also used by every rekey. */
export const SECRET_SHARE_FIELDS: ShareCountFields = {
  shares: "secret_shares",
  threshold: "secret_threshold",
};

/** Vault's names for recovery share counts at initialisation. */
export const RECOVERY_SHARE_FIELDS: ShareCountFields = {
  shares: "recovery_shares",
  threshold: "recovery_threshold",
};

/**
 * Checks share counts with Vault's rules: 1 to 255 shares, a threshold from
 * 1 to the share count, and a threshold of 1 only with a single share
 * (otherwise every share alone would rebuild the key). Throws
 * `invalid_field` on the names in `fields`: by default `secret_shares` and
 * `secret_threshold`, Vault's names for unseal share counts.
 */
export function validateShareCounts(
  shares: number,
  threshold: number,
  fields: ShareCountFields = SECRET_SHARE_FIELDS,
): void {
  const { shares: sharesField, threshold: thresholdField } = fields;
  if (!Number.isInteger(shares) || shares < 1 || shares > MAX_SHARES) {
    throw invalidField(sharesField, `${sharesField} must be an integer from 1 to ${MAX_SHARES}`);
  }
  if (!Number.isInteger(threshold) || threshold < 1 || threshold > shares) {
    throw invalidField(
      thresholdField,
      `${thresholdField} must be an integer from 1 to ${sharesField}`,
    );
  }
  if (shares > 1 && threshold === 1) {
    throw invalidField(
      thresholdField,
      `${thresholdField} must be greater than one when ${sharesField} is greater than one`,
    );
  }
}

/** Creates the configuration of a Shamir seal; throws `invalid_field` as `validateShareCounts` does. */
export function createSealConfig(shares: number, threshold: number): SealConfig {
  validateShareCounts(shares, threshold);
  return { version: SHAMIR_CONFIG_VERSION, type: "shamir", shares, threshold };
}

/**
 * Creates the configuration of a PKCS#11 seal whose recovery key is split
 * into `shares`. Throws `invalid_field` on the names in `fields`.
 */
export function createPkcs11SealConfig(
  shares: number,
  threshold: number,
  recoveryKeyVerifier: Buffer,
  fields: ShareCountFields = RECOVERY_SHARE_FIELDS,
): SealConfig {
  validateShareCounts(shares, threshold, fields);
  return {
    version: PKCS11_CONFIG_VERSION,
    type: "pkcs11",
    shares,
    threshold,
    recoveryKeyVerifier,
  };
}

export function encodeSealConfig(config: SealConfig): Uint8Array {
  // A Shamir record has the form it had before PKCS#11 seals existed.
  const stored: StoredSealConfig = {
    version: config.version,
    ...(config.type === "shamir" ? {} : { type: config.type }),
    shares: config.shares,
    threshold: config.threshold,
  };
  if (config.recoveryKeyVerifier !== undefined) {
    stored.recoveryKeyVerifier = config.recoveryKeyVerifier.toString("base64");
  }
  return Buffer.from(JSON.stringify(stored), "utf8");
}

/** The JSON form of a seal configuration. */
interface StoredSealConfig {
  version: number;
  type?: string;
  shares: number;
  threshold: number;
  recoveryKeyVerifier?: string;
}

function corruptConfig(cause?: unknown): KeywardError {
  return new KeywardError(
    "storage_failure",
    `the seal configuration at ${SEAL_CONFIG_KEY} is unreadable: the storage data is corrupted`,
    { cause },
  );
}

/** Reads the seal configuration; `undefined` means the server is not initialised. */
export async function readSealConfig(reader: StorageReader): Promise<SealConfig | undefined> {
  const stored = await reader.get(SEAL_CONFIG_KEY);
  if (stored === undefined) return undefined;
  let parsed: Partial<StoredSealConfig>;
  try {
    parsed = JSON.parse(Buffer.from(stored).toString("utf8")) as Partial<StoredSealConfig>;
  } catch (error) {
    throw corruptConfig(error);
  }
  if (parsed === null || typeof parsed !== "object") throw corruptConfig();
  const shares = parsed.shares as number;
  const threshold = parsed.threshold as number;
  try {
    if (parsed.version === SHAMIR_CONFIG_VERSION && parsed.type === undefined) {
      return createSealConfig(shares, threshold);
    }
    if (
      parsed.version === PKCS11_CONFIG_VERSION &&
      parsed.type === "pkcs11" &&
      typeof parsed.recoveryKeyVerifier === "string"
    ) {
      const verifier = Buffer.from(parsed.recoveryKeyVerifier, "base64");
      if (verifier.length === RECOVERY_VERIFIER_BYTES) {
        return createPkcs11SealConfig(shares, threshold, verifier);
      }
    }
  } catch (error) {
    throw corruptConfig(error);
  }
  throw corruptConfig();
}
