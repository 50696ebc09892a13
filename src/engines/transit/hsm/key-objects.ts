import { randomBytes } from "node:crypto";
import { digest } from "../../../crypto/hash.ts";
import { decryptionFailed, KeywardError } from "../../../errors.ts";
import { GCM_IV_BYTES, GCM_TAG_BYTES, HsmAesKey } from "../../../hsm/aes-gcm.ts";
import { HsmEcdsaKey, rawSignatureToDer } from "../../../hsm/ecdsa.ts";
import { destroyKeyObjects } from "../../../hsm/objects.ts";
import { HsmRsaKey, type RsaModulusBits } from "../../../hsm/rsa.ts";
import type { HsmToken } from "../../../hsm/token.ts";
import {
  checkPrehashedInput,
  type DecryptParams,
  type EncryptParams,
  HSM_RSA_OAEP_HASH,
  rejectAssociatedData,
  type SignParams,
  type VersionMaterial,
} from "../../../keys/index.ts";
import type { HsmObjectRef, KeyType } from "../../../keys/types.ts";
import { signRsaInHsm, tokenHash } from "./rsa-signing.ts";

/*
 * The transit engine's only module that loads the PKCS#11 code. `access.ts`
 * imports it on first use, so a server without an HSM never loads the addon.
 */

/** Bytes of a random CKA_ID: unique per object without coordination between nodes. */
const OBJECT_ID_BYTES = 16;

/**
 * Key handles kept found, so an operation searches the token once instead
 * of twice. A handle still looks its object up at each use, so a cached
 * handle of a destroyed object fails cleanly.
 */
const FOUND_KEYS_LIMIT = 1000;

function unsupportedType(type: KeyType): KeywardError {
  return new KeywardError("internal", "internal error", {
    details: { type, reason: "the key type cannot be held in an HSM" },
  });
}

/** Modulus sizes of the RSA key types. */
const RSA_BITS: Partial<Record<KeyType, RsaModulusBits>> = {
  "rsa-2048": 2048,
  "rsa-3072": 3072,
  "rsa-4096": 4096,
};

function objectId(reference: HsmObjectRef): Buffer {
  return Buffer.from(reference.id, "hex");
}

/**
 * The HSM objects of transit keys, one secret key or key pair per key
 * version, addressed by label and CKA_ID. Every call runs on the token's
 * one session, one at a time.
 */
export class HsmKeyObjects {
  readonly #token: HsmToken;
  readonly #aesKeys = new Map<string, HsmAesKey>();
  readonly #ecdsaKeys = new Map<string, HsmEcdsaKey>();
  readonly #rsaKeys = new Map<string, HsmRsaKey>();

  constructor(token: HsmToken) {
    this.#token = token;
  }

