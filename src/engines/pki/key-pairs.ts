import {
  createPrivateKey,
  createPublicKey,
  generateKeyPair as generateNodeKeyPair,
  type KeyObject,
  type webcrypto,
} from "node:crypto";
import { promisify } from "node:util";
import { checkKeyObject, checkKeyPair, checkSpki, importSpki } from "../../crypto/key-safety.ts";
import { KeywardError } from "../../errors.ts";
import type { PkiKeyType } from "./types.ts";
import type * as x509 from "./x509.ts";

/** A WebCrypto private key that signs certificates, CRLs and OCSP responses. */
export type SigningKey = webcrypto.CryptoKey;

const generateKeyPairAsync = promisify(generateNodeKeyPair);

/** Key sizes accepted for each key type, in bits. The first is Vault's default. */
export const KEY_BITS: Record<PkiKeyType, readonly number[]> = {
  rsa: [2048, 3072, 4096],
  ec: [256, 384],
  ed25519: [0],
};

const CURVES: Record<number, { node: string; web: string; hash: string }> = {
  256: { node: "prime256v1", web: "P-256", hash: "SHA-256" },
  384: { node: "secp384r1", web: "P-384", hash: "SHA-384" },
};

export interface KeySpec {
  type: PkiKeyType;
  bits: number;
}

/**
 * Validates `key_type` and `key_bits` as Vault reads them: `key_bits` 0 means
 * the type's default (RSA 2048, EC P-256). Throws `invalid_field` naming the field.
 */
export function keySpec(type: string | undefined, bits: number | undefined, prefix = ""): KeySpec {
  const keyType = (type ?? "rsa") as PkiKeyType;
  if (!Object.hasOwn(KEY_BITS, keyType)) {
    throw new KeywardError(
      "invalid_field",
      `"${prefix}key_type" must be rsa, ec or ed25519, not "${type}"`,
      { field: `${prefix}key_type` },
    );
  }
  const allowed = KEY_BITS[keyType];
  const size = bits === undefined || bits === 0 ? allowed[0]! : bits;
  if (!allowed.includes(size)) {
    throw new KeywardError(
      "invalid_field",
      `"${prefix}key_bits" for key_type ${keyType} must be one of ${allowed.join(", ")}, not ${bits}`,
      { field: `${prefix}key_bits` },
    );
  }
  return { type: keyType, bits: size };
}

/** A new key pair: the private key object, its PKCS#8 DER and the public key's SPKI DER. */
export interface GeneratedKeyPair {
  privateKey: KeyObject;
  pkcs8: Buffer;
  spki: Buffer;
}

/** Generates a key pair of this spec. */
export async function generateKeyPair(spec: KeySpec): Promise<GeneratedKeyPair> {
  let pair: { privateKey: KeyObject; publicKey: KeyObject };
  if (spec.type === "rsa") {
    pair = await generateKeyPairAsync("rsa", { modulusLength: spec.bits });
  } else if (spec.type === "ec") {
    pair = await generateKeyPairAsync("ec", { namedCurve: CURVES[spec.bits]!.node });
  } else {
    pair = await generateKeyPairAsync("ed25519");
  }
  return {
    privateKey: pair.privateKey,
    pkcs8: pair.privateKey.export({ format: "der", type: "pkcs8" }),
    spki: pair.publicKey.export({ format: "der", type: "spki" }),
  };
}

/** Generates a key pair and returns its PKCS#8 DER private key. */
export async function generatePrivateKey(spec: KeySpec): Promise<Buffer> {
  return (await generateKeyPair(spec)).pkcs8;
}

/** Returns the key type and size of a public key, or throws `unsupported_key_type`. */
export function describePublicKey(key: KeyObject, field: string): KeySpec {
  const type = key.asymmetricKeyType;
  if (type === "rsa") {
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < 2048 || bits > 8192) {
      throw new KeywardError(
        "unsupported_key_type",
        `the RSA key in "${field}" has ${bits} bits; 2048 to 8192 are supported`,
        { field },
      );
    }
    return { type: "rsa", bits };
  }
  if (type === "ec") {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    const bits = Object.entries(CURVES).find(([, value]) => value.node === curve)?.[0];
    if (bits === undefined) {
      throw new KeywardError(
        "unsupported_key_type",
        `the EC key in "${field}" uses curve ${curve ?? "unknown"}; P-256 and P-384 are supported`,
        { field },
      );
    }
    return { type: "ec", bits: Number(bits) };
  }
  if (type === "ed25519") return { type: "ed25519", bits: 0 };
  throw new KeywardError(
    "unsupported_key_type",
    `the key in "${field}" is of type ${type ?? "unknown"}; RSA, EC (P-256, P-384) and Ed25519 are supported`,
    { field },
  );
}

