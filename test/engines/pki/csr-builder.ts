import { generateKeyPairSync, type KeyObject, sign } from "node:crypto";

/**
 * A small DER writer and PKCS#10 builder for hostile CSRs: every field can
 * be replaced, so a test can pair any SubjectPublicKeyInfo with any
 * signature algorithm and signature bytes.
 */

/** Encodes a DER length. */
function derLength(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);
  const bytes: number[] = [];
  for (let rest = length; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest % 256);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** Encodes one element from its tag and content. */
export function tlv(tag: number, ...content: Uint8Array[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), derLength(body.length), body]);
}

export const sequence = (...items: Uint8Array[]) => tlv(0x30, ...items);
export const set = (...items: Uint8Array[]) => tlv(0x31, ...items);
export const derNull = () => Buffer.from([0x05, 0x00]);
export const bitString = (bits: Uint8Array) => tlv(0x03, Buffer.from([0]), bits);

/** Encodes an INTEGER from unsigned big-endian bytes, adding a zero byte when the top bit is set. */
export function unsignedInteger(bytes: Uint8Array): Buffer {
  let value = Buffer.from(bytes);
  while (value.length > 1 && value[0] === 0) value = value.subarray(1);
  if (value[0]! & 0x80) value = Buffer.concat([Buffer.from([0]), value]);
  return tlv(0x02, value);
}

/** Encodes an OBJECT IDENTIFIER from dotted form. */
export function oid(dotted: string): Buffer {
  const arcs = dotted.split(".").map(Number);
  const out: number[] = [arcs[0]! * 40 + arcs[1]!];
  for (const arc of arcs.slice(2)) {
    const chunk: number[] = [arc & 0x7f];
    for (let rest = Math.floor(arc / 128); rest > 0; rest = Math.floor(rest / 128)) {
      chunk.unshift(0x80 | (rest & 0x7f));
    }
    out.push(...chunk);
  }
  return tlv(0x06, Buffer.from(out));
}

export const OIDS = {
  rsaEncryption: "1.2.840.113549.1.1.1",
  rsaPss: "1.2.840.113549.1.1.10",
  mgf1: "1.2.840.113549.1.1.8",
  sha256WithRsa: "1.2.840.113549.1.1.11",
  ecPublicKey: "1.2.840.10045.2.1",
  ecdsaSha256: "1.2.840.10045.4.3.2",
  ecdsaSha384: "1.2.840.10045.4.3.3",
  ed25519: "1.3.101.112",
  sha256: "2.16.840.1.101.3.4.2.1",
  p256: "1.2.840.10045.3.1.7",
  commonName: "2.5.4.3",
} as const;

/** Encodes an X.501 Name with one common name. */
export function nameWithCommonName(commonName: string): Buffer {
  return sequence(set(sequence(oid(OIDS.commonName), tlv(0x0c, Buffer.from(commonName, "utf8")))));
}

/** The parts of a CSR. The builder wraps `spki` in a well-formed CertificationRequestInfo. */
export interface CsrParts {
  spki: Uint8Array;
  commonName?: string;
  /** The whole signature AlgorithmIdentifier. */
  signatureAlgorithm: Uint8Array;
  /** Signs the DER CertificationRequestInfo and returns the signature bytes. */
  sign(info: Buffer): Uint8Array;
  /** Bytes appended inside the outer SEQUENCE, after the signature. */
  extraInside?: Uint8Array;
}

/** Builds a DER CSR from its parts. */
export function buildCsr(parts: CsrParts): Buffer {
  const info = sequence(
    tlv(0x02, Buffer.from([0])),
    nameWithCommonName(parts.commonName ?? "hostile.example.test"),
    parts.spki,
    tlv(0xa0),
  );
  return sequence(
    info,
    parts.signatureAlgorithm,
    bitString(parts.sign(info)),
    parts.extraInside ?? Buffer.alloc(0),
  );
}

/** Wraps DER in a PEM CERTIFICATE REQUEST block. */
export function csrPem(der: Uint8Array): string {
  const body = Buffer.from(der)
    .toString("base64")
    .replace(/(.{64})/g, "$1\n");
  return `-----BEGIN CERTIFICATE REQUEST-----\n${body}\n-----END CERTIFICATE REQUEST-----\n`;
}

/** Returns the DER SubjectPublicKeyInfo of a key object. */
export function spkiOf(key: KeyObject): Buffer {
  return key.export({ format: "der", type: "spki" });
}

/** Builds a CSR signed by a new key: ECDSA P-256 with SHA-256. */
export function validEcCsr(commonName?: string): Buffer {
  const { publicKey, privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  return buildCsr({
    spki: spkiOf(publicKey),
    ...(commonName === undefined ? {} : { commonName }),
    signatureAlgorithm: sequence(oid(OIDS.ecdsaSha256)),
    sign: (info) => sign("sha256", info, privateKey),
  });
}

/** Returns the PKCS#1 v1.5 encoding of a SHA-256 digest for a modulus of `size` bytes (RFC 8017 section 9.2). */
export function pkcs1Sha256Encoding(digest: Uint8Array, size: number): Buffer {
  const digestInfo = Buffer.concat([
    Buffer.from("3031300d060960864801650304020105000420", "hex"),
    digest,
  ]);
  const padding = Buffer.alloc(size - digestInfo.length - 3, 0xff);
  return Buffer.concat([Buffer.from([0, 1]), padding, Buffer.from([0]), digestInfo]);
}

/** Encodes an RSA SubjectPublicKeyInfo from encoded modulus and exponent INTEGERs. */
export function rsaSpki(
  modulus: Uint8Array,
  exponent: Uint8Array,
  parameters: Uint8Array = derNull(),
): Buffer {
  return sequence(
    sequence(oid(OIDS.rsaEncryption), parameters),
    bitString(sequence(modulus, exponent)),
  );
}
