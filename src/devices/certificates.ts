import { isIP } from "node:net";
import type { Logger } from "pino";
import { parseDuration } from "../auth/duration.ts";
import { normaliseSerialHex } from "../engines/pki/key-pairs.ts";
import type { PkiService } from "../engines/pki/service.ts";
import { invalidField, isKeywardError, KeywardError, notFound } from "../errors.ts";
import type {
  DeviceArtifact,
  DeviceArtifactSource,
  DeviceChangeNotifier,
  DeviceRef,
} from "./artifacts.ts";
import { checkNameTemplates, checkServiceCsr, renderNames } from "./certificate-names.ts";
import { DEVICES_CERTIFICATE_OWNER, type PkiResolver } from "./identity-certificates.ts";
import { validateName, validateNameList } from "./names.ts";
import type { AudienceResolver } from "./secrets.ts";
import type { DeviceStore } from "./store.ts";

/** The artifact kind of service certificates. */
export const CERTIFICATE_ARTIFACT_KIND = "certificate";

/** Part of a certificate's lifetime after which the agent renews, unless an assignment sets another. */
export const DEFAULT_RENEW_FRACTION = 2 / 3;

const FOLDER = "certificates";
const ISSUED_FOLDER = "certificate-issued";

/** Returns the artifact id of certificate assignment `name`: `certificate:<name>`. */
export function certificateArtifactId(name: string): string {
  return `${CERTIFICATE_ARTIFACT_KIND}:${name}`;
}

/** A certificate assignment: which devices get a certificate, with which names, from which PKI role. */
export interface CertificateAssignment {
  name: string;
  pkiMount: string;
  pkiRole: string;
  groups: string[];
  devices: string[];
  /** Template of the common name, in which `{{device}}` becomes the device name. */
  commonName: string;
  /** Templates of the subject alternative names. */
  altNames: string[];
  /** Requested lifetime in seconds, or the role's TTL when absent. */
  ttlSeconds?: number;
  renewFraction: number;
  /** Rises when the name templates change, so every device's artifact version rises. */
  revision: number;
  createdAt: string;
  updatedAt: string;
}

/** A certificate the PKI issued for this assignment, kept so it can be revoked. */
interface IssuedSerial {
  /** Hex, as the PKI's revocation takes it. */
  serial: string;
  mount: string;
  /** RFC 3339. */
  expiration: string;
}

/** The newest certificate of one device under one assignment. */
interface IssuedCertificate {
  certificate: string;
  caChain: string[];
  /** Colon-separated hex, as the PKI engine shows it. */
  serialNumber: string;
  /** Unix seconds. */
  expiration: number;
  /** Unix seconds. */
  renewAfter: number;
  /** Number of certificates this device received under the assignment, a part of the artifact version. */
  count: number;
  /** Every unexpired certificate issued to the device under this assignment, the newest last. */
  serials: IssuedSerial[];
}

/** Fields of a create or update. Omitted optional fields keep their value (or take the default). */
export interface CertificateAssignmentInput {
  pki_mount?: string;
  role?: string;
  groups?: string[];
  devices?: string[];
  common_name?: string;
  alt_names?: string[];
  ttl?: number | string;
  renew_fraction?: number;
}

/** Response of the device API to a signed CSR. */
export interface IssuedCertificateView {
  certificate: string;
  ca_chain: string[];
  serial_number: string;
  expiration: number;
  renew_after: number;
  version: number;
}

export interface DeviceCertificatesOptions {
  store: DeviceStore;
  clock: () => Date;
  logger: Logger;
  notifier: DeviceChangeNotifier;
  audience: AudienceResolver;
  pki: PkiResolver;
}

/** Returns what the admin API shows of an assignment. */
export function certificateAssignmentView(record: CertificateAssignment) {
  return {
    name: record.name,
    artifact_id: certificateArtifactId(record.name),
    pki_mount: record.pkiMount,
    role: record.pkiRole,
    groups: record.groups,
    devices: record.devices,
    common_name: record.commonName,
    alt_names: record.altNames,
    ttl: record.ttlSeconds ?? null,
    renew_fraction: record.renewFraction,
    created_at: record.createdAt,
    updated_at: record.updatedAt,
  };
}

