import { createPrivateKey, type KeyObject } from "node:crypto";
import { KeywardError, missingField } from "../../errors.ts";
import { importKey, publicBlobOf, recordFor } from "./ca-keys.ts";
import { generateSshKeyPair, resolveKeySpec } from "./signatures.ts";
import type { SshStore } from "./store.ts";
import type {
  CaInfo,
  CaKeyRecord,
  CaKeyRequest,
  CaKind,
  CaSlotRecord,
  Logger,
  RotationPhase,
} from "./types.ts";

/** CA key type when a request names none: `ssh-rsa` with 4096 bits, as in Vault. */
const DEFAULT_CA_KEY_TYPE = "ssh-rsa";
const DEFAULT_CA_RSA_BITS = 4096;

/** The key a CA signs with, parsed once and kept while its record is unchanged. */
export interface CaSigner {
  record: CaKeyRecord;
  privateKey: KeyObject;
  /** The CA's public key blob, which certificates carry as their signature key. */
  publicBlob: Buffer;
}

function slotPath(kind: CaKind): string {
  return `ca/${kind}`;
}

function phaseOf(slot: CaSlotRecord): RotationPhase {
  if (slot.keys.some((key) => key.state === "previous")) return "switched";
  if (slot.keys.some((key) => key.state === "next")) return "prepared";
  return "none";
}

function notConfigured(kind: CaKind): KeywardError {
  return new KeywardError(
    "not_found",
    kind === "user"
      ? "the SSH CA is not configured; write config/ca first"
      : "no SSH CA is configured; write config/ca or config/ca/host first",
  );
}

function rotationState(message: string): KeywardError {
  return new KeywardError("invalid_state", message);
}

/** Returns the error for rotating a CA of `kind` whose slot is empty. */
function nothingToRotate(kind: CaKind, userSlot: CaSlotRecord): KeywardError {
  if (kind === "host" && userSlot.keys.length > 0) {
    return rotationState(
      "the host CA shares the user CA (config/ca), so it cannot rotate on its own; configure a separate host CA with config/ca/host, or rotate the user CA",
    );
  }
  return notConfigured(kind);
}

/**
 * The mount's user CA and host CA, each a slot of keys that rotates in
 * phases: `prepare` adds a published `next` key, `switch` makes it sign and
 * keeps the old key published as `previous`, `retire` removes the old key.
 * `rollback` undoes `prepare` or `switch`; nothing undoes `retire`.
 * While the host slot is empty, the user CA signs host certificates too.
 */
export class CaAuthority {
  readonly #store: SshStore;
  readonly #clock: () => Date;
  readonly #logger: Logger;
  readonly #mount: string;
  readonly #privateKeys = new Map<string, KeyObject>();

  constructor(store: SshStore, clock: () => Date, logger: Logger, mount: string) {
    this.#store = store;
    this.#clock = clock;
    this.#logger = logger;
    this.#mount = mount;
  }

  async #slot(kind: CaKind): Promise<CaSlotRecord> {
    return (await this.#store.get<CaSlotRecord>(slotPath(kind))) ?? { keys: [] };
  }

  /** Returns the slot that serves `kind`: the host slot falls back to the user slot while empty. */
  async #effective(kind: CaKind): Promise<{ slot: CaSlotRecord; shared: boolean }> {
    const slot = await this.#slot(kind);
    if (slot.keys.length > 0 || kind === "user") return { slot, shared: false };
    return { slot: await this.#slot("user"), shared: true };
  }

  /** Creates the CA of `kind`. Fails with `already_exists` when it has a key, as Vault does. */
  async configure(kind: CaKind, request: CaKeyRequest): Promise<CaInfo> {
    const alreadyConfigured = () =>
      new KeywardError(
        "already_exists",
        `the ${kind} CA is already configured; delete it or rotate it instead`,
      );
    // Checked before generating, which can take seconds for RSA 4096, and again under the lock.
    if ((await this.#slot(kind)).keys.length > 0) throw alreadyConfigured();
    const key = await this.#createKey(request, "active");
    await this.#store.update<CaSlotRecord>(slotPath(kind), (current) => {
      if (current && current.keys.length > 0) throw alreadyConfigured();
      return { keys: [key] };
    });
    this.#logger.info(
      { mount: this.#mount, ca: kind, caKeyId: key.id, algorithm: key.algorithm },
      "SSH CA configured",
    );
    return this.read(kind);
  }

  async read(kind: CaKind): Promise<CaInfo> {
    const { slot, shared } = await this.#effective(kind);
    const active = slot.keys.find((key) => key.state === "active");
    if (!active) throw notConfigured(kind);
    return {
      kind,
      publicKey: active.publicKey,
      sharedWithUserCa: shared,
      rotationPhase: phaseOf(slot),
      keys: slot.keys.map(({ privateKeyPem: _secret, ...info }) => info),
    };
  }

  /** Deletes every key of the CA of `kind`. Certificates it signed stop being trusted once the trust bundles are redeployed. */
  async delete(kind: CaKind): Promise<void> {
    await this.#store.withLock(slotPath(kind), () => this.#store.delete(slotPath(kind)));
    this.#logger.info({ mount: this.#mount, ca: kind }, "SSH CA deleted");
  }

  /**
   * Returns the public keys to trust for `kind`, one-line form, the signing
   * key first: every key of the slot, so a rotation in progress never locks
   * anyone out.
   */
  async trustedKeys(kind: CaKind): Promise<string[]> {
    const { slot } = await this.#effective(kind);
    if (slot.keys.length === 0) throw notConfigured(kind);
    const order = { active: 0, next: 1, previous: 2 } as const;
    return [...slot.keys]
      .sort((a, b) => order[a.state] - order[b.state])
      .map((key) => key.publicKey);
  }

