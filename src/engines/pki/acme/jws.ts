import { calculateJwkThumbprint, flattenedVerify, importJWK, type JWK } from "jose";
import { checkEd25519Point, checkRsaExponent } from "../../../crypto/key-safety.ts";
import { AcmeProblem } from "./problems.ts";

/** JWS algorithms accepted on ACME requests (RFC 8555 section 6.2 requires ES256 and EdDSA to be accepted; none and MACs are rejected). */
export const JWS_ALGORITHMS = [
  "ES256",
  "ES384",
  "ES512",
  "EdDSA",
  "Ed25519",
  "RS256",
  "RS384",
  "RS512",
  "PS256",
  "PS384",
  "PS512",
] as const;

/** Smallest RSA account key accepted, in bits. */
const MIN_RSA_BITS = 2048;
/** Largest RSA account key accepted, in bits; larger keys only make each signature check slower. */
const MAX_RSA_BITS = 8192;

/** A JWS in the flattened JSON serialization (RFC 7515 section 7.2.2), as every ACME POST carries one. */
export interface FlattenedJws {
  protected: string;
  payload: string;
  signature: string;
}

export interface ProtectedHeader {
  alg: string;
  nonce?: unknown;
  url?: unknown;
  kid?: unknown;
  jwk?: unknown;
  [name: string]: unknown;
}

/** Checks that a request body is a flattened JWS without an unprotected header; throws `malformed`. */
export function readFlattenedJws(body: unknown): FlattenedJws {
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    throw new AcmeProblem("malformed", "the request body must be a JWS in flattened JSON form");
  }
  const fields = body as Record<string, unknown>;
  for (const name of Object.keys(fields)) {
    if (name !== "protected" && name !== "payload" && name !== "signature") {
      throw new AcmeProblem(
        "malformed",
        `the JWS has the field "${name}"; ACME requests carry only protected, payload and signature`,
      );
    }
  }
  const { protected: header, payload, signature } = fields;
  if (typeof header !== "string" || typeof payload !== "string" || typeof signature !== "string") {
    throw new AcmeProblem(
      "malformed",
      "the JWS must have the string fields protected, payload and signature",
    );
  }
  for (const [name, value] of Object.entries({ protected: header, payload, signature })) {
    if (!/^[A-Za-z0-9_-]*$/.test(value)) {
      throw new AcmeProblem("malformed", `the JWS field "${name}" is not base64url`);
    }
  }
  return { protected: header, payload, signature };
}

/** Decodes the protected header and checks that it names an accepted algorithm. */
export function readProtectedHeader(jws: FlattenedJws): ProtectedHeader {
  let header: unknown;
  try {
    header = JSON.parse(Buffer.from(jws.protected, "base64url").toString("utf8"));
  } catch {
    throw new AcmeProblem("malformed", "the JWS protected header is not base64url-encoded JSON");
  }
  if (header === null || typeof header !== "object" || Array.isArray(header)) {
    throw new AcmeProblem("malformed", "the JWS protected header is not a JSON object");
  }
  const alg = (header as { alg?: unknown }).alg;
  if (typeof alg !== "string" || !(JWS_ALGORITHMS as readonly string[]).includes(alg)) {
    throw new AcmeProblem(
      "badSignatureAlgorithm",
      `the JWS algorithm ${typeof alg === "string" ? `"${alg}"` : "(missing)"} is not accepted`,
      { algorithms: [...JWS_ALGORITHMS] },
    );
  }
  return header as ProtectedHeader;
}

/**
 * Coordinate length in octets of each curve an ES256, ES384 or ES512
 * account key may use. RFC 7518 section 6.2.1.2 requires "x" and "y" to
 * be exactly this long.
 */
const EC_COORDINATE_OCTETS: Record<string, number> = { "P-256": 32, "P-384": 48, "P-521": 66 };

/**
 * Decodes the base64url key member `name`. Throws `badPublicKey` unless it
 * is a string in canonical base64url (no padding, zero unused bits).
 * The RFC 7638 thumbprint hashes the member strings as sent, so a second
 * spelling of the same bytes would count as another key.
 */
function readKeyMember(jwk: JWK, name: "n" | "e" | "x" | "y"): Buffer {
  const text = jwk[name];
  if (typeof text !== "string") {
    throw new AcmeProblem("badPublicKey", `the account key has no string member "${name}"`);
  }
  const bytes = Buffer.from(text, "base64url");
  if (bytes.toString("base64url") !== text) {
    throw new AcmeProblem(
      "badPublicKey",
      `the account key's member "${name}" is not canonical base64url without padding`,
    );
  }
  return bytes;
}

/**
 * Throws `badPublicKey` when an RSA key member has leading zero octets,
 * which RFC 7518 section 6.3.1 forbids. Accepting them would give one key
 * several thumbprints.
 */
function checkMinimalInteger(bytes: Buffer, name: "n" | "e"): void {
  if (bytes.length > 0 && bytes[0] === 0) {
    throw new AcmeProblem(
      "badPublicKey",
      `the RSA account key's member "${name}" has leading zero octets; it must use the minimum number of octets`,
    );
  }
}

