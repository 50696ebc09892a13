import type { FastifyRequest } from "fastify";
import { arrivedOverTls, peerCertificateDer } from "../engines/pki/est/tls.ts";
import { isKeywardError, KeywardError } from "../errors.ts";
import type { DeviceRef } from "./artifacts.ts";
import { type ClientCertificate, ClientCertificates } from "./client-certificates.ts";
import { type DeviceContext, devicePath, deviceRef, serialPath } from "./context.ts";
import { deviceAuthenticationFailed } from "./enrolment.ts";
import { GroupCommit } from "./group-commit.ts";
import type { DeviceService } from "./service.ts";
import type { DeviceRecord, SerialRecord } from "./types.ts";

/** `lastSeenAt` is stored at most this often per device, in milliseconds. */
const LAST_SEEN_INTERVAL_MS = 60_000;

/** A `lastSeenAt` to store: the device as authenticated, and the time. */
interface LastSeen {
  device: DeviceRecord;
  at: Date;
}

/** A device authenticated by its identity certificate. */
export interface AuthenticatedDevice {
  ref: DeviceRef;
  /** Serial number (hex) of the certificate it presented. */
  serial: string;
}

/**
 * Checks TLS client certificates against the registry. The certificate
 * must be a current identity certificate of an enrolled device: its serial
 * is recorded for that device and not superseded. The PKI mount that
 * issued it must verify its signature, and it must be within its validity
 * period and not revoked there.
 */
export class DeviceAuthentication {
  readonly #context: DeviceContext;
  readonly #certificates = new ClientCertificates();
  /** `lastSeenAt` writes of many devices share one commit, because each commit syncs to disk. */
  readonly #lastSeen = new GroupCommit<LastSeen>((writes) => this.#storeLastSeen(writes));

  constructor(context: DeviceContext) {
    this.#context = context;
  }

  /**
   * Returns the device that `certificateDer` identifies, and stores its
   * `lastSeenAt` at most once a minute. `overTls` is false for plain HTTP.
   * Throws `device_authentication_failed` with the reason in the message.
   */
  async authenticate(
    certificateDer: Uint8Array | undefined,
    overTls: boolean,
  ): Promise<AuthenticatedDevice> {
    if (!overTls) {
      throw deviceAuthenticationFailed(
        "the device API requires mutual TLS: connect over HTTPS and present the device's identity certificate",
        "plain_http",
      );
    }
    if (!certificateDer) {
      throw deviceAuthenticationFailed(
        "no TLS client certificate: present the device's identity certificate",
        "no_certificate",
      );
    }
    let certificate: ClientCertificate;
    try {
      certificate = this.#certificates.parse(certificateDer);
    } catch {
      throw deviceAuthenticationFailed("the TLS client certificate cannot be parsed", "unparsable");
    }
    const serial = certificate.serial;

    const device = await this.current(serial);
    const entry = device.certificates.find((certificate) => certificate.serial === serial);
    const pki = entry ? this.#context.pki(entry.mount) : undefined;
    if (!pki) {
      throw deviceAuthenticationFailed(
        "the TLS client certificate's PKI mount is no longer mounted; enrol the device again",
        "mount_gone",
      );
    }
    try {
      await this.#certificates.verify(pki.context, certificateDer, certificate);
    } catch (error) {
      if (isKeywardError(error) && error.code === "permission_denied") {
        throw deviceAuthenticationFailed(error.message, String(error.details?.reason ?? "invalid"));
      }
      throw error;
    }
    await this.#touch(device);
    return { ref: deviceRef(device), serial };
  }

  /**
   * Returns the enrolled device whose current identity certificate has
   * serial `serial` (hex). Called again during long polls, so a device
   * revoked or re-enrolled meanwhile loses access at once. Throws
   * `device_authentication_failed`.
   */
  async current(serial: string): Promise<DeviceRecord> {
    const { store } = this.#context;
    const index = await store.get<SerialRecord>(serialPath(serial));
    const device = index ? await store.get<DeviceRecord>(devicePath(index.device)) : undefined;
    if (!index || !device || device.id !== index.deviceId) {
      throw deviceAuthenticationFailed(
        "the TLS client certificate is not a current identity certificate of a registered device",
        "unknown_serial",
      );
    }
    if (device.state !== "enrolled") {
      throw deviceAuthenticationFailed(
        `device "${device.name}" is ${device.state}, not enrolled`,
        device.state,
      );
    }
    if (!device.certificates.some((certificate) => certificate.serial === serial)) {
      throw deviceAuthenticationFailed(
        "the TLS client certificate was superseded by a later enrolment",
        "superseded",
      );
    }
    return device;
  }

