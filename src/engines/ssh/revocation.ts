import { createHash } from "node:crypto";
import { KeywardError } from "../../errors.ts";
import { publicBlobOf } from "./ca-keys.ts";
import { encodeKrl, type KrlCertificateSection } from "./krl.ts";
import { isValidKeyId } from "./names.ts";
import { fingerprintSha256, formatPublicKeyLine } from "./public-keys.ts";
import type { SshStore } from "./store.ts";
import type { Logger } from "./types.ts";

const STATE_PATH = "revocation";
const KRL_PATH = "krl";

/** Everything the mount has revoked; the KRL is built from it. */
export interface RevocationState {
  /** The KRL's `krl_version`: 0 before the first revocation, then one more per change. */
  version: number;
  /** Revoked serials, 16 hex digits, with the public key of the CA that signed them, or empty for every CA. */
  serials: { serial: string; caPublicKey: string }[];
  /** Revoked key IDs, for certificates of every CA. */
  keyIds: string[];
  /** Revoked plain public keys (one-line form); revoking a key also revokes its certificates. */
  publicKeys: { fingerprint: string; publicKey: string }[];
  /** Retired CA keys, revoked so that certificates they signed fail even where a stale trust bundle still lists them. */
  retiredCaKeys: { id: string; publicKey: string }[];
  /** ISO 8601 time of the last change. */
  updatedAt: string;
}

/** Serial numbers as the API takes them: 1 to 16 hex digits, as `sign` returns them, optionally after "0x". */
const SERIAL_PATTERN = /^(?:0x)?([0-9a-f]{1,16})$/i;

/** The zero serial as stored: 16 hex digits. */
const ZERO_SERIAL = "0".repeat(16);

/**
 * Parses a serial from the API, returning it as 16 lowercase hex digits.
 * Serial 0 is rejected: OpenSSH rejects a KRL that lists it ("invalid
 * argument") and never matches certificates with serial 0 against serial
 * lists, so it could only break the KRL. Keyward never issues serial 0.
 */
export function normalizeSerial(serial: string, field = "serial_number"): string {
  const match = SERIAL_PATTERN.exec(serial.trim());
  if (!match) {
    throw new KeywardError(
      "invalid_field",
      `"${field}" must be a certificate serial of 1 to 16 hex digits, as sign returns it`,
      { field },
    );
  }
  const normalized = (match[1] as string).toLowerCase().padStart(16, "0");
  if (normalized === ZERO_SERIAL) {
    throw new KeywardError(
      "invalid_field",
      `"${field}" is 0, which no Keyward certificate has and a KRL cannot list; revoke a certificate with serial 0 by key_id instead`,
      { field },
    );
  }
  return normalized;
}

/** Returns true when `serial` is 16 hex digits other than 0, as a KRL needs. */
function isUsableSerial(serial: string): boolean {
  return /^[0-9a-f]{16}$/.test(serial) && serial !== ZERO_SERIAL;
}

function countUnusableEntries(state: RevocationState): number {
  return (
    state.serials.filter((entry) => !isUsableSerial(entry.serial)).length +
    state.keyIds.filter((keyId) => !isValidKeyId(keyId)).length
  );
}

function emptyState(): RevocationState {
  return {
    version: 0,
    serials: [],
    keyIds: [],
    publicKeys: [],
    retiredCaKeys: [],
    updatedAt: new Date(0).toISOString(),
  };
}

/**
 * The mount's revocations and its KRL. Each change updates the state and
 * rewrites the KRL under one lock, so the served KRL always matches the
 * latest state.
 */
export class RevocationRegistry {
  readonly #store: SshStore;
  readonly #clock: () => Date;
  readonly #logger: Logger;
  readonly #mount: string;

  constructor(store: SshStore, clock: () => Date, logger: Logger, mount: string) {
    this.#store = store;
    this.#clock = clock;
    this.#logger = logger;
    this.#mount = mount;
  }