  /** Returns the active key of the CA that signs certificates of `kind`. */
  async signer(kind: CaKind): Promise<CaSigner> {
    const { slot } = await this.#effective(kind);
    const record = slot.keys.find((key) => key.state === "active");
    if (!record) throw notConfigured(kind);
    let privateKey = this.#privateKeys.get(record.id);
    if (!privateKey) {
      privateKey = createPrivateKey(record.privateKeyPem);
      this.#privateKeys.set(record.id, privateKey);
    }
    return { record, privateKey, publicBlob: publicBlobOf(record) };
  }

  /** Phase 1: adds a new key that is published but does not sign. */
  async prepare(kind: CaKind, request: CaKeyRequest): Promise<CaInfo> {
    // Checked before generating, which can take seconds for RSA 4096, and again under the lock.
    if ((await this.#slot(kind)).keys.length === 0) {
      throw nothingToRotate(kind, await this.#slot("user"));
    }
    const key = await this.#createKey(request, "next");
    const userSlot = await this.#slot("user");
    await this.#store.update<CaSlotRecord>(slotPath(kind), (current) => {
      const slot = current ?? { keys: [] };
      if (slot.keys.length === 0) throw nothingToRotate(kind, userSlot);
      if (phaseOf(slot) !== "none") {
        throw rotationState(
          `a rotation of the ${kind} CA is in progress; retire or roll it back first`,
        );
      }
      if (slot.keys.some((existing) => existing.id === key.id)) {
        throw new KeywardError("already_exists", "this key is already a key of the CA");
      }
      return { keys: [...slot.keys, key] };
    });
    this.#logRotation(kind, "prepare", key.id);
    return this.read(kind);
  }

  /** Phase 2: the `next` key signs from now on; the old key stays published as `previous`. */
  async switch(kind: CaKind): Promise<CaInfo> {
    await this.#rotate(kind, (slot) => {
      if (phaseOf(slot) !== "prepared") {
        throw rotationState(`the ${kind} CA has no prepared key to switch to; prepare one first`);
      }
      return slot.keys.map((key) => {
        if (key.state === "active") return { ...key, state: "previous" as const };
        if (key.state === "next") return { ...key, state: "active" as const };
        return key;
      });
    });
    this.#logRotation(kind, "switch");
    return this.read(kind);
  }

  /** Undoes the last phase: drops a prepared key, or switches signing back to the previous key. */
  async rollback(kind: CaKind): Promise<CaInfo> {
    await this.#rotate(kind, (slot) => {
      const phase = phaseOf(slot);
      if (phase === "prepared") return slot.keys.filter((key) => key.state !== "next");
      if (phase === "switched") {
        return slot.keys.map((key) => {
          if (key.state === "previous") return { ...key, state: "active" as const };
          if (key.state === "active") return { ...key, state: "next" as const };
          return key;
        });
      }
      throw rotationState(`no rotation of the ${kind} CA is in progress to roll back`);
    });
    this.#logRotation(kind, "rollback");
    return this.read(kind);
  }

  /** Phase 3: removes the previous key for good and returns it, so it can be revoked. */
  async retire(kind: CaKind): Promise<CaKeyRecord> {
    let retired: CaKeyRecord | undefined;
    await this.#rotate(kind, (slot) => {
      retired = slot.keys.find((key) => key.state === "previous");
      if (!retired) {
        throw rotationState(`the ${kind} CA has no previous key to retire; switch first`);
      }
      return slot.keys.filter((key) => key.state !== "previous");
    });
    const key = retired as CaKeyRecord;
    this.#privateKeys.delete(key.id);
    this.#logRotation(kind, "retire", key.id);
    return key;
  }

  async #rotate(kind: CaKind, change: (slot: CaSlotRecord) => CaKeyRecord[]): Promise<void> {
    const userSlot = await this.#slot("user");
    await this.#store.update<CaSlotRecord>(slotPath(kind), (current) => {
      if (!current || current.keys.length === 0) {
        // Rotating the host CA while it shares the user CA would rotate the wrong slot.
        throw nothingToRotate(kind, userSlot);
      }
      return { keys: change(current) };
    });
  }

  #logRotation(kind: CaKind, phase: string, caKeyId?: string): void {
    this.#logger.info({ mount: this.#mount, ca: kind, phase, caKeyId }, "SSH CA rotation phase");
  }

  async #createKey(request: CaKeyRequest, state: CaKeyRecord["state"]): Promise<CaKeyRecord> {
    const now = this.#clock().toISOString();
    if (request.privateKey !== undefined && request.privateKey !== "") {
      if (request.generateSigningKey === true) {
        throw new KeywardError(
          "invalid_request",
          "send either generate_signing_key or private_key, not both",
          { field: "generate_signing_key" },
        );
      }
      return importKey(request, state, now);
    }
    if (request.publicKey !== undefined && request.publicKey !== "") {
      throw missingField("private_key");
    }
    if (request.generateSigningKey === false) throw missingField("private_key");
    const spec = resolveKeySpec(
      request.keyType ?? DEFAULT_CA_KEY_TYPE,
      request.keyBits,
      DEFAULT_CA_RSA_BITS,
      { type: "key_type", bits: "key_bits" },
    );
    const pair = await generateSshKeyPair(spec);
    return recordFor(pair.privateKey, state, now, true);
  }
}
