/**
 * Encrypt, Decrypt and Sign with KMIP objects generated in the HSM (see
 * hsm-objects.ts). The operations check state, usage mask and dates as for
 * any object, then call these. Encryption with an RSA key and signature
 * verification need only the public key, so they run in Keyward.
 */
import { randomBytes } from "node:crypto";
import { type HashAlgorithm, digest as hashDigest, hashLength } from "../../crypto/hash.ts";
import { digestInfo } from "../../crypto/rsa.ts";
import type { AesKeyBytes } from "../../hsm/aes-gcm.ts";
import type { RsaTokenHash } from "../../hsm/rsa.ts";
import { enumerationForTag } from "../tags.ts";
import type { OperationContext } from "./context.ts";
import type { CryptoParameters } from "./crypto-params.ts";
import { KmipOperationError } from "./errors.ts";
import type { HsmAesCall } from "./hsm-keys.ts";
import { hsmKeys, inHsm } from "./hsm-objects.ts";
import { tag } from "./items.ts";
import type { KmipHsmObjectRef, KmipObject } from "./object-store.ts";
import { attributeScalar } from "./objects.ts";
import { nodeHash } from "./operations/crypto-checks.ts";

/** GCM tag lengths the server accepts, in bytes, as for keys Keyward holds. */
const GCM_TAG_BYTES = new Set([12, 13, 14, 15, 16]);

/** Keyward's hash names by node:crypto name, for the hashes a signature may use. */
const HASHES: Readonly<Record<string, HashAlgorithm>> = {
  sha1: "sha1",
  sha224: "sha2-224",
  sha256: "sha2-256",
  sha384: "sha2-384",
  sha512: "sha2-512",
  "sha3-224": "sha3-224",
  "sha3-256": "sha3-256",
  "sha3-384": "sha3-384",
  "sha3-512": "sha3-512",
};

/** The hashes the token takes for OAEP and PSS: SHA-1 and SHA-2. */
const TOKEN_HASHES: Readonly<Record<string, RsaTokenHash>> = {
  sha1: "sha1",
  sha224: "sha224",
  sha256: "sha256",
  sha384: "sha384",
  sha512: "sha512",
};

function algorithmName(object: KmipObject): string {
  const value = attributeScalar(object, "Cryptographic Algorithm");
  return typeof value === "number"
    ? (enumerationForTag(tag("CryptographicAlgorithm"))?.byValue.get(value) ?? "Unknown")
    : "Unknown";
}

function aesLength(object: KmipObject): AesKeyBytes {
  const bits = attributeScalar(object, "Cryptographic Length");
  if (bits === 128 || bits === 192 || bits === 256) return (bits / 8) as AesKeyBytes;
  throw new KmipOperationError("InvalidField", "the HSM-held key has no valid AES length");
}

/**
 * Reads the mode, IV, tag length and padding of an AES request for an
 * HSM-held key: GCM, or CBC with PKCS5 padding or none. `encrypt` draws a
 * missing IV and returns it as `generatedIv`.
 */
function aesCall(
  parameters: CryptoParameters,
  iv: Buffer | undefined,
  aad: Buffer | undefined,
  encrypt: boolean,
): { call: HsmAesCall; generatedIv?: Buffer } {
  const mode = parameters.blockCipherMode;
  if (mode !== "GCM" && mode !== "CBC") {
    throw new KmipOperationError(
      "InvalidField",
      `a key held in the HSM encrypts with the GCM or CBC block cipher mode, not ${mode ?? "ECB (the default)"}`,
    );
  }
  const padding = parameters.paddingMethod ?? "None";
  if (padding !== "None" && !(mode === "CBC" && padding === "PKCS5")) {
    throw new KmipOperationError(
      "InvalidField",
      `padding method ${padding} is not supported with ${mode}`,
    );
  }
  let generatedIv: Buffer | undefined;
  let chosenIv = iv;
  if (chosenIv === undefined) {
    if (!encrypt) throw new KmipOperationError("InvalidMessage", "IV/Counter/Nonce is missing");
    let ivBytes = 12;
    if (mode === "CBC") ivBytes = 16;
    else if (parameters.ivLength) ivBytes = parameters.ivLength / 8;
    chosenIv = randomBytes(ivBytes);
    generatedIv = chosenIv;
  }
  if (mode === "CBC") {
    if (chosenIv.length !== 16) {
      throw new KmipOperationError("InvalidField", "AES-CBC needs a 16-byte IV");
    }
    return { call: { mode, iv: chosenIv, pad: padding === "PKCS5" }, generatedIv };
  }
  if (chosenIv.length < 1 || chosenIv.length > 128) {
    throw new KmipOperationError("InvalidField", "the GCM IV must be 1 to 128 bytes");
  }
  const tagBytes = parameters.tagLength ?? 16;
  if (!GCM_TAG_BYTES.has(tagBytes)) {
    throw new KmipOperationError("InvalidField", `tag length ${tagBytes} is not supported`);
  }
  return { call: { mode, iv: chosenIv, aad, tagBytes }, generatedIv };
}

function requireAes(object: KmipObject): void {
  if (object.objectType !== "SymmetricKey" || algorithmName(object) !== "AES") {
    throw new KmipOperationError(
      "InvalidObjectType",
      "only AES keys and RSA private keys held in the HSM can encrypt or decrypt",
    );
  }
}

