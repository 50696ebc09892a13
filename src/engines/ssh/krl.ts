/**
 * OpenSSH Key Revocation Lists, encoded as OpenSSH's PROTOCOL.krl
 * describes them, for sshd's `RevokedKeys` and `ssh-keygen -Q`.
 *
 * The header is uint64 KRL_MAGIC, uint32 format version, uint64
 * krl_version, uint64 generated date, uint64 flags, string reserved and
 * string comment. Sections follow, each a type byte and a string of data.
 * Keyward writes certificate sections (serial lists and key IDs, per CA key,
 * or for every CA when the CA key is empty) and SHA-256 fingerprint
 * sections. Signature sections are not written: OpenSSH 9.4 and later reject
 * KRLs that carry them.
 */
import { KeywardError } from "../../errors.ts";
import { parsePublicKeyBlob } from "./public-keys.ts";
import { SshWriter } from "./wire.ts";

/** "SSHKRL\n\0" as a big-endian uint64. */
const KRL_MAGIC = 0x5353_484b_524c_0a00n;
const KRL_FORMAT_VERSION = 1;

const SECTION_CERTIFICATES = 1;
const SECTION_EXPLICIT_KEY = 2;
const SECTION_FINGERPRINT_SHA256 = 5;
const CERT_SECTION_SERIAL_LIST = 0x20;
const CERT_SECTION_KEY_ID = 0x23;

const MAX_UINT64 = 2n ** 64n - 1n;
const SHA256_BYTES = 32;

/** Revocations for the certificates of one CA. */
export interface KrlCertificateSection {
  /** The CA's public key blob; empty to revoke for every CA. */
  caKeyBlob: Buffer;
  serials: bigint[];
  keyIds: string[];
}

export interface KrlContents {
  /** Increases with every change. */
  version: bigint;
  /** Seconds since the Unix epoch. */
  generatedAt: bigint;
  comment: string;
  certificates: KrlCertificateSection[];
  /** Plain public key blobs revoked outright. */
  explicitKeys: Buffer[];
  /** SHA-256 hashes (32 bytes) of plain public key blobs; a key revoked this way also revokes its certificates. */
  sha256Fingerprints: Buffer[];
}

function uniqueSorted<T>(values: T[], compare: (a: T, b: T) => number): T[] {
  const sorted = [...values].sort(compare);
  return sorted.filter(
    (value, index) => index === 0 || compare(sorted[index - 1] as T, value) !== 0,
  );
}

function compareBigInt(a: bigint, b: bigint): number {
  if (a < b) return -1;
  return a > b ? 1 : 0;
}

function encodeCertificateSection(section: KrlCertificateSection): Buffer | undefined {
  const serials = uniqueSorted(section.serials, compareBigInt);
  const keyIds = uniqueSorted(section.keyIds, (a, b) =>
    Buffer.compare(Buffer.from(a), Buffer.from(b)),
  );
  if (serials.length === 0 && keyIds.length === 0) return undefined;
  const writer = new SshWriter().string(section.caKeyBlob).string("");
  if (serials.length > 0) {
    const list = new SshWriter();
    for (const serial of serials) list.uint64(serial);
    writer.byte(CERT_SECTION_SERIAL_LIST).string(list.toBuffer());
  }
  if (keyIds.length > 0) {
    const list = new SshWriter();
    for (const keyId of keyIds) list.string(keyId);
    writer.byte(CERT_SECTION_KEY_ID).string(list.toBuffer());
  }
  return writer.toBuffer();
}

function rejectContents(reason: string): KeywardError {
  return new KeywardError("internal", "internal error", {
    details: { reason: `KRL not encoded: ${reason}` },
  });
}

function hasNul(text: string): boolean {
  return text.includes("\0");
}

/**
 * Throws unless OpenSSH can load a KRL with these contents. OpenSSH's
 * krl.c rejects the whole file in these cases, and sshd then rejects every
 * key it checks: a serial of 0, a NUL byte in a key ID or the comment (it
 * reads them as C strings), a CA key that does not parse, or a SHA-256
 * hash that is not 32 bytes. The tests show OpenSSH 9.2 rejecting the
 * first two. The error is `internal`, because the API rejects such values
 * before they are stored.
 */
function checkContents(contents: KrlContents): void {
  if (hasNul(contents.comment)) throw rejectContents("the comment contains a NUL byte");
  for (const section of contents.certificates) {
    if (section.caKeyBlob.length > 0) {
      try {
        parsePublicKeyBlob(section.caKeyBlob, "ca_key");
      } catch (error) {
        throw rejectContents(`a CA key does not parse (${(error as Error).message})`);
      }
    }
    for (const serial of section.serials) {
      if (serial < 1n || serial > MAX_UINT64) {
        throw rejectContents("a serial is outside 1 to 2^64-1");
      }
    }
    if (section.keyIds.some(hasNul)) throw rejectContents("a key ID contains a NUL byte");
  }
  for (const key of contents.explicitKeys) {
    try {
      parsePublicKeyBlob(key, "public_key", { allowDsa: true });
    } catch (error) {
      throw rejectContents(`a revoked key does not parse (${(error as Error).message})`);
    }
  }
  if (contents.sha256Fingerprints.some((hash) => hash.length !== SHA256_BYTES)) {
    throw rejectContents(`a SHA-256 hash is not ${SHA256_BYTES} bytes`);
  }
}

/**
 * Encodes a KRL. Serials, key IDs, keys and hashes are deduplicated and
 * sorted, as PROTOCOL.krl requires for hashes. Throws `internal` instead of
 * encoding contents that OpenSSH would reject.
 */
export function encodeKrl(contents: KrlContents): Buffer {
  checkContents(contents);
  const writer = new SshWriter()
    .uint64(KRL_MAGIC)
    .uint32(KRL_FORMAT_VERSION)
    .uint64(contents.version)
    .uint64(contents.generatedAt)
    .uint64(0n)
    .string("")
    .string(contents.comment);

  const sections = [...contents.certificates].sort((a, b) =>
    Buffer.compare(a.caKeyBlob, b.caKeyBlob),
  );
  for (const section of sections) {
    const data = encodeCertificateSection(section);
    if (data) writer.byte(SECTION_CERTIFICATES).string(data);
  }

  const keys = uniqueSorted(contents.explicitKeys, Buffer.compare);
  if (keys.length > 0) {
    const list = new SshWriter();
    for (const key of keys) list.string(key);
    writer.byte(SECTION_EXPLICIT_KEY).string(list.toBuffer());
  }

  // Equal-length hashes in byte order are in numeric order as big-endian integers.
  const hashes = uniqueSorted(contents.sha256Fingerprints, Buffer.compare);
  if (hashes.length > 0) {
    const list = new SshWriter();
    for (const hash of hashes) list.string(hash);
    writer.byte(SECTION_FINGERPRINT_SHA256).string(list.toBuffer());
  }
  return writer.toBuffer();
}