function inAudience(record: CertificateAssignment, device: DeviceRef): boolean {
  return (
    record.devices.includes(device.name) ||
    record.groups.some((group) => device.groups.includes(group))
  );
}

/**
 * Certificates for services on devices, such as a RADIUS server's TLS
 * certificate or an IKE gateway's certificate. An assignment names an
 * audience, a PKI role and name templates. Each device in the audience
 * gets a `certificate:<name>` artifact with its rendered names. Its agent
 * makes the key pair and sends a CSR with exactly those names (`issue`).
 * It then receives the signed certificate in the artifact, whose version
 * rises. Private keys never reach the server, so the
 * artifact has no secret fields. These certificates are separate from
 * identity certificates: they never authenticate a device to Keyward.
 */
export class DeviceCertificates implements DeviceArtifactSource {
  readonly kind = CERTIFICATE_ARTIFACT_KIND;
  readonly #options: DeviceCertificatesOptions;

  constructor(options: DeviceCertificatesOptions) {
    this.#options = options;
  }

  get #store(): DeviceStore {
    return this.#options.store;
  }

  /**
   * Creates assignment `name` or updates it. On create `pki_mount`,
   * `role` and `common_name` are required. The role must exist and store
   * its certificates, so that they can be revoked. Wakes the devices of
   * the old and the new audience.
   */
  async write(name: string, input: CertificateAssignmentInput): Promise<CertificateAssignment> {
    validateName(name, "name");
    const groups =
      input.groups === undefined ? undefined : validateNameList(input.groups, "groups");
    const devices =
      input.devices === undefined ? undefined : validateNameList(input.devices, "devices");
    const { record, previous } = await this.#store.withLock(this.#lockName(name), async () => {
      const existing = await this.#store.get<CertificateAssignment>(this.#path(name));
      const pkiMount = input.pki_mount ?? existing?.pkiMount;
      const pkiRole = input.role ?? existing?.pkiRole;
      const commonName = input.common_name ?? existing?.commonName;
      if (pkiMount === undefined) throw invalidField("pki_mount", `"pki_mount" is required`);
      if (pkiRole === undefined) throw invalidField("role", `"role" is required`);
      if (commonName === undefined) throw invalidField("common_name", `"common_name" is required`);
      const altNames = input.alt_names ?? existing?.altNames ?? [];
      checkNameTemplates(commonName, altNames);
      await this.#checkRole(pkiMount, pkiRole);
      const ttlSeconds =
        input.ttl === undefined ? existing?.ttlSeconds : checkTtl(parseDuration(input.ttl, "ttl"));
      const renewFraction = checkRenewFraction(
        input.renew_fraction ?? existing?.renewFraction ?? DEFAULT_RENEW_FRACTION,
      );
      const namesChanged =
        existing !== undefined &&
        (existing.commonName !== commonName ||
          JSON.stringify(existing.altNames) !== JSON.stringify(altNames));
      const now = this.#options.clock().toISOString();
      const updated: CertificateAssignment = {
        name,
        pkiMount,
        pkiRole,
        groups: groups ?? existing?.groups ?? [],
        devices: devices ?? existing?.devices ?? [],
        commonName,
        altNames: [...altNames],
        ...(ttlSeconds === undefined ? {} : { ttlSeconds }),
        renewFraction,
        revision: (existing?.revision ?? 0) + (namesChanged ? 1 : 0),
        createdAt: existing?.createdAt ?? now,
        updatedAt: now,
      };
      await this.#store.put(this.#path(name), updated);
      return { record: updated, previous: existing };
    });
    if (!previous)
      this.#options.logger.info({ certificate: name }, "created certificate assignment");
    await this.#notify([record, ...(previous ? [previous] : [])]);
    return record;
  }

  async read(name: string): Promise<CertificateAssignment | undefined> {
    validateName(name, "name");
    return this.#store.get<CertificateAssignment>(this.#path(name));
  }

  async list(): Promise<string[]> {
    return this.#store.list(FOLDER);
  }

  /**
   * Deletes assignment `name` and its records of issued certificates.
   * Devices drop the artifact at their next poll, but the certificates
   * they have stay valid until they expire. Deleting a missing assignment is no error.
   */
  async delete(name: string): Promise<void> {
    validateName(name, "name");
    const existing = await this.#store.withLock(this.#lockName(name), async () => {
      const record = await this.#store.get<CertificateAssignment>(this.#path(name));
      if (!record) return undefined;
      const issued = await this.#store.list(`${ISSUED_FOLDER}/${name}`);
      await this.#store.transaction(async (writer) => {
        for (const device of issued) await writer.delete(this.#issuedPath(name, device));
        await writer.delete(this.#path(name));
      });
      return record;
    });
    if (!existing) return;
    this.#options.logger.info({ certificate: name }, "deleted certificate assignment");
    await this.#notify([existing]);
  }

  /**
   * Signs `csrText` for `device` under assignment `name` and stores the
   * certificate, which raises the artifact's version. The CSR must carry
   * exactly the device's rendered names. Throws `permission_denied` when
   * the assignment does not cover the device.
   */
  async issue(name: string, device: DeviceRef, csrText: string): Promise<IssuedCertificateView> {
    validateName(name, "name");
    const assignment = await this.#store.get<CertificateAssignment>(this.#path(name));
    if (!assignment || !inAudience(assignment, device)) {
      throw new KeywardError(
        "permission_denied",
        `certificate "${name}" is not assigned to device "${device.name}"`,
      );
    }

    const names = renderNames(assignment.commonName, assignment.altNames, device.name);
    await checkServiceCsr(csrText, names);

    const pki = this.#options.pki(assignment.pkiMount);
    if (!pki) {
      throw new KeywardError(
        "invalid_state",
        `the PKI mount "${assignment.pkiMount}" of certificate "${name}" is no longer mounted; update the assignment`,
      );
    }
    const signed = await pki.sign(
      assignment.pkiRole,
      {
        csr: csrText,
        common_name: names.commonName,
        alt_names: names.altNames.filter((altName) => !isIpName(altName)),
        ip_sans: names.altNames.filter(isIpName),
        // The certificate carries exactly the names of the CSR.
        exclude_cn_from_sans: true,
        format: "pem",
        ...(assignment.ttlSeconds === undefined ? {} : { ttl: assignment.ttlSeconds }),
      },
      undefined,
      DEVICES_CERTIFICATE_OWNER,
    );

    const now = this.#options.clock();
    const issuedAt = Math.floor(now.getTime() / 1000);
    const renewAfter =
      issuedAt + Math.floor((signed.expiration - issuedAt) * assignment.renewFraction);
    const issued = await this.#store.withLock(this.#issuedLock(name, device.name), async () => {
      const existing = await this.#store.get<IssuedCertificate>(
        this.#issuedPath(name, device.name),
      );
      const current = (existing?.serials ?? []).filter(
        (entry) => Date.parse(entry.expiration) > now.getTime(),
      );
      const record: IssuedCertificate = {
        certificate: signed.certificate,
        caChain: signed.ca_chain,
        serialNumber: signed.serial_number,
        expiration: signed.expiration,
        renewAfter,
        count: (existing?.count ?? 0) + 1,
        serials: [
          ...current,
          {
            serial: normaliseSerialHex(signed.serial_number.replaceAll(":", "")),
            mount: assignment.pkiMount,
            expiration: new Date(signed.expiration * 1000).toISOString(),
          },
        ],
      };
      await this.#store.put(this.#issuedPath(name, device.name), record);
      return record;
    });

    this.#options.logger.info(
      { certificate: name, device: device.name, serialNumber: signed.serial_number },
      "issued device certificate",
    );
    this.#options.notifier.changed([device.name]);
    return {
      certificate: issued.certificate,
      ca_chain: issued.caChain,
      serial_number: issued.serialNumber,
      expiration: issued.expiration,
      renew_after: issued.renewAfter,
      version: assignment.revision + issued.count,
    };
  }

  async artifactsFor(device: DeviceRef): Promise<DeviceArtifact[]> {
    const artifacts: DeviceArtifact[] = [];
    // NOTE: like the shared secrets, this reads every assignment on each state request.
    for (const name of await this.list()) {
      const record = await this.#store.get<CertificateAssignment>(this.#path(name));
      if (!record || !inAudience(record, device)) continue;
      const issued = await this.#store.get<IssuedCertificate>(this.#issuedPath(name, device.name));
      const names = renderNames(record.commonName, record.altNames, device.name);
      artifacts.push({
        id: certificateArtifactId(name),
        kind: CERTIFICATE_ARTIFACT_KIND,
        version: record.revision + (issued?.count ?? 0),
        fields: {
          name,
          common_name: names.commonName,
          alt_names: names.altNames,
          certificate: issued?.certificate ?? null,
          ca_chain: issued?.caChain ?? [],
          serial_number: issued?.serialNumber ?? null,
          expiration: issued?.expiration ?? null,
          renew_after: issued?.renewAfter ?? null,
        },
        secrets: {},
      });
    }
    return artifacts;
  }

  /**
   * Revokes every unexpired certificate issued to `device` under any
   * assignment, in the PKI mount that issued it, and deletes the device's
   * records. A certificate whose mount is gone or no longer stores it is
   * logged and skipped.
   */
  async deviceRevoked(device: DeviceRef): Promise<void> {
    for (const name of await this.list()) {
      await this.#store.withLock(this.#issuedLock(name, device.name), async () => {
        const path = this.#issuedPath(name, device.name);
        const issued = await this.#store.get<IssuedCertificate>(path);
        if (!issued) return;
        for (const entry of issued.serials) await this.#revoke(entry, name, device.name);
        await this.#store.transaction((writer) => writer.delete(path));
      });
    }
  }

  async #revoke(entry: IssuedSerial, name: string, device: string): Promise<void> {
    const fields = { certificate: name, device, mount: entry.mount, serial: entry.serial };
    const pki = this.#options.pki(entry.mount);
    if (!pki) {
      this.#options.logger.warn(fields, "device certificate not revoked: its PKI mount is gone");
      return;
    }
    try {
      await pki.revocation.revoke(entry.serial);
      this.#options.logger.info(fields, "revoked device certificate");
    } catch (error) {
      if (!(isKeywardError(error) && error.code === "not_found")) throw error;
      this.#options.logger.warn(
        fields,
        "device certificate not revoked: the PKI mount no longer stores it",
      );
    }
  }

  async #checkRole(mount: string, roleName: string): Promise<PkiService> {
    const pki = this.#options.pki(mount);
    if (!pki) throw invalidField("pki_mount", `no PKI engine is mounted at "${mount}/"`);
    const role = await pki.readRole(roleName).catch((error: unknown) => {
      if (isKeywardError(error) && error.code === "invalid_field") {
        throw invalidField("role", error.message);
      }
      throw error;
    });
    if (!role) {
      throw invalidField("role", `role "${roleName}" does not exist in PKI mount "${mount}"`);
    }
    if (role.no_store) {
      throw invalidField(
        "role",
        `role "${roleName}" has no_store set, so the certificates it issues could not be revoked; use a role that stores certificates`,
      );
    }
    return pki;
  }

  async #notify(records: readonly CertificateAssignment[]): Promise<void> {
    const names = new Set<string>();
    for (const record of records) {
      for (const name of await this.#options.audience(record.groups, record.devices)) {
        names.add(name);
      }
    }
    if (names.size > 0) this.#options.notifier.changed([...names]);
  }

  #path(name: string): string {
    return `${FOLDER}/${name}`;
  }

  #issuedPath(name: string, device: string): string {
    return `${ISSUED_FOLDER}/${name}/${device}`;
  }

  #lockName(name: string): string {
    return `certificate:${name}`;
  }

  #issuedLock(name: string, device: string): string {
    return `certificate:${name}:${device}`;
  }
}

function isIpName(name: string): boolean {
  return isIP(name) !== 0;
}

function checkTtl(seconds: number): number {
  if (seconds <= 0) throw invalidField("ttl", `"ttl" must be positive`);
  return seconds;
}

function checkRenewFraction(fraction: number): number {
  if (typeof fraction !== "number" || !(fraction > 0 && fraction < 1)) {
    throw invalidField(
      "renew_fraction",
      `"renew_fraction" must be a number between 0 and 1 (exclusive), such as 0.66`,
    );
  }
  return fraction;
}

/** Returns `notFound` for assignment `name`, for the routes. */
export function assignmentNotFound(name: string): KeywardError {
  return notFound(`certificate assignment "${name}"`);
}