/** Returns the bit length of a big-endian unsigned integer without leading zero octets. */
function bitLength(bytes: Buffer): number {
  if (bytes.length === 0) return 0;
  return (bytes.length - 1) * 8 + (32 - Math.clz32(bytes[0]!));
}

function checkRsaAccountKey(jwk: JWK): void {
  const modulus = readKeyMember(jwk, "n");
  const exponent = readKeyMember(jwk, "e");
  checkMinimalInteger(modulus, "n");
  checkMinimalInteger(exponent, "e");
  const modulusBits = bitLength(modulus);
  if (modulusBits < MIN_RSA_BITS || modulusBits > MAX_RSA_BITS) {
    throw new AcmeProblem(
      "badPublicKey",
      `RSA account keys must have ${MIN_RSA_BITS} to ${MAX_RSA_BITS} bits`,
    );
  }
  const exponentHex = exponent.toString("hex");
  try {
    checkRsaExponent(exponentHex === "" ? undefined : BigInt(`0x${exponentHex}`));
  } catch (error) {
    throw new AcmeProblem("badPublicKey", "the RSA account key's exponent is even or below 3", {
      cause: error,
    });
  }
}

function checkEcAccountKey(jwk: JWK): void {
  const curve = typeof jwk.crv === "string" ? jwk.crv : "";
  const octets = Object.hasOwn(EC_COORDINATE_OCTETS, curve)
    ? EC_COORDINATE_OCTETS[curve]
    : undefined;
  if (octets === undefined) {
    throw new AcmeProblem(
      "badPublicKey",
      `EC account keys must use one of the curves ${Object.keys(EC_COORDINATE_OCTETS).join(", ")}`,
    );
  }
  for (const name of ["x", "y"] as const) {
    if (readKeyMember(jwk, name).length !== octets) {
      throw new AcmeProblem(
        "badPublicKey",
        `the EC account key's member "${name}" must be exactly ${octets} octets for ${curve}`,
      );
    }
  }
}

function checkEd25519AccountKey(jwk: JWK): void {
  if (jwk.crv !== "Ed25519") {
    throw new AcmeProblem("badPublicKey", "OKP account keys must be Ed25519 keys");
  }
  try {
    checkEd25519Point(readKeyMember(jwk, "x"));
  } catch (error) {
    if (error instanceof AcmeProblem) throw error;
    throw new AcmeProblem("badPublicKey", "the Ed25519 account key is not a usable point", {
      cause: error,
    });
  }
}

/**
 * Checks that a JWK is a public key an account may use, in the one
 * encoding RFC 7518 allows, so that each key has one RFC 7638 thumbprint.
 * Throws `badPublicKey` or `malformed`.
 */
export function checkAccountJwk(value: unknown): JWK {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new AcmeProblem("malformed", 'the JWS header "jwk" is not a JSON object');
  }
  const jwk = value as JWK;
  if (jwk.kty !== "RSA" && jwk.kty !== "EC" && jwk.kty !== "OKP") {
    throw new AcmeProblem("badPublicKey", "account keys must be RSA, EC or OKP (Ed25519) keys");
  }
  for (const member of ["d", "p", "q", "dp", "dq", "qi", "k"]) {
    if (member in jwk) {
      throw new AcmeProblem("badPublicKey", 'the JWS header "jwk" contains private key members');
    }
  }
  if (jwk.kty === "RSA") checkRsaAccountKey(jwk);
  if (jwk.kty === "EC") checkEcAccountKey(jwk);
  if (jwk.kty === "OKP") checkEd25519AccountKey(jwk);
  return jwk;
}

/** Returns the account key's RFC 7638 SHA-256 thumbprint, base64url. */
export async function jwkThumbprint(jwk: JWK): Promise<string> {
  try {
    return await calculateJwkThumbprint(jwk, "sha256");
  } catch (error) {
    throw new AcmeProblem("badPublicKey", "the account key is not a valid JWK", { cause: error });
  }
}

/**
 * Verifies the JWS signature with `jwk` and the header's algorithm, and
 * returns the payload bytes. Throws `badPublicKey` when the key cannot be
 * used with the algorithm and `malformed` when the signature does not
 * verify.
 */
export async function verifyJws(jws: FlattenedJws, alg: string, jwk: JWK): Promise<Uint8Array> {
  let key: Awaited<ReturnType<typeof importJWK>>;
  try {
    key = await importJWK(jwk, alg);
  } catch (error) {
    throw new AcmeProblem("badPublicKey", `the account key cannot be used with ${alg}`, {
      cause: error,
    });
  }
  try {
    const result = await flattenedVerify(jws, key, { algorithms: [alg] });
    return result.payload;
  } catch (error) {
    throw new AcmeProblem("malformed", "the JWS signature does not verify", { cause: error });
  }
}

/** Parses a JWS payload: an empty payload is a POST-as-GET (undefined), anything else must be a JSON object. */
export function parsePayload(payload: Uint8Array): Record<string, unknown> | undefined {
  if (payload.length === 0) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(payload).toString("utf8"));
  } catch {
    throw new AcmeProblem("malformed", "the JWS payload is not JSON");
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new AcmeProblem("malformed", "the JWS payload is not a JSON object");
  }
  return value as Record<string, unknown>;
}
