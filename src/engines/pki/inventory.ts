import { KeywardError } from "../../errors.ts";
import { normaliseSerialHex, serialHexOf } from "./key-pairs.ts";
import { toPem } from "./pem.ts";
import type { PkiStore } from "./store.ts";
import type { CertificateRecord } from "./types.ts";
import * as x509 from "./x509.ts";

/** Maximum serial length accepted in a path or field: 20 octets (RFC 5280 section 4.1.2.2). */
const MAX_SERIAL_OCTETS = 20;

/**
 * Parses a serial number as Vault accepts it: hex byte pairs separated by
 * colons or dashes (`1a:2b:…`), or plain hex. Returns lower-case hex without
 * separators. Throws `invalid_field` naming `field` for anything else.
 */
export function parseSerial(value: string, field = "serial_number"): string {
  const trimmed = value.trim().toLowerCase();
  const plain = /^[0-9a-f]+$/.test(trimmed)
    ? trimmed
    : /^[0-9a-f]{1,2}([:-][0-9a-f]{1,2})*$/.test(trimmed)
      ? trimmed
          .split(/[:-]/)
          .map((pair) => pair.padStart(2, "0"))
          .join("")
      : undefined;
  if (plain === undefined || plain.length > MAX_SERIAL_OCTETS * 2 + 2) {
    throw new KeywardError(
      "invalid_field",
      `"${field}" must be a serial number in hex, such as 1a:2b:3c or 1a-2b-3c, of at most ${MAX_SERIAL_OCTETS} octets`,
      { field },
    );
  }
  return normaliseSerialHex(plain);
}

/** Filters of a certificate search; every given filter must match. */
export interface CertificateSearch {
  /** Substring of the subject, case-insensitive. */
  subject?: string;
  /** Substring of any SAN, case-insensitive. */
  san?: string;
  issuerId?: string;
  /** Certificates whose notAfter is on or after this time. */
  expiresAfter?: Date;
  /** Certificates whose notAfter is before this time. */
  expiresBefore?: Date;
  includeRevoked?: boolean;
}

function altNamesOf(certificate: x509.X509Certificate): string[] {
  const extension = certificate.getExtension(x509.SubjectAlternativeNameExtension);
  return (extension?.names.items ?? []).map((name) => `${name.type}:${name.value}`);
}

/** Issued certificates, at `certs/<serial hex>`. */
export class CertificateInventory {
  readonly #store: PkiStore;

  constructor(store: PkiStore) {
    this.#store = store;
  }

  /** Stores an issued certificate and returns its record. */
  async add(
    certificate: x509.X509Certificate,
    issuerId: string,
    role: string,
  ): Promise<CertificateRecord> {
    const record: CertificateRecord = {
      serialHex: serialHexOf(certificate),
      issuerId,
      certificatePem: toPem(certificate.rawData, "CERTIFICATE"),
      subject: certificate.subject,
      commonName: certificate.subjectName.getField("CN")[0] ?? "",
      sans: altNamesOf(certificate),
      notBefore: certificate.notBefore.toISOString(),
      notAfter: certificate.notAfter.toISOString(),
      role,
    };
    await this.#store.put(`certs/${record.serialHex}`, record);
    return record;
  }

  async find(serialHex: string): Promise<CertificateRecord | undefined> {
    return this.#store.get<CertificateRecord>(`certs/${serialHex}`);
  }

  async get(serialHex: string): Promise<CertificateRecord> {
    const record = await this.find(serialHex);
    if (!record)
      throw new KeywardError("not_found", `certificate ${serialHex} not found`, {
        field: "serial",
      });
    return record;
  }

  async put(record: CertificateRecord): Promise<void> {
    await this.#store.put(`certs/${record.serialHex}`, record);
  }

  /** Stores a newly issued certificate's record, sharing a transaction with concurrent issuance. */
  async addIssued(record: CertificateRecord): Promise<void> {
    await this.#store.putBatched(`certs/${record.serialHex}`, record);
  }

  async delete(serialHex: string): Promise<void> {
    await this.#store.delete(`certs/${serialHex}`);
  }

  /** Lists the stored serials, lower-case hex, in ascending order. */
  async serials(): Promise<string[]> {
    return this.#store.list("certs");
  }

  /** Reads every stored certificate record. */
  async all(): Promise<CertificateRecord[]> {
    const records: CertificateRecord[] = [];
    for (const serial of await this.serials()) {
      const record = await this.find(serial);
      if (record) records.push(record);
    }
    return records;
  }

  /** Returns the certificates that match every filter, soonest expiry first. */
  async search(filters: CertificateSearch): Promise<CertificateRecord[]> {
    const subject = filters.subject?.toLowerCase();
    const san = filters.san?.toLowerCase();
    const matches = (await this.all()).filter((record) => {
      if (subject !== undefined && !record.subject.toLowerCase().includes(subject)) return false;
      if (san !== undefined && !record.sans.some((name) => name.toLowerCase().includes(san)))
        return false;
      if (filters.issuerId !== undefined && record.issuerId !== filters.issuerId) return false;
      const notAfter = Date.parse(record.notAfter);
      if (filters.expiresAfter && notAfter < filters.expiresAfter.getTime()) return false;
      if (filters.expiresBefore && notAfter >= filters.expiresBefore.getTime()) return false;
      if (!filters.includeRevoked && record.revokedAt !== undefined) return false;
      return true;
    });
    return matches.sort((a, b) => Date.parse(a.notAfter) - Date.parse(b.notAfter));
  }
}
