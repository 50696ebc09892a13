import {
  constants,
  type KeyObject,
  privateDecrypt,
  privateEncrypt,
  publicDecrypt,
  publicEncrypt,
  sign,
  verify,
} from "node:crypto";
import { decryptionFailed } from "../errors.ts";
import { constantTimeEqual } from "./compare.ts";
import { type HashAlgorithm, hashLength, nodeHashName } from "./hash.ts";

export type RsaSignaturePadding = "pss" | "pkcs1v15";

/**
 * PSS salt length in bytes. "auto" means the maximum when signing and any
 * length when verifying, and "hash" means the digest length.
 */
export type PssSaltLength = "auto" | "hash" | number;

export interface RsaSignOptions {
  hash: HashAlgorithm;
  /** True when `input` is already the digest of the message under `hash`. */
  prehashed: boolean;
  padding: RsaSignaturePadding;
  saltLength: PssSaltLength;
}

/** DER contents of the hash algorithm OIDs a PKCS#1 v1.5 DigestInfo names (RFC 8017, appendix B.1). */
const DIGEST_ALGORITHM_OIDS: Record<HashAlgorithm, string> = {
  sha1: "2b0e03021a",
  "sha2-224": "608648016503040204",
  "sha2-256": "608648016503040201",
  "sha2-384": "608648016503040202",
  "sha2-512": "608648016503040203",
  "sha3-224": "608648016503040207",
  "sha3-256": "608648016503040208",
  "sha3-384": "608648016503040209",
  "sha3-512": "60864801650304020a",
};

/**
 * Encodes DigestInfo ::= SEQUENCE { AlgorithmIdentifier, OCTET STRING digest }
 * (RFC 8017, section 9.2), the value a PKCS#1 v1.5 signature pads and signs.
 * Every length here is below 128, so each DER length is one byte.
 */
export function digestInfo(hash: HashAlgorithm, digestBytes: Uint8Array): Buffer {
  const oid = Buffer.from(DIGEST_ALGORITHM_OIDS[hash], "hex");
  const algorithmIdentifier = derSequence(
    Buffer.concat([Buffer.from([0x06, oid.length]), oid, Buffer.from([0x05, 0x00])]),
  );
  const octetString = Buffer.concat([Buffer.from([0x04, digestBytes.length]), digestBytes]);
  return derSequence(Buffer.concat([algorithmIdentifier, octetString]));
}

function derSequence(content: Buffer): Buffer {
  return Buffer.concat([Buffer.from([0x30, content.length]), content]);
}

/** Returns the modulus length of an RSA key in bytes. */
export function rsaModulusBytes(key: KeyObject): number {
  const bits = key.asymmetricKeyDetails?.modulusLength;
  if (bits === undefined) throw new TypeError("not an RSA key");
  return Math.ceil(bits / 8);
}

/** Returns the largest PSS salt length for a key and hash (RFC 8017, section 9.1.1). */
export function maxPssSaltLength(key: KeyObject, hash: HashAlgorithm): number {
  const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
  return Math.ceil((bits - 1) / 8) - hashLength(hash) - 2;
}

function pssSaltLength(saltLength: PssSaltLength, signing: boolean): number {
  if (saltLength === "hash") return constants.RSA_PSS_SALTLEN_DIGEST;
  if (saltLength === "auto") {
    return signing ? constants.RSA_PSS_SALTLEN_MAX_SIGN : constants.RSA_PSS_SALTLEN_AUTO;
  }
  return saltLength;
}

function checkOptions(key: KeyObject, input: Uint8Array, options: RsaSignOptions): void {
  if (options.prehashed && input.length !== hashLength(options.hash)) {
    throw new RangeError(`a prehashed ${options.hash} input is ${hashLength(options.hash)} bytes`);
  }
  if (options.prehashed && options.padding === "pss") {
    // NOTE: node:crypto 20 has no PSS signing over a caller-supplied digest
    // (privateEncrypt takes no PSS padding), and Keyward does not encode PSS itself.
    throw new RangeError("prehashed input is supported only with PKCS#1 v1.5 padding");
  }
  if (typeof options.saltLength === "number") {
    const max = maxPssSaltLength(key, options.hash);
    if (
      !Number.isInteger(options.saltLength) ||
      options.saltLength < 0 ||
      options.saltLength > max
    ) {
      throw new RangeError(`the PSS salt length must be an integer from 0 to ${max}`);
    }
  }
}

