import { createPublicKey, type KeyObject } from "node:crypto";
import { generateKeyPair, loadPrivateKey } from "../crypto/asymmetric-keys.ts";
import { randomBytes } from "../crypto/random.ts";
import { KeywardError } from "../errors.ts";
import type { Barrier } from "../seal/types.ts";
import type { StorageWriter } from "../storage/storage.ts";
import { type CheckpointSigner, signingKeyId } from "./chain.ts";
import type { ChainHead, DeviceEntry } from "./types.ts";

/** Barrier key of the audit HMAC key: 32 random bytes. */
const HMAC_KEY = "sys/audit/hmac-key";
/** Barrier key of the Ed25519 checkpoint signing key, PKCS#8 DER. */
const SIGNING_KEY = "sys/audit/signing-key";
/** Barrier key of the device table, a JSON array of DeviceEntry. */
const DEVICE_TABLE_KEY = "sys/audit/devices";
/** Barrier prefix of each device's chain head as of its last checkpoint. */
const CHAIN_STATE_PREFIX = "sys/audit/chain/";

const HMAC_KEY_BYTES = 32;

/** The installation's audit key material, loaded at unseal. */
export interface AuditKeys {
  hmacKey: Buffer;
  signer: CheckpointSigner;
  publicKey: KeyObject;
  publicKeyPem: string;
}

async function getOrCreate(
  tx: StorageWriter,
  key: string,
  create: () => Uint8Array,
): Promise<Uint8Array> {
  const existing = await tx.get(key);
  if (existing !== undefined) return existing;
  const created = create();
  await tx.put(key, created);
  return created;
}

/** Loads the HMAC and signing keys, creating each one in the same transaction if it is missing. */
export async function loadOrCreateKeys(barrier: Barrier): Promise<AuditKeys> {
  const { hmacKey, signingKeyDer } = await barrier.transaction(async (tx) => ({
    hmacKey: await getOrCreate(tx, HMAC_KEY, () => randomBytes(HMAC_KEY_BYTES)),
    signingKeyDer: await getOrCreate(
      tx,
      SIGNING_KEY,
      () => generateKeyPair({ algorithm: "ed25519" }).privateKeyDer,
    ),
  }));
  if (hmacKey.length !== HMAC_KEY_BYTES) {
    throw new KeywardError("storage_failure", "the stored audit HMAC key has the wrong length");
  }
  const privateKey = loadPrivateKey(signingKeyDer);
  const publicKey = createPublicKey(privateKey);
  return {
    hmacKey: Buffer.from(hmacKey),
    signer: { keyId: signingKeyId(publicKey), privateKey },
    publicKey,
    publicKeyPem: publicKey.export({ format: "pem", type: "spki" }).toString(),
  };
}

/** Reads the device table; undefined before the first unseal that created it. */
export async function loadDeviceTable(barrier: Barrier): Promise<DeviceEntry[] | undefined> {
  const value = await barrier.get(DEVICE_TABLE_KEY);
  if (value === undefined) return undefined;
  return JSON.parse(Buffer.from(value).toString("utf8")) as DeviceEntry[];
}

export async function saveDeviceTable(barrier: Barrier, entries: DeviceEntry[]): Promise<void> {
  await barrier.put(DEVICE_TABLE_KEY, Buffer.from(JSON.stringify(entries), "utf8"));
}

/** Chain heads as of each device's last checkpoint, kept so that a restart continues the chain. */
export class ChainStateStore {
  readonly #barrier: Barrier;

  constructor(barrier: Barrier) {
    this.#barrier = barrier;
  }

  async load(devicePath: string): Promise<ChainHead | undefined> {
    const value = await this.#barrier.get(CHAIN_STATE_PREFIX + devicePath);
    if (value === undefined) return undefined;
    return JSON.parse(Buffer.from(value).toString("utf8")) as ChainHead;
  }

  async save(devicePath: string, head: ChainHead): Promise<void> {
    const value = JSON.stringify({ seq: head.seq, hash: head.hash });
    await this.#barrier.put(CHAIN_STATE_PREFIX + devicePath, Buffer.from(value, "utf8"));
  }

  async delete(devicePath: string): Promise<void> {
    await this.#barrier.delete(CHAIN_STATE_PREFIX + devicePath);
  }
}
