import { createHash, createPublicKey, type JsonWebKey, type KeyObject } from "node:crypto";
import { KeywardError } from "../../errors.ts";
import { SshReader, SshWriter, WireFormatError } from "./wire.ts";

/**
 * OpenSSH public keys: the key blob (RFC 4253 section 6.6, RFC 5656
 * section 3.1, RFC 8709), the one-line text form of authorized_keys and
 * `.pub` files, and fingerprints as `ssh-keygen -l` prints them.
 */

/** Key algorithms Keyward signs certificates for and uses as CA keys. */
export const SUPPORTED_KEY_ALGORITHMS = [
  "ssh-ed25519",
  "ecdsa-sha2-nistp256",
  "ecdsa-sha2-nistp384",
  "ecdsa-sha2-nistp521",
  "ssh-rsa",
] as const;
export type KeyAlgorithm = (typeof SUPPORTED_KEY_ALGORITHMS)[number];

/** Algorithms a legacy key may have: the supported ones, and DSA, which is only inventoried and flagged. */
export type LegacyKeyAlgorithm = KeyAlgorithm | "ssh-dss";

export interface EcdsaCurve {
  /** The curve's name inside the key blob. */
  sshName: string;
  /** The curve's JWK name. */
  jwkName: string;
  /** Field size in bytes, the length of each coordinate. */
  size: number;
  bits: number;
  /** The hash that ECDSA signatures with this curve use (RFC 5656 section 6.2.1). */
  hash: string;
}

export const ECDSA_CURVES: Readonly<Record<string, EcdsaCurve>> = {
  "ecdsa-sha2-nistp256": {
    sshName: "nistp256",
    jwkName: "P-256",
    size: 32,
    bits: 256,
    hash: "sha256",
  },
  "ecdsa-sha2-nistp384": {
    sshName: "nistp384",
    jwkName: "P-384",
    size: 48,
    bits: 384,
    hash: "sha384",
  },
  "ecdsa-sha2-nistp521": {
    sshName: "nistp521",
    jwkName: "P-521",
    size: 66,
    bits: 521,
    hash: "sha512",
  },
};

const ED25519_KEY_BYTES = 32;

/** A parsed public key. `keyObject` is absent for DSA keys, which Keyward never uses. */
export interface SshPublicKey {
  algorithm: LegacyKeyAlgorithm;
  /** The key blob in SSH wire format. */
  blob: Buffer;
  /** Key size: the RSA or DSA modulus length, the curve size, or 256 for Ed25519. */
  bits: number;
  keyObject: KeyObject | undefined;
}

/** A line of an authorized_keys or `.pub` file, split into its parts. */
export interface PublicKeyLine {
  /** The algorithm name at the start of the line, such as `ssh-ed25519` or a certificate type. */
  type: string;
  blob: Buffer;
  comment: string;
}

function isSupported(algorithm: string): algorithm is KeyAlgorithm {
  return (SUPPORTED_KEY_ALGORITHMS as readonly string[]).includes(algorithm);
}

function invalidKey(field: string, reason: string, cause?: unknown): KeywardError {
  return new KeywardError(
    "invalid_field",
    `"${field}" is not a valid OpenSSH public key: ${reason}`,
    { field, cause },
  );
}

export function unsupportedKeyType(field: string, type: string): KeywardError {
  const typeLabel = /^[\w@.-]{1,64}$/.test(type) ? `"${type}"` : "this key type";
  return new KeywardError(
    "unsupported_key_type",
    `"${field}": ${typeLabel} is not supported; use ${SUPPORTED_KEY_ALGORITHMS.join(", ")}`,
    { field },
  );
}

/**
 * Splits a one-line public key (`type base64 [comment]`) and decodes the
 * base64 blob. Throws `invalid_field` naming `field` on anything else.
 */
