import { createPublicKey, type KeyObject, randomBytes } from "node:crypto";
import pkcs11js from "pkcs11js";
import { invalidField, KeywardError } from "../errors.ts";
import {
  decryptToCopy,
  describeSelector,
  findKey,
  type KeyProtection,
  type KeySelector,
  readAttributes,
  readKeyProtection,
  requireKey,
} from "./objects.ts";
import { hsmOperationFailed } from "./pkcs11-errors.ts";
import type { HsmToken } from "./token.ts";

/** RSA modulus sizes Keyward generates in a token, in bits. */
export const RSA_MODULUS_BITS = [2048, 3072, 4096] as const;
export type RsaModulusBits = (typeof RSA_MODULUS_BITS)[number];

/** Hash functions the token uses for OAEP (label hash and MGF1) and PSS (message digest and MGF1). */
export type RsaTokenHash = "sha1" | "sha224" | "sha256" | "sha384" | "sha512";

/** CK_RSA_PKCS_OAEP_PARAMS.source: the label is given in sourceData (PKCS#11 2.40, CKZ_DATA_SPECIFIED). */
const CKZ_DATA_SPECIFIED = 1;

const HASH_MECHANISMS: Record<RsaTokenHash, { hashAlg: number; mgf: number; bytes: number }> = {
  sha1: { hashAlg: pkcs11js.CKM_SHA_1, mgf: pkcs11js.CKG_MGF1_SHA1, bytes: 20 },
  sha224: { hashAlg: pkcs11js.CKM_SHA224, mgf: pkcs11js.CKG_MGF1_SHA224, bytes: 28 },
  sha256: { hashAlg: pkcs11js.CKM_SHA256, mgf: pkcs11js.CKG_MGF1_SHA256, bytes: 32 },
  sha384: { hashAlg: pkcs11js.CKM_SHA384, mgf: pkcs11js.CKG_MGF1_SHA384, bytes: 48 },
  sha512: { hashAlg: pkcs11js.CKM_SHA512, mgf: pkcs11js.CKG_MGF1_SHA512, bytes: 64 },
};

/** What the private key of a new pair may do; both default to true. */
export interface RsaKeyUsage {
  decrypt?: boolean;
  sign?: boolean;
}

function privateSelector(label: string, id?: Buffer): KeySelector {
  return {
    objectClass: pkcs11js.CKO_PRIVATE_KEY,
    keyType: pkcs11js.CKK_RSA,
    label,
    ...(id === undefined ? {} : { id }),
    kind: "RSA private key",
  };
}

function publicSelector(label: string, id?: Buffer): KeySelector {
  return {
    objectClass: pkcs11js.CKO_PUBLIC_KEY,
    keyType: pkcs11js.CKK_RSA,
    label,
    ...(id === undefined ? {} : { id }),
    kind: "RSA public key",
  };
}

/**
 * An RSA key pair kept in a token. The private key is generated there as
 * sensitive and non-extractable, and it decrypts (RSA-OAEP) and signs
 * (PKCS#1 v1.5 over a DigestInfo, or PSS over a digest) in the token.
 * Encryption and verification need only the public key, so they run
 * outside the token.
 */
export class HsmRsaKey {
  readonly label: string;
  /** The CKA_ID that selects the key pair together with its label; absent when the label alone does. */
  readonly id: Buffer | undefined;
  readonly #token: HsmToken;

  private constructor(token: HsmToken, label: string, id: Buffer | undefined) {
    this.#token = token;
    this.label = label;
    this.id = id;
  }

  /**
   * Returns the key pair labelled `label` (and with CKA_ID `id`, when
   * given), or undefined when the token has no such private key.
   */
  static find(token: HsmToken, label: string, id?: Buffer): Promise<HsmRsaKey | undefined> {
    return token.run(
      (context) =>
        findKey(context, privateSelector(label, id)) === undefined
          ? undefined
          : new HsmRsaKey(token, label, id),
      { retryOnLostSession: true },
    );
  }

