import { createHash, randomBytes } from "node:crypto";
import { constantTimeEqual } from "../../../crypto/compare.ts";
import { KeywardError } from "../../../errors.ts";
import type { PkiStore } from "../store.ts";

/** Device ids: the HTTP Basic user name, so no `:`; one path segment. */
const DEVICE_ID = /^[A-Za-z0-9._@-]{1,128}$/;

/** Random bytes in each secret: 256 bits, so a fast hash suffices to store it. */
const SECRET_BYTES = 32;

/** Lifetime of a new secret when the request gives none, in seconds (72 hours). */
export const DEFAULT_SECRET_TTL_SECONDS = 72 * 3600;

const FOLDER = "est/enrollment-secrets";

/** A device's single-use enrolment secret, at `<mount>/est/enrollment-secrets/<device id>`. */
export interface EnrollmentSecretRecord {
  deviceId: string;
  /** SHA-256 of the secret, base64. The secret itself is returned once and never stored. */
  secretSha256: string;
  createdAt: string;
  expiresAt: string;
  /** The EST label the secret is bound to; it then enrols only at `/.well-known/est/<label>/`. Absent: any path. */
  label?: string;
  /** Set when an enrolment used the secret; a used secret authenticates nothing. */
  usedAt?: string;
  /** Serial number of the certificate issued with the secret, colon-separated hex. */
  issuedSerial?: string;
}

/** The reason a presented secret was rejected, which is logged and never sent to the client. */
export type SecretRejection =
  | "unknown_device"
  | "wrong_secret"
  | "already_used"
  | "expired"
  | "wrong_label";

/** Thrown for any rejected secret. One code and message for every reason, so the response is no oracle. */
export function invalidCredentials(
  reason: SecretRejection | "missing",
  deviceId?: string,
): KeywardError {
  return new KeywardError(
    "authentication_required",
    "the EST credentials are missing or invalid; send a valid device id and enrolment secret with HTTP Basic",
    { details: { reason, deviceId } },
  );
}

function sha256(text: string): Buffer {
  return createHash("sha256").update(text, "utf8").digest();
}

/** Hash compared against when the device id is unknown, so that case costs the same work. */
const UNKNOWN_DEVICE_HASH = sha256("unknown device");

export function validateDeviceId(deviceId: string): void {
  if (!DEVICE_ID.test(deviceId)) {
    throw new KeywardError(
      "invalid_field",
      'device ids must be 1-128 letters, digits, ".", "_", "@" or "-"',
      { field: "device_id" },
    );
  }
}

/**
 * Per-device, single-use credentials for HTTP Basic authentication of EST
 * enrolments. Creating a secret for a device replaces any earlier one.
 * Used and expired records stay until deleted, so an operator can see
 * which devices enrolled.
 */
export class EnrollmentSecrets {
  readonly #store: PkiStore;
  readonly #clock: () => Date;

  constructor(store: PkiStore, clock: () => Date) {
    this.#store = store;
    this.#clock = clock;
  }

  /**
   * Creates a secret for `deviceId` valid for `ttlSeconds`, bound to
   * `label` when given, and returns the record with the secret. The caller
   * checks that the label is configured.
   */
  async create(
    deviceId: string,
    ttlSeconds: number,
    label?: string,
  ): Promise<{ record: EnrollmentSecretRecord; secret: string }> {
    validateDeviceId(deviceId);
    if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds <= 0) {
      throw new KeywardError("invalid_field", '"ttl" must be a positive duration', {
        field: "ttl",
      });
    }
    const secret = randomBytes(SECRET_BYTES).toString("base64url");
    const now = this.#clock();
    const record: EnrollmentSecretRecord = {
      deviceId,
      secretSha256: sha256(secret).toString("base64"),
      createdAt: now.toISOString(),
      expiresAt: new Date(now.getTime() + ttlSeconds * 1000).toISOString(),
      ...(label === undefined ? {} : { label }),
    };
    await this.#store.withLock(this.#path(deviceId), () =>
      this.#store.put(this.#path(deviceId), record),
    );
    return { record, secret };
  }

  async read(deviceId: string): Promise<EnrollmentSecretRecord | undefined> {
    validateDeviceId(deviceId);
    return this.#store.get<EnrollmentSecretRecord>(this.#path(deviceId));
  }

  async list(): Promise<string[]> {
    return this.#store.list(FOLDER);
  }

  async delete(deviceId: string): Promise<void> {
    validateDeviceId(deviceId);
    await this.#store.withLock(this.#path(deviceId), () =>
      this.#store.delete(this.#path(deviceId)),
    );
  }

  /**
   * Checks `secret` for `deviceId` and runs `enrol` while holding the
   * device's lock, then marks the secret used with the serial `enrol`
   * returns. A failed enrolment leaves the secret unused, and two
   * concurrent requests with one secret cannot both succeed. Throws
   * `authentication_required` for an unknown device, a wrong, used or
   * expired secret, and for a secret bound to another label than `label`
   * (undefined for the unlabelled path).
   */
  async redeem<T extends { serial_number: string }>(
    deviceId: string,
    secret: string,
    label: string | undefined,
    enrol: () => Promise<T>,
  ): Promise<T> {
    if (!DEVICE_ID.test(deviceId)) throw invalidCredentials("unknown_device");
    const path = this.#path(deviceId);
    return this.#store.withLock(path, async () => {
      const record = await this.#store.get<EnrollmentSecretRecord>(path);
      const expected = record ? Buffer.from(record.secretSha256, "base64") : UNKNOWN_DEVICE_HASH;
      const matches = constantTimeEqual(sha256(secret), expected);
      if (!record) throw invalidCredentials("unknown_device", deviceId);
      if (!matches) throw invalidCredentials("wrong_secret", deviceId);
      if (record.usedAt !== undefined) throw invalidCredentials("already_used", deviceId);
      if (Date.parse(record.expiresAt) <= this.#clock().getTime()) {
        throw invalidCredentials("expired", deviceId);
      }
      if (record.label !== undefined && record.label !== label) {
        throw invalidCredentials("wrong_label", deviceId);
      }

      const result = await enrol();
      await this.#store.put(path, {
        ...record,
        usedAt: this.#clock().toISOString(),
        issuedSerial: result.serial_number,
      });
      return result;
    });
  }

  #path(deviceId: string): string {
    return `${FOLDER}/${deviceId}`;
  }
}