export function splitPublicKeyLine(text: string, field: string): PublicKeyLine {
  const line = text.trim();
  if (line.length === 0) throw invalidKey(field, "it is empty");
  if (/[\r\n]/.test(line)) throw invalidKey(field, "it must be one line");
  const match = /^(\S+)\s+([A-Za-z0-9+/]+={0,2})(?:\s+(.*))?$/.exec(line);
  if (!match) throw invalidKey(field, 'expected "<type> <base64 key> [comment]"');
  const blob = Buffer.from(match[2] as string, "base64");
  if (blob.toString("base64").replace(/=+$/, "") !== (match[2] as string).replace(/=+$/, "")) {
    throw invalidKey(field, "the key is not valid base64");
  }
  return { type: match[1] as string, blob, comment: match[3] ?? "" };
}

/**
 * Parses a one-line OpenSSH public key, checking that the blob is well formed
 * and matches the type at the start of the line. Certificates, DSA keys
 * (unless `allowDsa`) and other key types throw `unsupported_key_type`;
 * malformed keys throw `invalid_field`.
 */
export function parsePublicKeyLine(
  text: string,
  field: string,
  options: { allowDsa?: boolean } = {},
): SshPublicKey & { comment: string } {
  const line = splitPublicKeyLine(text, field);
  if (line.type.includes("-cert-")) {
    throw new KeywardError(
      "invalid_field",
      `"${field}" is a certificate; send the plain public key it certifies`,
      { field },
    );
  }
  const key = parsePublicKeyBlob(line.blob, field, options);
  if (key.algorithm !== line.type) {
    throw invalidKey(field, "the type before the key does not match the key's own type");
  }
  return { ...key, comment: line.comment };
}

/** Parses and validates a public key blob. Errors as in `parsePublicKeyLine`. */
export function parsePublicKeyBlob(
  blob: Uint8Array,
  field: string,
  options: { allowDsa?: boolean } = {},
): SshPublicKey {
  const reader = new SshReader(blob);
  let algorithm: string;
  try {
    algorithm = reader.text();
  } catch (error) {
    throw invalidKey(field, "the key blob has no type", error);
  }
  if (algorithm === "ssh-dss" && options.allowDsa) return parseDsa(reader, blob, field);
  if (!isSupported(algorithm)) throw unsupportedKeyType(field, algorithm);
  try {
    const parsed = readKeyBody(algorithm, reader);
    reader.end();
    return { algorithm, blob: Buffer.from(blob), ...parsed };
  } catch (error) {
    if (error instanceof KeywardError) throw error;
    const reason =
      error instanceof WireFormatError ? error.message : "the key values are out of range";
    throw invalidKey(field, reason, error);
  }
}

/** Reads the fields after the algorithm name and builds the Node key. */
function readKeyBody(
  algorithm: KeyAlgorithm,
  reader: SshReader,
): { bits: number; keyObject: KeyObject } {
  if (algorithm === "ssh-ed25519") {
    const x = reader.string();
    if (x.length !== ED25519_KEY_BYTES) throw new WireFormatError("an Ed25519 key is 32 bytes");
    const jwk = { kty: "OKP", crv: "Ed25519", x: x.toString("base64url") };
    return { bits: 256, keyObject: createPublicKey({ key: jwk, format: "jwk" }) };
  }
  if (algorithm === "ssh-rsa") {
    const e = reader.positiveMpint();
    const n = reader.positiveMpint();
    if (e.length === 0 || ((e.at(-1) as number) & 1) === 0 || (e.length === 1 && e[0] === 1)) {
      throw new WireFormatError("the RSA public exponent must be odd and at least 3");
    }
    const bits = bitLength(n);
    if (bits < 512) throw new WireFormatError("the RSA modulus is shorter than 512 bits");
    const jwk = { kty: "RSA", n: n.toString("base64url"), e: e.toString("base64url") };
    return { bits, keyObject: createPublicKey({ key: jwk, format: "jwk" }) };
  }
  const curve = ECDSA_CURVES[algorithm] as EcdsaCurve;
  const curveName = reader.text();
  if (curveName !== curve.sshName) {
    throw new WireFormatError("the curve name does not match the key type");
  }
  const point = reader.string();
  if (point.length !== 1 + 2 * curve.size || point[0] !== 0x04) {
    throw new WireFormatError("the curve point must be uncompressed and of the curve's size");
  }
  const jwk = {
    kty: "EC",
    crv: curve.jwkName,
    x: point.subarray(1, 1 + curve.size).toString("base64url"),
    y: point.subarray(1 + curve.size).toString("base64url"),
  };
  // Node (OpenSSL 3) rejects a JWK whose point is not on the curve.
  return { bits: curve.bits, keyObject: createPublicKey({ key: jwk, format: "jwk" }) };
}