  /**
   * Generates an RSA key pair with public exponent 65537 in the token, both
   * halves labelled `label` and sharing the CKA_ID `id`, or a random one
   * when absent. Throws `invalid_field` on `bits` for an unsupported size
   * and `already_exists` when an RSA private key with the label (and that
   * ID, when given) exists.
   */
  static generate(
    token: HsmToken,
    label: string,
    bits: RsaModulusBits,
    id?: Buffer,
    usage: RsaKeyUsage = {},
  ): Promise<HsmRsaKey> {
    if (!RSA_MODULUS_BITS.includes(bits)) {
      return Promise.reject(
        invalidField("bits", `bits must be one of ${RSA_MODULUS_BITS.join(", ")}`),
      );
    }
    const decrypt = usage.decrypt ?? true;
    const sign = usage.sign ?? true;
    return token.run(async (context) => {
      if (findKey(context, privateSelector(label, id)) !== undefined) {
        throw new KeywardError(
          "already_exists",
          `the token already has an RSA private key ${describeSelector(privateSelector(label, id))}`,
        );
      }
      const objectId = id ?? randomBytes(16);
      const publicTemplate: pkcs11js.Template = [
        { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PUBLIC_KEY },
        { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_RSA },
        { type: pkcs11js.CKA_MODULUS_BITS, value: bits },
        { type: pkcs11js.CKA_PUBLIC_EXPONENT, value: Buffer.from([0x01, 0x00, 0x01]) },
        { type: pkcs11js.CKA_LABEL, value: label },
        { type: pkcs11js.CKA_ID, value: objectId },
        { type: pkcs11js.CKA_TOKEN, value: true },
        { type: pkcs11js.CKA_PRIVATE, value: false },
        { type: pkcs11js.CKA_ENCRYPT, value: decrypt },
        { type: pkcs11js.CKA_VERIFY, value: sign },
        { type: pkcs11js.CKA_WRAP, value: false },
      ];
      const privateTemplate: pkcs11js.Template = [
        { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY },
        { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_RSA },
        { type: pkcs11js.CKA_LABEL, value: label },
        { type: pkcs11js.CKA_ID, value: objectId },
        { type: pkcs11js.CKA_TOKEN, value: true },
        { type: pkcs11js.CKA_PRIVATE, value: true },
        { type: pkcs11js.CKA_SENSITIVE, value: true },
        { type: pkcs11js.CKA_EXTRACTABLE, value: false },
        { type: pkcs11js.CKA_DECRYPT, value: decrypt },
        { type: pkcs11js.CKA_SIGN, value: sign },
        { type: pkcs11js.CKA_UNWRAP, value: false },
        { type: pkcs11js.CKA_DERIVE, value: false },
      ];
      try {
        await context.module.C_GenerateKeyPairAsync(
          context.session,
          { mechanism: pkcs11js.CKM_RSA_PKCS_KEY_PAIR_GEN },
          publicTemplate,
          privateTemplate,
        );
      } catch (error) {
        throw hsmOperationFailed(`generate the RSA key pair "${label}"`, error);
      }
      return new HsmRsaKey(token, label, id);
    });
  }

