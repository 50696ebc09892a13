import { LoginRateLimiter } from "../auth/rate-limiter.ts";
import { KeywardError } from "../errors.ts";
import type { DeviceRef } from "./artifacts.ts";
import { isTokenRejection } from "./bootstrap-tokens.ts";
import { type DeviceContext, devicePath, serialPath } from "./context.ts";
import { checkEncryptionKey } from "./encryption-key.ts";
import {
  checkIdentityCsr,
  configuredPki,
  type IssuedIdentity,
  type PkiResolver,
  revokeIdentityCertificates,
  signIdentityCertificate,
} from "./identity-certificates.ts";
import { type DeviceRegistry, deviceRevokedError } from "./registry.ts";
import type { DeviceRecord, IdentityCertificate, SerialRecord } from "./types.ts";

/** Fields of `POST /v1/devices/enroll`. */
export interface EnrolmentRequest {
  bootstrap_token: string;
  csr: string;
  encryption_key: unknown;
}

/** Fields of `POST /v1/devices/self/renew`. */
export interface RenewalRequest {
  csr: string;
  encryption_key?: unknown;
}

/** The response to enrolment and renewal. */
export interface EnrolmentResponse {
  device: string;
  device_id: string;
  certificate: string;
  ca_chain: string[];
  serial_number: string;
  expiration: number;
  renew_after: number;
}

function response(device: DeviceRecord, issued: IssuedIdentity): EnrolmentResponse {
  return {
    device: device.name,
    device_id: device.id,
    certificate: issued.certificate,
    ca_chain: issued.caChain,
    serial_number: issued.serialNumber,
    expiration: issued.expiration,
    renew_after: issued.renewAfter,
  };
}

/** Returns the error for a device that changed state while it was being served. */
export function deviceAuthenticationFailed(message: string, reason: string): KeywardError {
  return new KeywardError("device_authentication_failed", message, { details: { reason } });
}

/**
 * Enrolment with a bootstrap token and renewal with the current identity
 * certificate. Both check the CSR and the encryption key before signing,
 * so a rejected request uses up no token. Failed token checks are
 * rate-limited per source address, as AppRole logins are.
 */
export class DeviceEnrolment {
  readonly #context: DeviceContext;
  readonly #registry: DeviceRegistry;
  readonly #failures: LoginRateLimiter;

  constructor(
    context: DeviceContext,
    registry: DeviceRegistry,
    failures: LoginRateLimiter = new LoginRateLimiter(),
  ) {
    this.#context = context;
    this.#registry = registry;
    this.#failures = failures;
  }