function parseDsa(reader: SshReader, blob: Uint8Array, field: string): SshPublicKey {
  try {
    const p = reader.positiveMpint();
    reader.positiveMpint();
    reader.positiveMpint();
    reader.positiveMpint();
    reader.end();
    return {
      algorithm: "ssh-dss",
      blob: Buffer.from(blob),
      bits: bitLength(p),
      keyObject: undefined,
    };
  } catch (error) {
    throw invalidKey(field, error instanceof Error ? error.message : "malformed DSA key", error);
  }
}

/** Returns the number of significant bits in unsigned big-endian bytes. */
export function bitLength(unsigned: Uint8Array): number {
  let start = 0;
  while (start < unsigned.length && unsigned[start] === 0) start += 1;
  if (start === unsigned.length) return 0;
  return (unsigned.length - start - 1) * 8 + (32 - Math.clz32(unsigned[start] as number));
}

/** Encodes a Node public key (or the public half of a private key) as an SSH key blob. */
export function publicKeyBlob(key: KeyObject): {
  algorithm: KeyAlgorithm;
  blob: Buffer;
  bits: number;
} {
  const jwk = key.export({ format: "jwk" }) as JsonWebKey;
  if (jwk.kty === "OKP" && jwk.crv === "Ed25519") {
    const x = Buffer.from(jwk.x as string, "base64url");
    return {
      algorithm: "ssh-ed25519",
      blob: new SshWriter().string("ssh-ed25519").string(x).toBuffer(),
      bits: 256,
    };
  }
  if (jwk.kty === "RSA") {
    const n = Buffer.from(jwk.n as string, "base64url");
    const e = Buffer.from(jwk.e as string, "base64url");
    return {
      algorithm: "ssh-rsa",
      blob: new SshWriter().string("ssh-rsa").mpint(e).mpint(n).toBuffer(),
      bits: bitLength(n),
    };
  }
  if (jwk.kty === "EC") {
    const entry = Object.entries(ECDSA_CURVES).find(([, curve]) => curve.jwkName === jwk.crv);
    if (entry) {
      const [algorithm, curve] = entry;
      const point = Buffer.concat([
        Buffer.from([0x04]),
        leftPad(Buffer.from(jwk.x as string, "base64url"), curve.size),
        leftPad(Buffer.from(jwk.y as string, "base64url"), curve.size),
      ]);
      return {
        algorithm: algorithm as KeyAlgorithm,
        blob: new SshWriter().string(algorithm).string(curve.sshName).string(point).toBuffer(),
        bits: curve.bits,
      };
    }
  }
  throw new KeywardError("unsupported_key_type", "this key type cannot be used for SSH");
}

export function leftPad(bytes: Buffer, length: number): Buffer {
  if (bytes.length >= length) return bytes;
  return Buffer.concat([Buffer.alloc(length - bytes.length), bytes]);
}

/** Returns the one-line OpenSSH form of a key blob: `type base64 [comment]`. */
export function formatPublicKeyLine(algorithm: string, blob: Uint8Array, comment = ""): string {
  const line = `${algorithm} ${Buffer.from(blob).toString("base64")}`;
  return comment === "" ? line : `${line} ${comment}`;
}

/** Returns the SHA-256 fingerprint as `ssh-keygen -l` prints it: `SHA256:` and unpadded base64. */
export function fingerprintSha256(blob: Uint8Array): string {
  return `SHA256:${createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}`;
}