/** Signs `input` (a message, or its digest when prehashed) with RSASSA-PSS or PKCS#1 v1.5. */
export function rsaSign(privateKey: KeyObject, input: Uint8Array, options: RsaSignOptions): Buffer {
  checkOptions(privateKey, input, options);
  if (options.prehashed) {
    return privateEncrypt(
      { key: privateKey, padding: constants.RSA_PKCS1_PADDING },
      digestInfo(options.hash, input),
    );
  }
  if (options.padding === "pkcs1v15") {
    return sign(nodeHashName(options.hash), input, {
      key: privateKey,
      padding: constants.RSA_PKCS1_PADDING,
    });
  }
  return sign(nodeHashName(options.hash), input, {
    key: privateKey,
    padding: constants.RSA_PKCS1_PSS_PADDING,
    saltLength: pssSaltLength(options.saltLength, true),
  });
}

/** Verifies an RSA signature; malformed signatures return false. */
export function rsaVerify(
  publicKey: KeyObject,
  input: Uint8Array,
  signature: Uint8Array,
  options: RsaSignOptions,
): boolean {
  checkOptions(publicKey, input, options);
  if (signature.length !== rsaModulusBytes(publicKey)) return false;
  try {
    if (options.prehashed) {
      const recovered = publicDecrypt(
        { key: publicKey, padding: constants.RSA_PKCS1_PADDING },
        signature,
      );
      return constantTimeEqual(recovered, digestInfo(options.hash, input));
    }
    if (options.padding === "pkcs1v15") {
      return verify(
        nodeHashName(options.hash),
        input,
        { key: publicKey, padding: constants.RSA_PKCS1_PADDING },
        signature,
      );
    }
    return verify(
      nodeHashName(options.hash),
      input,
      {
        key: publicKey,
        padding: constants.RSA_PKCS1_PSS_PADDING,
        saltLength: pssSaltLength(options.saltLength, false),
      },
      signature,
    );
  } catch {
    return false;
  }
}

/** Returns the longest plaintext RSA-OAEP can encrypt under a key and hash (RFC 8017, section 7.1.1). */
export function maxOaepPlaintextLength(key: KeyObject, hash: HashAlgorithm): number {
  return rsaModulusBytes(key) - 2 * hashLength(hash) - 2;
}

/** Encrypts with RSAES-OAEP, MGF1 using the same hash as the label hash. */
export function rsaOaepEncrypt(
  publicKey: KeyObject,
  plaintext: Uint8Array,
  hash: HashAlgorithm,
  label?: Uint8Array,
): Buffer {
  if (plaintext.length > maxOaepPlaintextLength(publicKey, hash)) {
    throw new RangeError(
      `RSA-OAEP plaintext is at most ${maxOaepPlaintextLength(publicKey, hash)} bytes for this key`,
    );
  }
  return publicEncrypt(
    {
      key: publicKey,
      padding: constants.RSA_PKCS1_OAEP_PADDING,
      oaepHash: nodeHashName(hash),
      ...(label === undefined ? {} : { oaepLabel: label }),
    },
    plaintext,
  );
}

/** Decrypts RSAES-OAEP; any failure throws `decryptionFailed()`. */
export function rsaOaepDecrypt(
  privateKey: KeyObject,
  ciphertext: Uint8Array,
  hash: HashAlgorithm,
  label?: Uint8Array,
): Buffer {
  try {
    return privateDecrypt(
      {
        key: privateKey,
        padding: constants.RSA_PKCS1_OAEP_PADDING,
        oaepHash: nodeHashName(hash),
        ...(label === undefined ? {} : { oaepLabel: label }),
      },
      ciphertext,
    );
  } catch (error) {
    throw decryptionFailed(error);
  }
}
