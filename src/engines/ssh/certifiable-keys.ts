import type { JsonWebKey } from "node:crypto";
import { KeywardError } from "../../errors.ts";
import { bitLength, type SshPublicKey } from "./public-keys.ts";

/**
 * Checks on a subject key beyond its wire format: keys that OpenSSH cannot
 * load, or whose certificate anyone could use, are never certified. The
 * parser accepts them, so revocation and the plain key inventory can still
 * name such keys.
 */

/** Largest RSA modulus OpenSSH loads, in bits: `ssh-keygen -l` of OpenSSH 9.2 reads a 16384-bit key and rejects a 16385-bit one. */
export const MAX_RSA_MODULUS_BITS = 16_384;

/**
 * Longest RSA public exponent certified, in bits. OpenSSL 3.0 rejects
 * longer exponents for moduli above 3072 bits ("bad e value"), and key
 * generators use 65537.
 */
export const MAX_RSA_EXPONENT_BITS = 64;

// The Ed25519 point check below is written by hand: node:crypto imports any
// 32 bytes as an Ed25519 public key, and no dependency of Keyward validates
// points. It runs on public values only, so its timing reveals nothing.

/** The field prime of Curve25519 and Ed25519, 2^255 - 19. */
const P = (1n << 255n) - 19n;
/** The Edwards curve constant d = -121665 / 121666 (RFC 8032, section 5.1). */
const D = mod(-121665n * inverse(121666n));
/** The square root of -1 modulo P, 2^((P - 1) / 4). */
const SQRT_MINUS_ONE = power(2n, (P - 1n) / 4n);

/**
 * Throws unless Keyward may certify `key`. An RSA key needs an odd modulus
 * of at most 16384 bits and an exponent of at most 64 bits. An Ed25519 key
 * must be a canonically encoded point of the curve and not of small order.
 */
export function checkCertifiableKey(key: SshPublicKey, field: string): void {
  if (key.algorithm === "ssh-rsa") checkRsa(key, field);
  if (key.algorithm === "ssh-ed25519") checkEd25519(key, field);
}

function checkRsa(key: SshPublicKey, field: string): void {
  const jwk = key.keyObject?.export({ format: "jwk" }) as JsonWebKey;
  const modulus = Buffer.from(jwk.n as string, "base64url");
  const exponent = Buffer.from(jwk.e as string, "base64url");
  if (key.bits > MAX_RSA_MODULUS_BITS) {
    throw new KeywardError(
      "unsupported_key_type",
      `"${field}" is an RSA key of ${key.bits} bits; OpenSSH loads at most ${MAX_RSA_MODULUS_BITS}`,
      { field },
    );
  }
  if (((modulus.at(-1) as number) & 1) === 0) {
    throw new KeywardError("invalid_field", `"${field}" has an even RSA modulus`, { field });
  }
  if (bitLength(exponent) > MAX_RSA_EXPONENT_BITS) {
    throw new KeywardError(
      "unsupported_key_type",
      `"${field}" has an RSA public exponent of ${bitLength(exponent)} bits; at most ${MAX_RSA_EXPONENT_BITS} are supported`,
      { field },
    );
  }
}

/**
 * Rejects Ed25519 keys that are not a canonical point of the curve, and
 * points of small order (the identity and its seven companions). A
 * signature under a small-order key verifies for about one in eight
 * random messages without any secret, so any holder of the certificate
 * could log in with it.
 */
function checkEd25519(key: SshPublicKey, field: string): void {
  const encoded = key.blob.subarray(key.blob.length - 32);
  const point = decodePoint(encoded);
  if (point === undefined) {
    throw new KeywardError("invalid_field", `"${field}" is not a point of the Ed25519 curve`, {
      field,
    });
  }
  let multiple = point;
  for (let doubling = 0; doubling < 3; doubling += 1) multiple = add(multiple, multiple);
  if (multiple.x === 0n && multiple.y === 1n) {
    throw new KeywardError(
      "invalid_field",
      `"${field}" is a low-order Ed25519 point, for which signatures can be made without a private key`,
      { field },
    );
  }
}

interface Point {
  x: bigint;
  y: bigint;
}

/** Decodes a 32-byte point as RFC 8032 section 5.1.3 does; undefined when it is not canonical or not on the curve. */
function decodePoint(encoded: Uint8Array): Point | undefined {
  const bytes = Buffer.from(encoded);
  const sign = (bytes[31] as number) >> 7;
  bytes[31] = (bytes[31] as number) & 0x7f;
  const y = BigInt(`0x${Buffer.from(bytes).reverse().toString("hex")}`);
  if (y >= P) return undefined;
  const u = mod(y * y - 1n);
  const v = mod(D * y * y + 1n);
  let x = mod(u * power(v, 3n) * power(mod(u * power(v, 7n)), (P - 5n) / 8n));
  const check = mod(v * x * x);
  if (check === mod(-u)) x = mod(x * SQRT_MINUS_ONE);
  else if (check !== u) return undefined;
  if (x === 0n && sign === 1) return undefined;
  if (Number(x & 1n) !== sign) x = P - x;
  return { x, y };
}

/** Adds two points with the complete twisted Edwards addition law (a = -1). */
function add(first: Point, second: Point): Point {
  const product = mod(D * first.x * second.x * first.y * second.y);
  const x = mod((first.x * second.y + first.y * second.x) * inverse(1n + product));
  const y = mod((first.y * second.y + first.x * second.x) * inverse(1n - product));
  return { x, y };
}

function mod(value: bigint): bigint {
  const remainder = value % P;
  return remainder < 0n ? remainder + P : remainder;
}

function power(base: bigint, exponent: bigint): bigint {
  let result = 1n;
  let factor = mod(base);
  let remaining = exponent;
  while (remaining > 0n) {
    if (remaining & 1n) result = mod(result * factor);
    factor = mod(factor * factor);
    remaining >>= 1n;
  }
  return result;
}

function inverse(value: bigint): bigint {
  return power(value, P - 2n);
}