  /** Reads the public key (modulus and exponent) from the token. */
  publicKey(): Promise<KeyObject> {
    return this.#token.run(
      (context) => {
        const handle = requireKey(context, publicSelector(this.label, this.id));
        const [modulus, exponent] = readAttributes(context, handle, [
          pkcs11js.CKA_MODULUS,
          pkcs11js.CKA_PUBLIC_EXPONENT,
        ]);
        try {
          return createPublicKey({
            key: {
              kty: "RSA",
              n: (modulus ?? Buffer.alloc(0)).toString("base64url"),
              e: (exponent ?? Buffer.alloc(0)).toString("base64url"),
            },
            format: "jwk",
          });
        } catch (error) {
          throw new KeywardError(
            "hsm_failure",
            `the RSA public key labelled "${this.label}" has an invalid modulus or exponent`,
            { cause: error },
          );
        }
      },
      { retryOnLostSession: true },
    );
  }

  /**
   * Decrypts an RSA-OAEP ciphertext in the token, with `hash` for both the
   * label hash and MGF1. Throws `decryption_failed` when the token rejects
   * the ciphertext. NOTE: SoftHSM 2.6.1 implements OAEP with SHA-1 and an
   * empty label only: it fails other hashes with CKR_ARGUMENTS_BAD
   * (`hsm_failure`) and a label with CKR_GENERAL_ERROR (`decryption_failed`).
   */
  decryptOaep(ciphertext: Uint8Array, hash: RsaTokenHash, label?: Uint8Array): Promise<Buffer> {
    const parameters = HASH_MECHANISMS[hash];
    return this.#token.run(
      async (context) => {
        const handle = requireKey(context, privateSelector(this.label, this.id));
        const [modulus] = readAttributes(context, handle, [pkcs11js.CKA_MODULUS]);
        const mechanism: pkcs11js.Mechanism = {
          mechanism: pkcs11js.CKM_RSA_PKCS_OAEP,
          parameter: {
            type: pkcs11js.CK_PARAMS_RSA_OAEP,
            hashAlg: parameters.hashAlg,
            mgf: parameters.mgf,
            source: CKZ_DATA_SPECIFIED,
            ...(label === undefined || label.length === 0
              ? {}
              : { sourceData: Buffer.from(label) }),
          } as pkcs11js.RsaOAEP,
        };
        return decryptToCopy(
          context,
          mechanism,
          handle,
          Buffer.from(ciphertext),
          modulus?.length ?? ciphertext.length,
          `decrypt with the RSA key "${this.label}"`,
        );
      },
      { retryOnLostSession: true },
    );
  }

  /**
   * Signs an encoded DigestInfo (RFC 8017, section 9.2) with PKCS#1 v1.5
   * padding (CKM_RSA_PKCS). Taking the DigestInfo instead of a message lets
   * Keyward sign with any hash, and sign a digest the caller computed.
   */
  signPkcs1(digestInfo: Uint8Array): Promise<Buffer> {
    return this.#sign({ mechanism: pkcs11js.CKM_RSA_PKCS }, digestInfo);
  }

  /**
   * Signs a message digest with RSASSA-PSS (CKM_RSA_PKCS_PSS), MGF1 with the
   * same hash, and a salt of `saltLength` bytes. Throws `invalid_field` on
   * `salt_length` when the salt does not fit the modulus.
   */
  signPss(digest: Uint8Array, hash: RsaTokenHash, saltLength: number): Promise<Buffer> {
    const parameters = HASH_MECHANISMS[hash];
    if (digest.length !== parameters.bytes) {
      return Promise.reject(
        new KeywardError(
          "invalid_field",
          `a ${hash} digest is ${parameters.bytes} bytes, got ${digest.length}`,
          { field: "input" },
        ),
      );
    }
    return this.#sign(
      {
        mechanism: pkcs11js.CKM_RSA_PKCS_PSS,
        parameter: {
          type: pkcs11js.CK_PARAMS_RSA_PSS,
          hashAlg: parameters.hashAlg,
          mgf: parameters.mgf,
          saltLen: saltLength,
        } as pkcs11js.RsaPSS,
      },
      digest,
    );
  }

  /** Reads whether the token keeps the private key secret. */
  protection(): Promise<KeyProtection> {
    return this.#token.run(
      (context) =>
        readKeyProtection(
          context,
          requireKey(context, privateSelector(this.label, this.id)),
          pkcs11js.CKA_PRIVATE_EXPONENT,
        ),
      { retryOnLostSession: true },
    );
  }

  #sign(mechanism: pkcs11js.Mechanism, input: Uint8Array): Promise<Buffer> {
    return this.#token.run(
      async (context) => {
        const handle = requireKey(context, privateSelector(this.label, this.id));
        const [modulus] = readAttributes(context, handle, [pkcs11js.CKA_MODULUS]);
        try {
          context.module.C_SignInit(context.session, mechanism, handle);
          const signature = await context.module.C_SignAsync(
            context.session,
            Buffer.from(input),
            Buffer.alloc(modulus?.length ?? 512),
          );
          return Buffer.from(signature);
        } catch (error) {
          throw hsmOperationFailed(`sign with the RSA key "${this.label}"`, error);
        }
      },
      { retryOnLostSession: true },
    );
  }
}
