import type { CertificateRecord, RevokedRecord } from "./types.ts";

/**
 * The secondary indexes of the certificate inventory, kept behind the
 * barrier beside the records they point to. Every entry's value is the
 * JSON number 1 and its key carries all its data, so a search reads one
 * key range and fetches only the certificates it returns.
 *
 * Each entry key ends with the same entry id, `<notAfter>/<issuer>/<serial>`,
 * so entries of one certificate in different indexes sort alike:
 *
 * - `index/expiry/<entry id>`: every stored certificate.
 * - `index/revoked/<entry id>`: every revocation entry (`revoked/<serial>`).
 * - `index/name/<name>/<entry id>`: the common name and each DNS, IP and
 *   email SAN of a stored certificate, lower-cased and encoded by
 *   `encodeIndexName`.
 *
 * `<notAfter>` is an ISO 8601 UTC time with milliseconds, whose string
 * order is time order. The entries of a certificate are written and deleted
 * in the same storage transaction as its record.
 *
 * NOTE: storage key names are not encrypted, so anyone who can read the
 * database or a backup sees each certificate's serial, issuer id, notAfter
 * and indexed names, such as DNS names and email addresses. Names must stay
 * in clear text because a prefix search needs the keys in name order, and
 * an HMAC of each name would allow exact lookups only.
 */

/** The version of the index layout. A mount whose marker records another version is indexed again. */
export const CERTIFICATE_INDEX_VERSION = 1;

/** The record that marks a mount's index as complete, as `{ version, completedAt }`. */
export const CERTIFICATE_INDEX_MARKER = "config/certificate-index";

export const EXPIRY_INDEX = "index/expiry";
export const REVOKED_INDEX = "index/revoked";
export const NAME_INDEX = "index/name";

/** The value of every index entry. */
export const INDEX_ENTRY_VALUE = 1;

/**
 * The longest encoded name kept in a name index key, in characters. Longer
 * names are cut at this length, so a prefix search for a longer prefix reads
 * the entries of the cut prefix and compares the full names of the records.
 */
export const MAX_INDEX_NAME_LENGTH = 256;

/** The earliest and latest times an index key can hold: ISO 8601 strings sort as times only with four-digit years. */
const EARLIEST_TIME = Date.parse("0000-01-01T00:00:00.000Z");
const LATEST_TIME = Date.parse("9999-12-31T23:59:59.999Z");

/** The issuer segment of certificates stored without an issuer id. */
const NO_ISSUER = "-";

/** Characters kept as they are in an encoded name; every other UTF-8 byte becomes `%XX`. */
const PLAIN_NAME_CHARACTER = /[a-z0-9._*@:+-]/;
/** A name made only of such characters, which encodes to itself. */
const PLAIN_NAME = /^[a-z0-9._*@:+-]*$/;

/** Entry ids: `<notAfter>/<issuer>/<serial>`. */
const ENTRY_ID =
  /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z)\/([a-z0-9._*@:+%-]+)\/([0-9a-f]+)$/;

/** Name index keys relative to `NAME_INDEX`: `<encoded name>/<entry id>`. */
const NAME_ENTRY = /^([a-z0-9._*@:+%-]+)\/(.+)$/;

/** The fields of an index entry's key. */
export interface IndexEntry {
  /** The entry id, `<notAfter>/<issuer>/<serial>`, which is also the key relative to the expiry index. */
  id: string;
  notAfter: string;
  /** The encoded issuer id. */
  issuer: string;
  serialHex: string;
}

/**
 * Formats a time as it sorts in index keys. Times before year 0 or after
 * year 9999 are clamped, because ISO 8601 strings outside those years do
 * not sort as times. Certificate validity ends by 9999-12-31 (RFC 5280).
 */
export function indexTime(time: Date | string | number): string {
  const value = typeof time === "number" ? time : new Date(time).getTime();
  return new Date(Math.min(LATEST_TIME, Math.max(EARLIEST_TIME, value))).toISOString();
}

/**
 * Encodes a name for a key segment: lower-cased, with every UTF-8 byte
 * outside `[a-z0-9._*@:+-]` written as `%XX`, and cut at
 * `MAX_INDEX_NAME_LENGTH` characters without splitting an `%XX`. Each
 * character has its own code, and no code is a prefix of another, so one
 * name is a prefix of another exactly when its encoding is a prefix of the
 * other's (before the cut).
 */
export function encodeIndexName(name: string): string {
  const lower = name.toLowerCase();
  if (PLAIN_NAME.test(lower)) return lower.slice(0, MAX_INDEX_NAME_LENGTH);
  let encoded = "";
  for (const character of lower) {
    const code = PLAIN_NAME_CHARACTER.test(character)
      ? character
      : [...Buffer.from(character, "utf8")]
          .map((byte) => `%${byte.toString(16).toUpperCase().padStart(2, "0")}`)
          .join("");
    if (encoded.length + code.length > MAX_INDEX_NAME_LENGTH) break;
    encoded += code;
  }
  return encoded;
}

function issuerSegment(issuerId: string): string {
  return issuerId === "" ? NO_ISSUER : encodeIndexName(issuerId);
}

/** Returns the entry id of a certificate: `<notAfter>/<issuer>/<serial>`. */
export function entryId(notAfter: string, issuerId: string, serialHex: string): string {
  return `${indexTime(notAfter)}/${issuerSegment(issuerId)}/${serialHex}`;
}

/** Returns the encoded issuer segment that entry ids of `issuerId` carry. */
export function issuerIndexSegment(issuerId: string): string {
  return issuerSegment(issuerId);
}

/** Parses an entry id, or returns undefined when `id` is not one. */
export function parseEntryId(id: string): IndexEntry | undefined {
  const match = ENTRY_ID.exec(id);
  if (!match) return undefined;
  return { id, notAfter: match[1]!, issuer: match[2]!, serialHex: match[3]! };
}

/** Parses a key relative to the name index into its encoded name and entry, or returns undefined. */
export function parseNameEntry(key: string): { name: string; entry: IndexEntry } | undefined {
  const match = NAME_ENTRY.exec(key);
  if (!match) return undefined;
  const entry = parseEntryId(match[2]!);
  return entry && { name: match[1]!, entry };
}

/**
 * Returns the names of a certificate that the name index holds: the
 * common name and the DNS, IP and email SANs, lower-cased, without empty
 * names.
 */
export function indexedNames(record: Pick<CertificateRecord, "commonName" | "sans">): string[] {
  const names = [record.commonName.toLowerCase()];
  for (const san of record.sans) {
    const colon = san.indexOf(":");
    const type = san.slice(0, colon);
    if (type === "dns" || type === "ip" || type === "email") {
      names.push(san.slice(colon + 1).toLowerCase());
    }
  }
  return names.filter((name) => name !== "");
}

/** Returns the index paths (relative to the mount) of a stored certificate. */
export function certificateIndexPaths(record: CertificateRecord): string[] {
  const id = entryId(record.notAfter, record.issuerId, record.serialHex);
  const names = new Set(indexedNames(record).map(encodeIndexName));
  return [`${EXPIRY_INDEX}/${id}`, ...[...names].map((name) => `${NAME_INDEX}/${name}/${id}`)];
}

/** Returns the revoked index path (relative to the mount) of a revocation entry. */
export function revokedIndexPath(entry: RevokedRecord): string {
  return `${REVOKED_INDEX}/${entryId(entry.notAfter, entry.issuerId, entry.serialHex)}`;
}
