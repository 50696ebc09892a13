import { invalidField, KeywardError } from "../errors.ts";
import type { StorageReader } from "../storage/storage.ts";
import { MAX_SHARES } from "./shamir.ts";

/** Storage key of the seal configuration, stored as plain JSON outside the barrier. */
export const SEAL_CONFIG_KEY = "core/seal-config";

const SEAL_CONFIG_VERSION = 1;

/** The root key's split into shares. It contains no secret. */
export interface SealConfig {
  /** The format version of this record. */
  version: typeof SEAL_CONFIG_VERSION;
  shares: number;
  threshold: number;
}

/**
 * Checks share counts with Vault's rules: 1 to 255 shares, a threshold from
 * 1 to the share count, and a threshold of 1 only with a single share
 * (otherwise every share alone would rebuild the root key). Throws
 * `invalid_field` on `secret_shares` or `secret_threshold`, Vault's names
 * for these fields.
 */
export function validateShareCounts(shares: number, threshold: number): void {
  if (!Number.isInteger(shares) || shares < 1 || shares > MAX_SHARES) {
    throw invalidField("secret_shares", `secret_shares must be an integer from 1 to ${MAX_SHARES}`);
  }
  if (!Number.isInteger(threshold) || threshold < 1 || threshold > shares) {
    throw invalidField(
      "secret_threshold",
      "secret_threshold must be an integer from 1 to secret_shares",
    );
  }
  if (shares > 1 && threshold === 1) {
    throw invalidField(
      "secret_threshold",
      "secret_threshold must be greater than one when secret_shares is greater than one",
    );
  }
}

export function createSealConfig(shares: number, threshold: number): SealConfig {
  validateShareCounts(shares, threshold);
  return { version: SEAL_CONFIG_VERSION, shares, threshold };
}

export function encodeSealConfig(config: SealConfig): Uint8Array {
  return Buffer.from(JSON.stringify(config), "utf8");
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
  let parsed: Partial<SealConfig>;
  try {
    parsed = JSON.parse(Buffer.from(stored).toString("utf8")) as Partial<SealConfig>;
  } catch (error) {
    throw corruptConfig(error);
  }
  if (parsed.version !== SEAL_CONFIG_VERSION) throw corruptConfig();
  try {
    return createSealConfig(parsed.shares as number, parsed.threshold as number);
  } catch (error) {
    throw corruptConfig(error);
  }
}
