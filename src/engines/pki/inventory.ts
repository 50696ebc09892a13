import { KeywardError } from "../../errors.ts";
import { MAX_SCAN_LIMIT } from "../../storage/storage.ts";
import { certificateIndexPaths, INDEX_ENTRY_VALUE, revokedIndexPath } from "./certificate-index.ts";
import {
  type CertificateSearch,
  type ExpiryReport,
  expiryReport,
  type SearchPage,
  type SearchResult,
  searchCertificates,
} from "./certificate-search.ts";
import { CertificateIndexBuilder } from "./index-rebuild.ts";
import { walkKeys } from "./index-walk.ts";
import { normaliseSerialHex, serialHexOf } from "./key-pairs.ts";
import { toPem } from "./pem.ts";
import type { PkiLogger } from "./service.ts";
import type { PkiStore, PkiTransaction, RecordWrite } from "./store.ts";
import type { CertificateRecord, RevokedRecord } from "./types.ts";
import * as x509 from "./x509.ts";

/**
 * Maximum serial length accepted in a path or field: 20 octets (RFC 5280
 * section 4.1.2.2), counted after leading zero octets are removed.
 */
export const MAX_SERIAL_OCTETS = 20;

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
  // Leading zero octets are removed first, so 00 before a 20-octet serial
  // whose first bit is set (the DER sign octet) is accepted.
  const serialHex = plain === undefined ? undefined : normaliseSerialHex(plain);
  if (serialHex === undefined || serialHex.length > MAX_SERIAL_OCTETS * 2) {
    throw new KeywardError(
      "invalid_field",
      `"${field}" must be a serial number in hex, such as 1a:2b:3c or 1a-2b-3c, of at most ${MAX_SERIAL_OCTETS} octets`,
      { field },
    );
  }
  return serialHex;
}

function altNamesOf(certificate: x509.X509Certificate): string[] {
  const extension = certificate.getExtension(x509.SubjectAlternativeNameExtension);
  return (extension?.names.items ?? []).map((name) => `${name.type}:${name.value}`);
}

/** The writes that storing or deleting a revocation entry needs, which a transaction offers. */
type RecordWriter = Pick<PkiTransaction, "put" | "delete">;

/** Returns the writes that store a certificate's record with its index entries. */
export function certificateWrites(record: CertificateRecord): RecordWrite[] {
  return [
    { path: `certs/${record.serialHex}`, value: record },
    ...certificateIndexPaths(record).map((path) => ({ path, value: INDEX_ENTRY_VALUE })),
  ];
}

/** Deletes a certificate's record and its index entries through `writer`, normally a transaction. */
export async function deleteCertificate(
  writer: Pick<PkiTransaction, "delete">,
  record: CertificateRecord,
): Promise<void> {
  await writer.delete(`certs/${record.serialHex}`);
  for (const path of certificateIndexPaths(record)) await writer.delete(path);
}

/** Writes a revocation entry and its index entry through `writer`, normally a transaction. */
export async function putRevocation(writer: RecordWriter, entry: RevokedRecord): Promise<void> {
  await writer.put(`revoked/${entry.serialHex}`, entry);
  await writer.put(revokedIndexPath(entry), INDEX_ENTRY_VALUE);
}

/** Deletes a revocation entry and its index entry through `writer`, normally a transaction. */
export async function deleteRevocation(writer: RecordWriter, entry: RevokedRecord): Promise<void> {
  await writer.delete(`revoked/${entry.serialHex}`);
  await writer.delete(revokedIndexPath(entry));
}

/** One page of a listing: start after `after` (a serial in plain hex), at most `limit` serials, or all without it. */
export interface SerialPage {
  after?: string;
  limit?: number;
}

/**
 * Issued certificates, at `certs/<serial hex>`, with their index entries
 * (see `certificate-index.ts`). A record and its entries are written and
 * deleted in one transaction.
 */
export class CertificateInventory {
  readonly #store: PkiStore;
  /** The rebuild of the indexes for mounts written before them; searches, reports and tidy wait for it. */
  readonly index: CertificateIndexBuilder;

  constructor(store: PkiStore, options: { mount: string; logger?: PkiLogger }) {
    this.#store = store;
    this.index = new CertificateIndexBuilder(store, options.mount, options.logger);
  }

  /** Stores a CA certificate that this mount generated or signed, with its index entries, and returns its record. */
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
    await this.#store.transaction(async (tx) => {
      // A certificate stored again may have other names or validity, so its old entries go first.
      const previous = await tx.get<CertificateRecord>(`certs/${record.serialHex}`);
      if (previous) await deleteCertificate(tx, previous);
      for (const write of certificateWrites(record)) await tx.put(write.path, write.value);
    });
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

  /**
   * Stores a newly issued certificate's record and index entries, sharing
   * a transaction with concurrent issuance. Its serial is new, so it has no
   * older entries to remove.
   */
  async addIssued(record: CertificateRecord): Promise<void> {
    await this.#store.putBatched(certificateWrites(record));
  }

  /**
   * Lists the stored serials, lower-case hex, in ascending order: one page,
   * or without a `limit` every serial after `after`, read page by page.
   */
  async serials(page?: SerialPage): Promise<string[]> {
    return this.#list("certs", page);
  }

  /** Lists the revoked serials (those with a revocation entry) as `serials` lists the stored ones. */
  async revokedSerials(page?: SerialPage): Promise<string[]> {
    return this.#list("revoked", page);
  }

  /** Returns one page of the certificates that match every filter (see `searchCertificates`). */
  async search(filters: CertificateSearch, page: SearchPage): Promise<SearchResult> {
    await this.index.ready();
    return searchCertificates(this.#store, filters, page);
  }

  /** Builds the expiry report (see `expiryReport`). */
  async expiryReport(options: { now: Date; until: Date; limit: number }): Promise<ExpiryReport> {
    await this.index.ready();
    return expiryReport(this.#store, options);
  }

  // Nothing is stored below the records of these folders, so a scan lists exactly the serials.
  async #list(folder: string, page: SerialPage = {}): Promise<string[]> {
    const { after, limit } = page;
    if (limit !== undefined) return this.#store.scan(folder, { after, limit });
    const serials: string[] = [];
    for await (const serial of walkKeys(this.#store, folder, { after, pageSize: MAX_SCAN_LIMIT })) {
      serials.push(serial);
    }
    return serials;
  }
}
