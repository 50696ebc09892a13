import { createPublicKey, type KeyObject } from "node:crypto";
import { generateKeyPair, loadPrivateKey } from "../crypto/asymmetric-keys.ts";
import { randomBytes } from "../crypto/random.ts";
import { KeywardError } from "../errors.ts";
import type { Barrier } from "../seal/types.ts";
import type { StorageReader, StorageWriter } from "../storage/storage.ts";
import { type CheckpointSigner, signingKeyId } from "./chain.ts";
import type { ChainHead, DeviceEntry } from "./types.ts";

/** Barrier key of the audit HMAC key: 32 random bytes. */
const HMAC_KEY = "sys/audit/hmac-key";
/** Barrier key of the Ed25519 checkpoint signing key, PKCS#8 DER. */
const SIGNING_KEY = "sys/audit/signing-key";
/**
 * Barrier key of the device table, a JSON array of DeviceEntry. Every node
 * runs the devices it lists, so a change written here by one node reaches
 * another through `AuditBroker.refresh`.
 */
export const DEVICE_TABLE_KEY = "sys/audit/devices";
/**
 * Barrier prefix of the chain heads as of each chain's last checkpoint:
 * `sys/audit/chain/<device>/<node>`. Before per-node chains the head was
 * kept at `sys/audit/chain/<device>`, which is still read as described on
 * `ChainStateStore`.
 */
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
export async function loadDeviceTable(reader: StorageReader): Promise<DeviceEntry[] | undefined> {
  const value = await reader.get(DEVICE_TABLE_KEY);
  if (value === undefined) return undefined;
  return JSON.parse(Buffer.from(value).toString("utf8")) as DeviceEntry[];
}

export async function saveDeviceTable(
  writer: StorageWriter,
  entries: DeviceEntry[],
): Promise<void> {
  await writer.put(DEVICE_TABLE_KEY, Buffer.from(JSON.stringify(entries), "utf8"));
}

/**
 * Chain heads as of each chain's last checkpoint, kept so that a restart
 * continues the chain. Each node keeps its own heads, since each node
 * writes its own chain of every device.
 *
 * A device that does not keep its records behind the barrier (file,
 * socket, syslog) writes one chain per machine, as it did before per-node
 * chains. When this node has no head of its own for such a device, `load`
 * returns the head saved before per-node chains, so an upgraded server
 * continues that chain. A store device's old chain is kept read-only under
 * its old keys, so its old head never continues a node's chain.
 */
export class ChainStateStore {
  readonly #barrier: Barrier;
  readonly #nodeId: string;

  constructor(barrier: Barrier, nodeId: string) {
    this.#barrier = barrier;
    this.#nodeId = nodeId;
  }

  /** Loads this node's head of a device's chain, or the old head as the class describes. */
  async load(
    devicePath: string,
    options: { legacyFallback?: boolean } = {},
  ): Promise<ChainHead | undefined> {
    const own = await this.loadOf(devicePath, this.#nodeId);
    if (own !== undefined || !options.legacyFallback) return own;
    return this.loadLegacy(devicePath);
  }

  /** Loads the head another node saved of its chain of a device. */
  async loadOf(devicePath: string, nodeId: string): Promise<ChainHead | undefined> {
    return readHead(this.#barrier, `${CHAIN_STATE_PREFIX}${devicePath}/${nodeId}`);
  }

  /** Lists the nodes that saved a head of their chain of a device, in byte order. */
  async listNodes(devicePath: string): Promise<string[]> {
    const names = await this.#barrier.list(`${CHAIN_STATE_PREFIX}${devicePath}/`);
    return names.filter((name) => !name.endsWith("/"));
  }

  /** Loads the head saved before per-node chains. */
  async loadLegacy(devicePath: string): Promise<ChainHead | undefined> {
    return readHead(this.#barrier, CHAIN_STATE_PREFIX + devicePath);
  }

  async save(devicePath: string, head: ChainHead): Promise<void> {
    const value = JSON.stringify({ seq: head.seq, hash: head.hash });
    await this.#barrier.put(
      `${CHAIN_STATE_PREFIX}${devicePath}/${this.#nodeId}`,
      Buffer.from(value, "utf8"),
    );
  }

  /**
   * Deletes this node's head of a device's chain. With `legacy`, deletes
   * the head saved before per-node chains too.
   */
  async delete(devicePath: string, options: { legacy?: boolean } = {}): Promise<void> {
    await this.#barrier.delete(`${CHAIN_STATE_PREFIX}${devicePath}/${this.#nodeId}`);
    if (options.legacy) await this.#barrier.delete(CHAIN_STATE_PREFIX + devicePath);
  }
}

async function readHead(barrier: Barrier, key: string): Promise<ChainHead | undefined> {
  const value = await barrier.get(key);
  if (value === undefined) return undefined;
  return JSON.parse(Buffer.from(value).toString("utf8")) as ChainHead;
}