  async state(): Promise<RevocationState> {
    return (await this.#store.get<RevocationState>(STATE_PATH)) ?? emptyState();
  }

  /**
   * Applies `change` to the state; when it returns true (something changed),
   * bumps the version, stores the state and rewrites the KRL. Stored entries
   * that OpenSSH rejects are dropped first, and dropping one also rewrites
   * the KRL. Throws `internal` and stores nothing when `change` adds such an
   * entry. Returns the resulting state.
   */
  async change(
    reason: string,
    change: (state: RevocationState) => boolean,
  ): Promise<{ state: RevocationState; changed: boolean }> {
    return this.#store.withLock(STATE_PATH, async () => {
      const current = await this.state();
      const next = structuredClone(current);
      const dropped = this.#dropUnusableEntries(next);
      const changed = change(next);
      if (!changed && dropped === 0) return { state: current, changed: false };
      // The API validates what it revokes; this stops a value that slipped
      // past it before the state or the KRL is stored.
      if (countUnusableEntries(next) > 0) {
        throw new KeywardError("internal", "internal error", {
          details: { reason: `revocation "${reason}" holds a value OpenSSH rejects in a KRL` },
        });
      }
      next.version = current.version + 1;
      next.updatedAt = this.#clock().toISOString();
      // The KRL is written first: if storing the state then fails, the next
      // change rebuilds the KRL from the old state plus that change.
      await this.#store.putBytes(KRL_PATH, this.#build(next));
      await this.#store.put(STATE_PATH, next);
      this.#logger.info(
        { mount: this.#mount, krlVersion: next.version, reason },
        "SSH KRL rebuilt",
      );
      return { state: next, changed };
    });
  }

  /**
   * Removes serial 0 and key IDs that are not valid key IDs from `state`, and
   * returns how many it removed. Such entries were stored before the API
   * rejected them; OpenSSH rejects a KRL that lists them, and they match no
   * certificate Keyward issued, so removing them revokes nothing less.
   */
  #dropUnusableEntries(state: RevocationState): number {
    const serials = state.serials.filter((entry) => isUsableSerial(entry.serial));
    const keyIds = state.keyIds.filter(isValidKeyId);
    const dropped = state.serials.length - serials.length + state.keyIds.length - keyIds.length;
    if (dropped > 0) {
      state.serials = serials;
      state.keyIds = keyIds;
      this.#logger.warn(
        { mount: this.#mount, dropped },
        "dropped stored SSH revocations that OpenSSH rejects in a KRL",
      );
    }
    return dropped;
  }

  /** Returns the current KRL; before the first revocation, an empty one. */
  async krl(): Promise<Buffer> {
    const stored = await this.#store.getBytes(KRL_PATH);
    return stored ?? this.#build(emptyState());
  }

  #build(state: RevocationState): Buffer {
    const sections = new Map<string, KrlCertificateSection>();
    const sectionFor = (caPublicKey: string) => {
      let section = sections.get(caPublicKey);
      if (!section) {
        const caKeyBlob =
          caPublicKey === "" ? Buffer.alloc(0) : publicBlobOf({ publicKey: caPublicKey });
        section = { caKeyBlob, serials: [], keyIds: [] };
        sections.set(caPublicKey, section);
      }
      return section;
    };
    for (const { serial, caPublicKey } of state.serials) {
      sectionFor(caPublicKey).serials.push(BigInt(`0x${serial}`));
    }
    if (state.keyIds.length > 0) sectionFor("").keyIds.push(...state.keyIds);
    const hashes = [...state.publicKeys, ...state.retiredCaKeys].map(({ publicKey }) =>
      createHash("sha256").update(publicBlobOf({ publicKey })).digest(),
    );
    return encodeKrl({
      version: BigInt(state.version),
      generatedAt: BigInt(Math.floor(this.#clock().getTime() / 1000)),
      comment: `keyward ${this.#mount}`,
      certificates: [...sections.values()],
      explicitKeys: [],
      sha256Fingerprints: hashes,
    });
  }
}

/** Returns the revocation entry for a plain public key blob. */
export function publicKeyEntry(
  algorithm: string,
  blob: Buffer,
): { fingerprint: string; publicKey: string } {
  return { fingerprint: fingerprintSha256(blob), publicKey: formatPublicKeyLine(algorithm, blob) };
}