/** Returns the WebCrypto algorithm a key of this spec signs with: SHA-256 for RSA, the curve's hash for EC. */
export function signingAlgorithm(
  spec: KeySpec,
): webcrypto.RsaHashedImportParams | webcrypto.EcKeyImportParams | webcrypto.Algorithm {
  if (spec.type === "rsa") return { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" };
  if (spec.type === "ec") {
    const curve = CURVES[spec.bits]!;
    return {
      name: "ECDSA",
      namedCurve: curve.web,
      hash: curve.hash,
    } as webcrypto.EcKeyImportParams;
  }
  return { name: "Ed25519" };
}

/** Imports a PKCS#8 private key as a WebCrypto signing key. */
export async function importSigningKey(pkcs8: Uint8Array, spec: KeySpec): Promise<SigningKey> {
  return crypto.subtle.importKey("pkcs8", pkcs8, signingAlgorithm(spec), false, ["sign"]);
}

/** Returns the SubjectPublicKeyInfo DER of a PKCS#8 private key. */
export function publicKeyOf(pkcs8: Uint8Array): Buffer {
  const privateKey = createPrivateKey({ key: Buffer.from(pkcs8), format: "der", type: "pkcs8" });
  const spki = createPublicKey(privateKey).export({ format: "der", type: "spki" });
  checkSpki(spki);
  return spki;
}

export const PRIVATE_KEY_FORMATS = ["der", "pkcs8", ""] as const;
export type PrivateKeyFormat = (typeof PRIVATE_KEY_FORMATS)[number];

/**
 * Encodes a private key as Vault returns it. The default (`der`) is PKCS#1
 * for RSA, SEC 1 for EC and PKCS#8 for Ed25519; `pkcs8` is PKCS#8 for all.
 * `pem` output is PEM, `der` output base64 DER.
 */
export function encodePrivateKey(
  pkcs8: Uint8Array | KeyObject,
  spec: KeySpec,
  privateKeyFormat: PrivateKeyFormat,
  output: "pem" | "der",
): string {
  const key =
    pkcs8 instanceof Uint8Array
      ? createPrivateKey({ key: Buffer.from(pkcs8), format: "der", type: "pkcs8" })
      : pkcs8;
  let type: "pkcs1" | "sec1" | "pkcs8" = "pkcs8";
  if (privateKeyFormat !== "pkcs8" && spec.type === "rsa") type = "pkcs1";
  if (privateKeyFormat !== "pkcs8" && spec.type === "ec") type = "sec1";
  if (output === "pem") return key.export({ format: "pem", type }) as string;
  return (key.export({ format: "der", type }) as Buffer).toString("base64");
}

/**
 * Reads a PEM private key in PKCS#8, PKCS#1 or SEC 1 and returns its
 * PKCS#8 DER. Throws `invalid_certificate` naming `field` when the key
 * cannot be read or does not match the public key it carries (see
 * `checkKeyPair`), and `unsupported_key_type` for key types and sizes
 * that `describePublicKey` rejects.
 */
export function readPrivateKeyPem(pem: string, field: string): Buffer {
  let key: KeyObject;
  try {
    key = checkKeyObject(createPrivateKey({ key: pem, format: "pem" }));
  } catch (error) {
    throw new KeywardError(
      "invalid_certificate",
      `"${field}" contains a private key that cannot be read`,
      {
        field,
        cause: error,
      },
    );
  }
  describePublicKey(createPublicKey(key), field);
  try {
    checkKeyPair(key);
  } catch (error) {
    throw new KeywardError(
      "invalid_certificate",
      `"${field}" contains a private key that does not match its own public key`,
      { field, cause: error },
    );
  }
  return key.export({ format: "der", type: "pkcs8" });
}

/** Returns the SPKI DER of a certificate or CSR public key, as a Node key object. */
export function publicKeyObject(spki: ArrayBuffer | Uint8Array): KeyObject {
  return importSpki(new Uint8Array(spki as ArrayBuffer));
}

/** Lower-case hex of a certificate's serial number, without leading zero bytes. */
export function serialHexOf(certificate: x509.X509Certificate): string {
  return normaliseSerialHex(certificate.serialNumber);
}

export function normaliseSerialHex(hex: string): string {
  const stripped = hex.toLowerCase().replace(/^(00)+(?=[0-9a-f]{2})/, "");
  return stripped.length % 2 === 1 ? `0${stripped}` : stripped;
}

/** Formats a serial in Vault's style: hex byte pairs separated by colons. */
export function colonSerial(serialHex: string): string {
  return (serialHex.match(/../g) ?? []).join(":");
}