  /**
   * Generates a non-extractable key of `type` labelled `label` with a
   * random CKA_ID, and returns a version's material: the reference, and
   * for a key pair its public key as SPKI PEM. Throws `hsm_failure` when
   * the token fails; a key pair whose public key cannot be read is
   * destroyed again.
   */
  async generate(type: KeyType, label: string): Promise<VersionMaterial> {
    const id = randomBytes(OBJECT_ID_BYTES);
    const hsmObject = { label, id: id.toString("hex") };
    if (type === "aes256-gcm96") {
      await HsmAesKey.generate(this.#token, label, id);
      return { hsmObject };
    }
    const rsaBits = RSA_BITS[type];
    if (type !== "ecdsa-p256" && rsaBits === undefined) throw unsupportedType(type);
    const pair =
      rsaBits === undefined
        ? await HsmEcdsaKey.generate(this.#token, label, id)
        : await HsmRsaKey.generate(this.#token, label, rsaBits, id);
    try {
      const publicKey = await pair.publicKey();
      return {
        hsmObject,
        publicKeyPem: publicKey.export({ format: "pem", type: "spki" }).toString(),
      };
    } catch (error) {
      await destroyKeyObjects(this.#token, label, id).catch(() => undefined);
      throw error;
    }
  }

  /**
   * Encrypts with AES-256-GCM in the token and returns the payload as a
   * software key writes it: IV (12 bytes) || ciphertext || tag (16 bytes).
   */
  async encrypt(type: KeyType, reference: HsmObjectRef, params: EncryptParams): Promise<Buffer> {
    if (type !== "aes256-gcm96") throw unsupportedType(type);
    const key = await this.#aesKey(reference);
    const sealed = await key.encrypt(params.plaintext, params.associatedData ?? Buffer.alloc(0));
    return Buffer.concat([sealed.iv, sealed.ciphertext]);
  }

  /**
   * Decrypts a payload of `encrypt`, or for an RSA key an RSA-OAEP
   * ciphertext with SHA-1 (`HSM_RSA_OAEP_HASH`). Throws `decryption_failed`
   * when it does not authenticate or decode.
   */
  async decrypt(type: KeyType, reference: HsmObjectRef, params: DecryptParams): Promise<Buffer> {
    if (RSA_BITS[type] !== undefined) {
      rejectAssociatedData(type, params.associatedData);
      const pair = await this.#rsaKey(reference);
      return pair.decryptOaep(params.payload, tokenHash(HSM_RSA_OAEP_HASH) ?? "sha1");
    }
    if (type !== "aes256-gcm96") throw unsupportedType(type);
    if (params.payload.length < GCM_IV_BYTES + GCM_TAG_BYTES) throw decryptionFailed();
    const key = await this.#aesKey(reference);
    return key.decrypt(
      {
        iv: params.payload.subarray(0, GCM_IV_BYTES),
        ciphertext: params.payload.subarray(GCM_IV_BYTES),
      },
      params.associatedData ?? Buffer.alloc(0),
    );
  }

  /**
   * Signs in the token: Keyward hashes the input (unless it is prehashed)
   * and the token signs the digest. ECDSA P-256 returns DER (`asn1`
   * marshaling) or r || s (`jws`), as a software key does. RSA keys sign
   * with PKCS#1 v1.5 or PSS (see `signRsaInHsm`) and need the version's
   * `publicKeyPem`, which gives the modulus size for the salt length.
   */
  async sign(
    type: KeyType,
    reference: HsmObjectRef,
    params: SignParams,
    publicKeyPem?: string,
  ): Promise<Buffer> {
    if (RSA_BITS[type] !== undefined && publicKeyPem !== undefined) {
      return signRsaInHsm(type, await this.#rsaKey(reference), publicKeyPem, params);
    }
    if (type !== "ecdsa-p256") throw unsupportedType(type);
    checkPrehashedInput(params);
    const pair = await findCached(this.#ecdsaKeys, reference, (label, id) =>
      HsmEcdsaKey.find(this.#token, label, id),
    );
    const hash = params.prehashed ? params.input : digest(params.hashAlgorithm, params.input);
    const raw = await pair.signDigest(hash);
    return params.marshalingAlgorithm === "jws" ? raw : rawSignatureToDer(raw);
  }

  /** Destroys a version's objects and returns how many there were; none is not an error. */
  destroy(reference: HsmObjectRef): Promise<number> {
    this.#aesKeys.delete(cacheKey(reference));
    this.#ecdsaKeys.delete(cacheKey(reference));
    this.#rsaKeys.delete(cacheKey(reference));
    return destroyKeyObjects(this.#token, reference.label, objectId(reference));
  }

  #rsaKey(reference: HsmObjectRef): Promise<HsmRsaKey> {
    return findCached(this.#rsaKeys, reference, (label, id) =>
      HsmRsaKey.find(this.#token, label, id),
    );
  }

  #aesKey(reference: HsmObjectRef): Promise<HsmAesKey> {
    return findCached(this.#aesKeys, reference, (label, id) =>
      HsmAesKey.find(this.#token, label, id),
    );
  }
}

/** Finds the key a reference names, through a cache of found handles. */
async function findCached<K>(
  cache: Map<string, K>,
  reference: HsmObjectRef,
  find: (label: string, id: Buffer) => Promise<K | undefined>,
): Promise<K> {
  const name = cacheKey(reference);
  const cached = cache.get(name);
  if (cached !== undefined) return cached;
  const key = await find(reference.label, objectId(reference));
  if (key === undefined) throw missingObject(reference);
  if (cache.size >= FOUND_KEYS_LIMIT) cache.clear();
  cache.set(name, key);
  return key;
}

function cacheKey(reference: HsmObjectRef): string {
  return `${reference.label}\u0000${reference.id}`;
}

function missingObject(reference: HsmObjectRef): KeywardError {
  return new KeywardError(
    "hsm_key_not_found",
    `the HSM has no key labelled "${reference.label}" with ID ${reference.id}: check that the server uses the token the key was created in, and whether the object was deleted from the HSM`,
  );
}
