import { generateKeyPair, type KeyObject, sign, verify } from "node:crypto";
import { promisify } from "node:util";
import { KeywardError } from "../../errors.ts";
import { ECDSA_CURVES, type EcdsaCurve, type KeyAlgorithm } from "./public-keys.ts";
import { SshReader, SshWriter } from "./wire.ts";

/**
 * SSH signatures (RFC 8709 for Ed25519, RFC 5656 section 3.1.2 for ECDSA,
 * RFC 8332 for RSA) and generation of the key pairs Keyward signs with or
 * issues. RSA signs only with rsa-sha2-256 or rsa-sha2-512, never with
 * SHA-1 (`ssh-rsa` signatures).
 */

export const RSA_SIGNATURE_ALGORITHMS = ["rsa-sha2-256", "rsa-sha2-512"] as const;
export type RsaSignatureAlgorithm = (typeof RSA_SIGNATURE_ALGORITHMS)[number];

/** The signature algorithm RSA CA keys use when a role does not pick one, as in Vault. */
export const DEFAULT_RSA_SIGNATURE_ALGORITHM: RsaSignatureAlgorithm = "rsa-sha2-256";

/** RSA sizes accepted for generated keys, in bits. */
export const RSA_KEY_SIZES = [2048, 3072, 4096] as const;

const generateKeyPairAsync = promisify(generateKeyPair);

/**
 * Returns the signature algorithm name for a key: the key's own algorithm,
 * or for RSA the requested `rsa-sha2-*` algorithm.
 */
export function signatureAlgorithmFor(
  keyAlgorithm: KeyAlgorithm,
  rsaAlgorithm: RsaSignatureAlgorithm | undefined,
): string {
  if (keyAlgorithm === "ssh-rsa") return rsaAlgorithm ?? DEFAULT_RSA_SIGNATURE_ALGORITHM;
  return keyAlgorithm;
}

/** Signs `data` and returns the signature in SSH wire format: string algorithm, string blob. */
export function signSsh(
  privateKey: KeyObject,
  keyAlgorithm: KeyAlgorithm,
  rsaAlgorithm: RsaSignatureAlgorithm | undefined,
  data: Uint8Array,
): Buffer {
  const algorithm = signatureAlgorithmFor(keyAlgorithm, rsaAlgorithm);
  let blob: Buffer;
  if (keyAlgorithm === "ssh-ed25519") {
    blob = sign(null, data, privateKey);
  } else if (keyAlgorithm === "ssh-rsa") {
    blob = sign(algorithm === "rsa-sha2-512" ? "sha512" : "sha256", data, privateKey);
  } else {
    const curve = ECDSA_CURVES[keyAlgorithm] as EcdsaCurve;
    const raw = sign(curve.hash, data, { key: privateKey, dsaEncoding: "ieee-p1363" });
    blob = new SshWriter()
      .mpint(raw.subarray(0, curve.size))
      .mpint(raw.subarray(curve.size))
      .toBuffer();
  }
  return new SshWriter().string(algorithm).string(blob).toBuffer();
}

/**
 * Verifies an SSH wire-format signature over `data` with a public key.
 * Returns false for a signature that does not verify or does not parse.
 */
export function verifySsh(
  publicKey: KeyObject,
  keyAlgorithm: KeyAlgorithm,
  signature: Uint8Array,
  data: Uint8Array,
): boolean {
  try {
    const reader = new SshReader(signature);
    const algorithm = reader.text();
    const blob = reader.string();
    reader.end();
    if (keyAlgorithm === "ssh-ed25519") {
      return algorithm === keyAlgorithm && verify(null, data, publicKey, blob);
    }
    if (keyAlgorithm === "ssh-rsa") {
      if (!(RSA_SIGNATURE_ALGORITHMS as readonly string[]).includes(algorithm)) return false;
      return verify(algorithm === "rsa-sha2-512" ? "sha512" : "sha256", data, publicKey, blob);
    }
    const curve = ECDSA_CURVES[keyAlgorithm] as EcdsaCurve;
    if (algorithm !== keyAlgorithm) return false;
    const inner = new SshReader(blob);
    const r = inner.positiveMpint();
    const s = inner.positiveMpint();
    inner.end();
    if (r.length > curve.size || s.length > curve.size) return false;
    const raw = Buffer.concat([pad(r, curve.size), pad(s, curve.size)]);
    return verify(curve.hash, data, { key: publicKey, dsaEncoding: "ieee-p1363" }, raw);
  } catch {
    return false;
  }
}