  /**
   * Enrols the device a bootstrap token belongs to: signs its CSR, stores
   * its encryption key and counts one use of the token. Re-enrolment keeps
   * the device's name and id and revokes its earlier identity certificates
   * (reason superseded) before it signs, so a failed revocation fails the
   * enrolment with nothing committed. Throws `rate_limited` when
   * `sourceAddress` failed too often, and `bootstrap_token_*` or
   * `device_revoked` for a token that does not allow the enrolment.
   */
  async enrol(request: EnrolmentRequest, sourceAddress: string): Promise<EnrolmentResponse> {
    const addressKey = `address:${sourceAddress}`;
    this.#failures.check(addressKey);
    try {
      const result = await this.#enrol(request);
      this.#failures.succeed(addressKey);
      return result;
    } catch (error) {
      if (isTokenRejection(error)) {
        this.#failures.fail(addressKey);
        this.#context.logger.info(
          { sourceAddress, ...(error as KeywardError).details },
          "device enrolment rejected",
        );
      }
      throw error;
    }
  }

  async #enrol(request: EnrolmentRequest): Promise<EnrolmentResponse> {
    const { store, clock, logger, tokens, pki, waiters } = this.#context;
    const config = await this.#registry.requireConfig();
    const found = await tokens.find(request.bootstrap_token);
    const { device, issued } = await store.withLock(found.device, async () => {
      // Read again under the device's lock: a concurrent enrolment may have used the token.
      const token = await tokens.find(request.bootstrap_token);
      const existing = await store.get<DeviceRecord>(devicePath(token.device));
      const now = clock();
      this.#context.tokens.check(token, existing, now);
      if (existing.state === "revoked") throw deviceRevokedError(existing.name);

      const key = await checkEncryptionKey(request.encryption_key);
      await checkIdentityCsr(request.csr, existing.name);
      // Revoked before anything is signed or committed, so a failed
      // revocation leaves the token's uses unchanged and the client can
      // retry. Revoking an already revoked certificate on that retry succeeds.
      await revokeIdentityCertificates(pki, existing.certificates, "superseded", logger);
      const identity = await signIdentityCertificate(
        configuredPki(pki, config),
        config,
        existing.name,
        request.csr,
        now,
      );

      const serialRecord: SerialRecord = { device: existing.name, deviceId: existing.id };
      const { updated, superseded } = await withdrawnOnFailure(pki, identity.record, logger, () =>
        store.transaction(async (writer) => {
          // Another node may have used the token, or changed or deleted the
          // device, since they were read above.
          const currentToken = await tokens.readAgain(writer, token);
          const current = await writer.get<DeviceRecord>(devicePath(existing.name));
          this.#context.tokens.check(currentToken, current, now);
          if (current.state === "revoked") throw deviceRevokedError(current.name);
          const enrolled: DeviceRecord = {
            ...current,
            state: "enrolled",
            certificates: [identity.record],
            encryptionKey: key.jwk,
            encryptionKeyId: key.keyId,
            enrolledAt: now.toISOString(),
            updatedAt: now.toISOString(),
          };
          await tokens.consume(writer, currentToken);
          for (const certificate of current.certificates) {
            await writer.delete(serialPath(certificate.serial));
          }
          await writer.put(serialPath(identity.record.serial), serialRecord);
          await writer.put(devicePath(current.name), enrolled);
          return { updated: enrolled, superseded: current.certificates };
        }),
      );
      const addedMeanwhile = superseded.filter(
        (certificate) =>
          !existing.certificates.some((earlier) => sameCertificate(earlier, certificate)),
      );
      await revokeAfterCommit(pki, updated, addedMeanwhile, logger);
      return { device: updated, issued: identity };
    });
    logger.info(
      { device: device.name, deviceId: device.id, serial: issued.record.serial },
      "enrolled device",
    );
    waiters.changed([device.name]);
    return response(device, issued);
  }

  /**
   * Issues a new identity certificate to an authenticated device, and
   * replaces its encryption key when the request has one. Earlier
   * certificates stay valid until they expire, and expired ones are
   * dropped from the record.
   */
  async renew(ref: DeviceRef, request: RenewalRequest): Promise<EnrolmentResponse> {
    const { store, clock, logger, pki, waiters } = this.#context;
    const config = await this.#registry.requireConfig();
    const { device, issued } = await store.withLock(ref.name, async () => {
      const existing = await store.get<DeviceRecord>(devicePath(ref.name));
      if (!existing || existing.id !== ref.id || existing.state !== "enrolled") {
        throw deviceAuthenticationFailed(
          "the device was revoked or deleted while the request was served",
          "state_changed",
        );
      }
      const key =
        request.encryption_key === undefined
          ? undefined
          : await checkEncryptionKey(request.encryption_key);
      await checkIdentityCsr(request.csr, existing.name);
      const now = clock();
      const identity = await signIdentityCertificate(
        configuredPki(pki, config),
        config,
        existing.name,
        request.csr,
        now,
      );
      const serialRecord: SerialRecord = { device: existing.name, deviceId: existing.id };
      const updated = await withdrawnOnFailure(pki, identity.record, logger, () =>
        store.transaction(async (writer) => {
          // Another node may have revoked, deleted or changed the device since it was read above.
          const current = await writer.get<DeviceRecord>(devicePath(ref.name));
          if (!current || current.id !== ref.id || current.state !== "enrolled") {
            throw deviceAuthenticationFailed(
              "the device was revoked or deleted while the request was served",
              "state_changed",
            );
          }
          const expired = current.certificates.filter(
            (certificate) => Date.parse(certificate.expiration) <= now.getTime(),
          );
          const renewed: DeviceRecord = {
            ...current,
            certificates: [
              ...current.certificates.filter((certificate) => !expired.includes(certificate)),
              identity.record,
            ],
            ...(key ? { encryptionKey: key.jwk, encryptionKeyId: key.keyId } : {}),
            updatedAt: now.toISOString(),
          };
          for (const certificate of expired) await writer.delete(serialPath(certificate.serial));
          await writer.put(serialPath(identity.record.serial), serialRecord);
          await writer.put(devicePath(current.name), renewed);
          return renewed;
        }),
      );
      return { device: updated, issued: identity };
    });
    logger.info({ device: device.name, serial: issued.record.serial }, "renewed device identity");
    if (request.encryption_key !== undefined) waiters.changed([device.name]);
    return response(device, issued);
  }
}

function sameCertificate(a: IdentityCertificate, b: IdentityCertificate): boolean {
  return a.mount === b.mount && a.serial === b.serial;
}

/**
 * Revokes identity certificates that a committed re-enrolment removed from
 * the device record although it had not revoked them before its
 * transaction, because another node added them meanwhile (a renewal). A
 * failure is logged, not raised: the enrolment is committed and its token
 * used, so the client must still get its certificate. No device record
 * lists such a certificate any more, so the log entry is the only trace.
 */
async function revokeAfterCommit(
  pki: PkiResolver,
  device: DeviceRecord,
  certificates: readonly IdentityCertificate[],
  logger: DeviceContext["logger"],
): Promise<void> {
  for (const certificate of certificates) {
    try {
      await revokeIdentityCertificates(pki, [certificate], "superseded", logger);
    } catch (error) {
      logger.error(
        {
          err: error,
          device: device.name,
          deviceId: device.id,
          mount: certificate.mount,
          serial: certificate.serial,
        },
        "failed to revoke an identity certificate that re-enrolment superseded; an operator must revoke this serial, because no device record lists it any more",
      );
    }
  }
}

/**
 * Runs the transaction that records a newly issued identity certificate.
 * When it fails, no device record lists the certificate, so no later
 * deletion or re-enrolment would revoke it. It is revoked here (reason
 * cessationOfOperation) before the error is raised again. A failed
 * revocation is logged, not raised, so the caller still gets the
 * transaction's error.
 */
async function withdrawnOnFailure<T>(
  pki: PkiResolver,
  issued: IdentityCertificate,
  logger: DeviceContext["logger"],
  record: () => Promise<T>,
): Promise<T> {
  try {
    return await record();
  } catch (error) {
    try {
      await revokeIdentityCertificates(pki, [issued], "cessationOfOperation", logger);
      logger.info(
        { mount: issued.mount, serial: issued.serial },
        "revoked the identity certificate of a failed enrolment or renewal",
      );
    } catch (revocationError) {
      logger.error(
        { err: revocationError, mount: issued.mount, serial: issued.serial },
        "failed to revoke the identity certificate of a failed enrolment or renewal; revoke it by serial",
      );
    }
    throw error;
  }
}
