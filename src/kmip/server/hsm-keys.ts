/**
 * The PKCS#11 side of KMIP objects generated in the HSM (see
 * hsm-objects.ts). Only hsm-objects.ts imports this file, on first use.
 */
import { randomBytes } from "node:crypto";
import { type AesKeyBytes, HsmAesKey } from "../../hsm/aes-gcm.ts";
import { HsmEcdsaKey, rawSignatureToDer } from "../../hsm/ecdsa.ts";
import { destroyKeyObjects } from "../../hsm/objects.ts";
import { HsmRsaKey, type RsaModulusBits, type RsaTokenHash } from "../../hsm/rsa.ts";
import type { HsmToken } from "../../hsm/token.ts";
import { KmipOperationError } from "./errors.ts";
import { hsmLabel } from "./hsm-objects.ts";
import type { KmipHsmObjectRef } from "./object-store.ts";

/** Bytes of a random CKA_ID, as transit uses. */
const OBJECT_ID_BYTES = 16;

function idOf(reference: KmipHsmObjectRef): Buffer {
  return Buffer.from(reference.id, "hex");
}

function missing(reference: KmipHsmObjectRef): KmipOperationError {
  return new KmipOperationError(
    "ItemNotFound",
    `the HSM has no key labelled "${reference.label}" with ID ${reference.id}: check that the server uses the token the key was created in`,
  );
}

/** AES mode parameters of one HSM call. */
export interface HsmAesCall {
  mode: "GCM" | "CBC";
  iv: Buffer;
  /** GCM only: the additional authenticated data. */
  aad?: Buffer;
  /** GCM only: the tag length in bytes. */
  tagBytes?: number;
  /** CBC only: PKCS#7 padding (KMIP's PKCS5). */
  pad?: boolean;
}

/** Generates, uses and destroys the token objects of HSM-held KMIP objects. */
export class KmipHsmKeys {
  readonly #token: HsmToken;

  constructor(token: HsmToken) {
    this.#token = token;
  }

  /** Generates a non-extractable AES key for the KMIP object `uid`. */
  async generateAes(uid: string, lengthBytes: AesKeyBytes): Promise<KmipHsmObjectRef> {
    const id = randomBytes(OBJECT_ID_BYTES);
    const label = hsmLabel(uid);
    await HsmAesKey.generate(this.#token, label, id, lengthBytes);
    return { label, id: id.toString("hex") };
  }

  /**
   * Generates an RSA key pair of `bits` bits, or an EC P-256 key pair, for
   * the KMIP private key `uid`, and returns the reference with the public
   * key as base64 DER SPKI. A pair whose public key cannot be read is
   * destroyed again.
   */
  async generatePair(
    uid: string,
    algorithm: "RSA" | "EC",
    bits: RsaModulusBits | 256,
  ): Promise<KmipHsmObjectRef> {
    const id = randomBytes(OBJECT_ID_BYTES);
    const label = hsmLabel(uid);
    const pair =
      algorithm === "RSA"
        ? await HsmRsaKey.generate(this.#token, label, bits as RsaModulusBits, id)
        : await HsmEcdsaKey.generate(this.#token, label, id);
    try {
      const publicKey = await pair.publicKey();
      return {
        label,
        id: id.toString("hex"),
        publicKey: publicKey.export({ format: "der", type: "spki" }).toString("base64"),
      };
    } catch (error) {
      await destroyKeyObjects(this.#token, label, id).catch(() => undefined);
      throw error;
    }
  }

  /** Encrypts with an HSM-held AES key; GCM returns ciphertext and tag apart. */
  async encryptAes(
    reference: KmipHsmObjectRef,
    lengthBytes: AesKeyBytes,
    call: HsmAesCall,
    data: Buffer,
  ): Promise<{ data: Buffer; tag?: Buffer }> {
    const key = await this.#aesKey(reference, lengthBytes);
    if (call.mode === "CBC")
      return { data: await key.encryptCbc(call.iv, data, call.pad ?? false) };
    const tagBytes = call.tagBytes ?? 16;
    const sealed = await key.encryptGcm(call.iv, data, call.aad ?? Buffer.alloc(0), tagBytes);
    return {
      data: sealed.subarray(0, sealed.length - tagBytes),
      tag: sealed.subarray(sealed.length - tagBytes),
    };
  }

  /** Decrypts with an HSM-held AES key; GCM takes the tag apart from the ciphertext. */
  async decryptAes(
    reference: KmipHsmObjectRef,
    lengthBytes: AesKeyBytes,
    call: HsmAesCall,
    data: Buffer,
    tag: Buffer | undefined,
  ): Promise<Buffer> {
    const key = await this.#aesKey(reference, lengthBytes);
    if (call.mode === "CBC") return key.decryptCbc(call.iv, data, call.pad ?? false);
    const input = Buffer.concat([data, tag ?? Buffer.alloc(0)]);
    return key.decryptGcm(call.iv, input, call.aad ?? Buffer.alloc(0), call.tagBytes ?? 16);
  }

  /** Decrypts RSA-OAEP in the token, `hash` for the label hash and MGF1. */
  async decryptOaep(
    reference: KmipHsmObjectRef,
    hash: RsaTokenHash,
    data: Buffer,
  ): Promise<Buffer> {
    return (await this.#rsaKey(reference)).decryptOaep(data, hash);
  }

  /** Signs a DigestInfo with PKCS#1 v1.5 padding in the token. */
  async signRsaPkcs1(reference: KmipHsmObjectRef, digestInfo: Buffer): Promise<Buffer> {
    return (await this.#rsaKey(reference)).signPkcs1(digestInfo);
  }

  /** Signs a digest with RSASSA-PSS in the token. */
  async signRsaPss(
    reference: KmipHsmObjectRef,
    digest: Buffer,
    hash: RsaTokenHash,
    saltLength: number,
  ): Promise<Buffer> {
    return (await this.#rsaKey(reference)).signPss(digest, hash, saltLength);
  }

  /** Signs a digest with ECDSA P-256 in the token and returns the DER signature. */
  async signEcdsa(reference: KmipHsmObjectRef, digest: Buffer): Promise<Buffer> {
    const key = await HsmEcdsaKey.find(this.#token, reference.label, idOf(reference));
    if (key === undefined) throw missing(reference);
    return rawSignatureToDer(await key.signDigest(digest));
  }

  /** Destroys the token objects of a reference and returns how many there were. */
  destroy(reference: KmipHsmObjectRef): Promise<number> {
    return destroyKeyObjects(this.#token, reference.label, idOf(reference));
  }

  async #aesKey(reference: KmipHsmObjectRef, lengthBytes: AesKeyBytes): Promise<HsmAesKey> {
    const key = await HsmAesKey.find(this.#token, reference.label, idOf(reference), lengthBytes);
    if (key === undefined) throw missing(reference);
    return key;
  }

  async #rsaKey(reference: KmipHsmObjectRef): Promise<HsmRsaKey> {
    const key = await HsmRsaKey.find(this.#token, reference.label, idOf(reference));
    if (key === undefined) throw missing(reference);
    return key;
  }
}