/** Input of an HSM encryption or decryption: the request's data, IV, AAD and tag. */
export interface HsmCipherInput {
  data: Buffer;
  iv: Buffer | undefined;
  aad: Buffer | undefined;
  tag: Buffer | undefined;
}

/** Encrypts with an HSM-held AES key; returns the data, any IV drawn here, and the GCM tag. */
export async function hsmEncrypt(
  object: KmipObject,
  reference: KmipHsmObjectRef,
  parameters: CryptoParameters,
  input: HsmCipherInput,
  context: OperationContext,
): Promise<{ data: Buffer; generatedIv?: Buffer; tag?: Buffer }> {
  requireAes(object);
  const { call, generatedIv } = aesCall(parameters, input.iv, input.aad, true);
  if (call.mode === "CBC" && !call.pad && input.data.length % 16 !== 0) {
    throw new KmipOperationError(
      "InvalidField",
      "the data length does not fit the mode without padding",
    );
  }
  const keys = await hsmKeys(context);
  const result = await inHsm(() => keys.encryptAes(reference, aesLength(object), call, input.data));
  return { ...result, ...(generatedIv === undefined ? {} : { generatedIv }) };
}

/**
 * Decrypts with an HSM-held AES key, or with an HSM-held RSA private key
 * under OAEP (SHA-1 unless the request names another hash; the mask
 * generator must use the same hash).
 */
export async function hsmDecrypt(
  object: KmipObject,
  reference: KmipHsmObjectRef,
  parameters: CryptoParameters,
  input: HsmCipherInput,
  context: OperationContext,
): Promise<Buffer> {
  if (object.objectType === "PrivateKey") {
    const padding = parameters.paddingMethod ?? "OAEP";
    if (padding === "PKCS1V1_5") {
      throw new KmipOperationError(
        "CryptographicFailure",
        "PKCS#1 v1.5 decryption is not supported",
      );
    }
    if (padding !== "OAEP") {
      throw new KmipOperationError(
        "InvalidField",
        `padding method ${padding} is not supported for RSA`,
      );
    }
    const hash = tokenHashOf(parameters.hashingAlgorithm, "sha1");
    const mgf = parameters.maskGeneratorHashingAlgorithm;
    if (mgf !== undefined && tokenHashOf(mgf, "sha1") !== hash) {
      throw new KmipOperationError(
        "InvalidField",
        "a key held in the HSM needs the same hash for OAEP and its mask generator",
      );
    }
    const keys = await hsmKeys(context);
    return inHsm(() => keys.decryptOaep(reference, hash, input.data));
  }
  requireAes(object);
  const { call } = aesCall(parameters, input.iv, input.aad, false);
  if (call.mode === "GCM" && input.tag?.length !== call.tagBytes) {
    throw new KmipOperationError("CryptographicFailure", "the cryptographic operation failed");
  }
  const keys = await hsmKeys(context);
  return inHsm(() => keys.decryptAes(reference, aesLength(object), call, input.data, input.tag));
}

function tokenHashOf(name: string | undefined, fallback: string): RsaTokenHash {
  const node = nodeHash(name, fallback);
  const hash = TOKEN_HASHES[node];
  if (hash === undefined) {
    throw new KmipOperationError(
      "InvalidField",
      `a key held in the HSM uses SHA-1 or SHA-2 for OAEP and PSS, not ${name}`,
    );
  }
  return hash;
}

/**
 * Signs `data` with an HSM-held private key: Keyward hashes the data, and
 * the token signs the digest with ECDSA (DER result), RSA PKCS#1 v1.5 (the
 * default) or RSA-PSS (salt as long as the hash unless the request sets
 * Salt Length). `hashName` and `pss` come from the request's parameters.
 */
export async function hsmSign(
  object: KmipObject,
  reference: KmipHsmObjectRef,
  signature: { hashName: string | undefined; pss: boolean; saltLength: number | undefined },
  data: Buffer,
  context: OperationContext,
): Promise<Buffer> {
  const node = nodeHash(signature.hashName);
  const hash = HASHES[node];
  if (hash === undefined) {
    throw new KmipOperationError(
      "InvalidField",
      `hashing algorithm ${signature.hashName} is not supported`,
    );
  }
  const digest = hashDigest(hash, data);
  const keys = await hsmKeys(context);
  const algorithm = algorithmName(object);
  if (algorithm === "EC" || algorithm === "ECDSA") {
    return inHsm(() => keys.signEcdsa(reference, digest));
  }
  if (algorithm !== "RSA") {
    throw new KmipOperationError("FeatureNotSupported", "the key type cannot sign");
  }
  if (!signature.pss) return inHsm(() => keys.signRsaPkcs1(reference, digestInfo(hash, digest)));
  const tokenHash = tokenHashOf(signature.hashName, "sha256");
  const saltLength = signature.saltLength ?? hashLength(hash);
  // RFC 8017 section 9.1.1: the encoded message contains the hash, the salt and two more bytes.
  const bits = attributeScalar(object, "Cryptographic Length");
  const maxSalt =
    typeof bits === "number" ? Math.ceil((bits - 1) / 8) - hashLength(hash) - 2 : undefined;
  if (saltLength < 0 || (maxSalt !== undefined && saltLength > maxSalt)) {
    throw new KmipOperationError(
      "InvalidField",
      `Salt Length ${saltLength} does not fit the key: it must be between 0 and ${maxSalt ?? "the maximum"}`,
    );
  }
  return inHsm(() => keys.signRsaPss(reference, digest, tokenHash, saltLength));
}