function pad(bytes: Buffer, length: number): Buffer {
  return Buffer.concat([Buffer.alloc(length - bytes.length), bytes]);
}

/** A key type and size as the API accepts them, resolved to an SSH key algorithm. */
export interface KeySpec {
  algorithm: KeyAlgorithm;
  /** RSA modulus size; the curve size for ECDSA; 256 for Ed25519. */
  bits: number;
}

/**
 * Resolves a key type and size from a request. Accepts the SSH names
 * (`ssh-ed25519`, `ecdsa-sha2-nistp256`, `ssh-rsa`, ...) and Vault's short
 * names (`ed25519`, `ec`, `rsa`). `key_bits` picks the RSA size (2048, 3072
 * or 4096) or the curve for `ec` (256, 384 or 521); 0 or absent means
 * `defaultRsaBits` for RSA and 256 for `ec`.
 */
export function resolveKeySpec(
  keyType: string,
  keyBits: number | undefined,
  defaultRsaBits: number,
  fields: { type: string; bits: string },
): KeySpec {
  const bits = keyBits === undefined || keyBits === 0 ? undefined : keyBits;
  const badBits = (allowed: readonly number[]) =>
    new KeywardError(
      "invalid_field",
      `"${fields.bits}" must be one of ${allowed.join(", ")} for key type "${keyType}"`,
      { field: fields.bits },
    );
  switch (keyType) {
    case "ed25519":
    case "ssh-ed25519":
      if (bits !== undefined && bits !== 256) throw badBits([256]);
      return { algorithm: "ssh-ed25519", bits: 256 };
    case "rsa":
    case "ssh-rsa": {
      const size = bits ?? defaultRsaBits;
      if (!(RSA_KEY_SIZES as readonly number[]).includes(size)) throw badBits(RSA_KEY_SIZES);
      return { algorithm: "ssh-rsa", bits: size };
    }
    case "ec":
    case "ecdsa": {
      const size = bits ?? 256;
      const algorithm = `ecdsa-sha2-nistp${size}`;
      if (!(algorithm in ECDSA_CURVES)) throw badBits([256, 384, 521]);
      return { algorithm: algorithm as KeyAlgorithm, bits: size };
    }
    default: {
      const curve = ECDSA_CURVES[keyType];
      if (curve) {
        if (bits !== undefined && bits !== curve.bits) throw badBits([curve.bits]);
        return { algorithm: keyType as KeyAlgorithm, bits: curve.bits };
      }
      throw new KeywardError(
        "unsupported_key_type",
        `"${fields.type}": key type "${keyType.slice(0, 64)}" is not supported; use ssh-ed25519, ecdsa-sha2-nistp256, ecdsa-sha2-nistp384, ecdsa-sha2-nistp521 or ssh-rsa (or ed25519, ec, rsa)`,
        { field: fields.type },
      );
    }
  }
}

/** Generates a key pair of the given type; RSA generation runs off the event loop. */
export async function generateSshKeyPair(
  spec: KeySpec,
): Promise<{ publicKey: KeyObject; privateKey: KeyObject }> {
  if (spec.algorithm === "ssh-ed25519") return generateKeyPairAsync("ed25519");
  if (spec.algorithm === "ssh-rsa") {
    return generateKeyPairAsync("rsa", { modulusLength: spec.bits, publicExponent: 65537 });
  }
  const curve = ECDSA_CURVES[spec.algorithm] as EcdsaCurve;
  return generateKeyPairAsync("ec", { namedCurve: curve.jwkName });
}