  /** Stores `lastSeenAt` unless it was stored less than a minute ago. A failure is logged, not raised. */
  async #touch(device: DeviceRecord): Promise<void> {
    const { clock, logger, lastSeenWrites } = this.#context;
    const now = clock();
    const previous = lastSeenWrites.get(device.name);
    if (previous !== undefined && now.getTime() - previous < LAST_SEEN_INTERVAL_MS) return;
    lastSeenWrites.set(device.name, now.getTime());
    try {
      await this.#lastSeen.write({ device, at: now });
    } catch (error) {
      logger.warn({ device: device.name, err: error }, "failed to store a device's last_seen_at");
    }
  }

  /**
   * Stores the `lastSeenAt` of each device in one transaction while holding
   * every device's lock, as the registry's changes do, so none of them is
   * lost between a registry read and its write. A device deleted or
   * enrolled anew since it authenticated is skipped.
   */
  async #storeLastSeen(writes: readonly LastSeen[]): Promise<Map<number, unknown>> {
    const { store } = this.#context;
    const latest = new Map<string, LastSeen>();
    for (const write of writes) latest.set(write.device.name, write);
    // Locks are taken in name order, and every other holder of a device lock
    // takes that one lock alone, so no two holders wait for each other.
    const names = [...latest.keys()].sort();
    const failed = new Map<string, unknown>();
    await withLocks(this.#context, names, 0, () =>
      store.transaction(async (writer) => {
        failed.clear();
        for (const { device, at } of latest.values()) {
          let current: DeviceRecord | undefined;
          try {
            current = await writer.get<DeviceRecord>(devicePath(device.name));
          } catch (error) {
            failed.set(device.name, error);
            continue;
          }
          if (!current || current.id !== device.id) continue;
          await writer.put(devicePath(device.name), { ...current, lastSeenAt: at.toISOString() });
        }
      }),
    );
    const failures = new Map<number, unknown>();
    writes.forEach((write, index) => {
      if (failed.has(write.device.name)) failures.set(index, failed.get(write.device.name));
    });
    return failures;
  }
}

/** Runs `work` while holding the registry locks of `names` from index `from` on, taken in order. */
async function withLocks<T>(
  context: DeviceContext,
  names: readonly string[],
  from: number,
  work: () => Promise<T>,
): Promise<T> {
  const name = names[from];
  if (name === undefined) return work();
  return context.store.withLock(name, () => withLocks(context, names, from + 1, work));
}

declare module "fastify" {
  interface FastifyInstance {
    /**
     * Returns the running device registry, or throws `sealed`. Set by
     * `registerDeviceRoutes`, for routes of the device API.
     */
    deviceService?: () => DeviceService;
  }
}

function serviceOf(request: FastifyRequest): DeviceService {
  const resolve = request.server.deviceService;
  if (!resolve) {
    throw new KeywardError("internal", "internal error", {
      details: { reason: "the device routes are not registered on this server" },
    });
  }
  return resolve();
}

/**
 * Authenticates a request to the device API by its TLS client certificate
 * and returns the device and the certificate's serial. Throws
 * `device_authentication_failed` (401), also for plain HTTP.
 */
export async function authenticateDeviceRequest(
  request: FastifyRequest,
): Promise<AuthenticatedDevice> {
  return serviceOf(request).authentication.authenticate(
    peerCertificateDer(request),
    arrivedOverTls(request),
  );
}

/**
 * Authenticates a request to the device API by its TLS client certificate:
 * it must be a current, unrevoked identity certificate of an enrolled,
 * unrevoked device. Returns that device, or throws
 * `device_authentication_failed` (401). Routes that call it declare
 * `config: { public: true }`, because devices send no token.
 */
export async function authenticateDevice(request: FastifyRequest): Promise<DeviceRef> {
  return (await authenticateDeviceRequest(request)).ref;
}
