import { createPrivateKey, createPublicKey, type KeyObject } from "node:crypto";
import { generateKeys } from "./key-generation.ts";
import { checkKeyObject } from "./key-safety.ts";

/** NIST curves for ECDSA, by their JOSE/NIST names. */
export const ECDSA_CURVES = ["P-256", "P-384", "P-521"] as const;
export type EcdsaCurve = (typeof ECDSA_CURVES)[number];

export type AsymmetricKeySpec =
  | { algorithm: "ed25519" }
  | { algorithm: "ecdsa"; curve: EcdsaCurve }
  | { algorithm: "rsa"; modulusLength: number };

export interface GeneratedKeyPair {
  /** PKCS#8 DER private key. */
  privateKeyDer: Buffer;
  /** SubjectPublicKeyInfo PEM public key. */
  publicKeyPem: string;
}

/** The public exponent for generated RSA keys (F4, as OpenSSL and Go use). */
const RSA_PUBLIC_EXPONENT = 0x10001;

/** DER prefix of an Ed25519 PKCS#8 private key before its 32-byte seed (RFC 8410, section 7). */
const ED25519_PKCS8_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");

/** Generates a key pair and returns it as PKCS#8 DER and SPKI PEM. */
export function generateKeyPair(spec: AsymmetricKeySpec): GeneratedKeyPair {
  const { privateKey } = generateKeyObjects(spec);
  return {
    privateKeyDer: privateKey.export({ format: "der", type: "pkcs8" }),
    publicKeyPem: publicKeyPemOf(privateKey),
  };
}

function generateKeyObjects(spec: AsymmetricKeySpec): { privateKey: KeyObject } {
  switch (spec.algorithm) {
    case "ed25519":
      return generateKeys({ type: "ed25519" });
    case "ecdsa":
      return generateKeys({ type: "ec", namedCurve: spec.curve });
    case "rsa":
      return generateKeys({
        type: "rsa",
        modulusLength: spec.modulusLength,
        publicExponent: RSA_PUBLIC_EXPONENT,
      });
  }
}

/** Parses a PKCS#8 DER private key; throws when the bytes are not one. */
export function loadPrivateKey(der: Uint8Array): KeyObject {
  return checkKeyObject(createPrivateKey({ key: Buffer.from(der), format: "der", type: "pkcs8" }));
}

/** Parses an SPKI PEM public key; throws when the text is not one. */
export function loadPublicKey(pem: string): KeyObject {
  return checkKeyObject(createPublicKey({ key: pem, format: "pem", type: "spki" }));
}

/** Returns the SPKI PEM of the public half of `privateKey`. */
export function publicKeyPemOf(privateKey: KeyObject): string {
  return createPublicKey(privateKey).export({ format: "pem", type: "spki" }).toString();
}

/** Converts a PKCS#8 DER private key to PEM ("-----BEGIN PRIVATE KEY-----"). */
export function privateKeyDerToPem(der: Uint8Array): string {
  return loadPrivateKey(der).export({ format: "pem", type: "pkcs8" }).toString();
}

/** Builds the PKCS#8 DER of the Ed25519 private key whose seed is `seed` (32 bytes). */
export function ed25519PrivateKeyFromSeed(seed: Uint8Array): Buffer {
  if (seed.length !== 32) throw new RangeError("an Ed25519 seed is 32 bytes");
  return Buffer.concat([ED25519_PKCS8_PREFIX, seed]);
}

/** Returns the 32-byte seed of an Ed25519 private key. */
export function ed25519SeedOf(privateKey: KeyObject): Buffer {
  const jwk = privateKey.export({ format: "jwk" });
  if (jwk.crv !== "Ed25519" || jwk.d === undefined)
    throw new TypeError("not an Ed25519 private key");
  return Buffer.from(jwk.d, "base64url");
}

/** Describes a parsed key so callers can check it matches the type they expect. */
export function describeKey(key: KeyObject): AsymmetricKeySpec | undefined {
  const details = key.asymmetricKeyDetails;
  switch (key.asymmetricKeyType) {
    case "ed25519":
      return { algorithm: "ed25519" };
    case "ec": {
      const curve = NODE_CURVE_NAMES[details?.namedCurve ?? ""];
      return curve === undefined ? undefined : { algorithm: "ecdsa", curve };
    }
    case "rsa":
      return details?.modulusLength === undefined
        ? undefined
        : { algorithm: "rsa", modulusLength: details.modulusLength };
    default:
      return undefined;
  }
}

/** OpenSSL's curve names as node reports them in `asymmetricKeyDetails.namedCurve`. */
const NODE_CURVE_NAMES: Record<string, EcdsaCurve> = {
  prime256v1: "P-256",
  secp384r1: "P-384",
  secp521r1: "P-521",
};
