import { createPublicKey, type KeyObject, randomBytes } from "node:crypto";
import pkcs11js from "pkcs11js";
import { invalidField, KeywardError } from "../errors.ts";
import {
  decryptToCopy,
  findKey,
  type KeyProtection,
  type KeySelector,
  readAttributes,
  readKeyProtection,
  requireKey,
} from "./objects.ts";
import { hsmOperationFailed } from "./pkcs11-errors.ts";
import type { HsmToken } from "./token.ts";

/** RSA modulus sizes Keyward generates, in bits. */
export const RSA_MODULUS_BITS = [2048, 3072, 4096] as const;
export type RsaModulusBits = (typeof RSA_MODULUS_BITS)[number];

/** OAEP hash functions, used for both the label hash and MGF1. */
export type OaepHash = "sha1" | "sha256" | "sha384" | "sha512";

/** CK_RSA_PKCS_OAEP_PARAMS.source: the label is given in sourceData (PKCS#11 2.40, CKZ_DATA_SPECIFIED). */
const CKZ_DATA_SPECIFIED = 1;

const OAEP_MECHANISMS: Record<OaepHash, { hashAlg: number; mgf: number }> = {
  sha1: { hashAlg: pkcs11js.CKM_SHA_1, mgf: pkcs11js.CKG_MGF1_SHA1 },
  sha256: { hashAlg: pkcs11js.CKM_SHA256, mgf: pkcs11js.CKG_MGF1_SHA256 },
  sha384: { hashAlg: pkcs11js.CKM_SHA384, mgf: pkcs11js.CKG_MGF1_SHA384 },
  sha512: { hashAlg: pkcs11js.CKM_SHA512, mgf: pkcs11js.CKG_MGF1_SHA512 },
};

function privateSelector(label: string): KeySelector {
  return {
    objectClass: pkcs11js.CKO_PRIVATE_KEY,
    keyType: pkcs11js.CKK_RSA,
    label,
    kind: "RSA private key",
  };
}

function publicSelector(label: string): KeySelector {
  return {
    objectClass: pkcs11js.CKO_PUBLIC_KEY,
    keyType: pkcs11js.CKK_RSA,
    label,
    kind: "RSA public key",
  };
}

/**
 * An RSA key pair kept in a token whose private key only decrypts, with
 * RSA-OAEP. The private key is generated as sensitive and non-extractable;
 * encryption happens outside the token with the public key.
 */
export class HsmRsaKey {
  readonly label: string;
  readonly #token: HsmToken;

  private constructor(token: HsmToken, label: string) {
    this.#token = token;
    this.label = label;
  }

  /** Returns the key pair labelled `label`, or undefined when the token has no such private key. */
  static find(token: HsmToken, label: string): Promise<HsmRsaKey | undefined> {
    return token.run(
      (context) =>
        findKey(context, privateSelector(label)) === undefined
          ? undefined
          : new HsmRsaKey(token, label),
      { retryOnLostSession: true },
    );
  }

  /**
   * Generates an RSA key pair with public exponent 65537 in the token.
   * Throws `invalid_field` on `bits` for an unsupported size and
   * `already_exists` when an RSA private key with the label exists.
   */
  static generate(token: HsmToken, label: string, bits: RsaModulusBits): Promise<HsmRsaKey> {
    if (!RSA_MODULUS_BITS.includes(bits)) {
      return Promise.reject(
        invalidField("bits", `bits must be one of ${RSA_MODULUS_BITS.join(", ")}`),
      );
    }
    return token.run(async (context) => {
      if (findKey(context, privateSelector(label)) !== undefined) {
        throw new KeywardError(
          "already_exists",
          `the token already has an RSA private key labelled "${label}"`,
        );
      }
      const id = randomBytes(16);
      const publicTemplate: pkcs11js.Template = [
        { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PUBLIC_KEY },
        { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_RSA },
        { type: pkcs11js.CKA_MODULUS_BITS, value: bits },
        { type: pkcs11js.CKA_PUBLIC_EXPONENT, value: Buffer.from([0x01, 0x00, 0x01]) },
        { type: pkcs11js.CKA_LABEL, value: label },
        { type: pkcs11js.CKA_ID, value: id },
        { type: pkcs11js.CKA_TOKEN, value: true },
        { type: pkcs11js.CKA_PRIVATE, value: false },
        { type: pkcs11js.CKA_ENCRYPT, value: true },
      ];
      const privateTemplate: pkcs11js.Template = [
        { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY },
        { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_RSA },
        { type: pkcs11js.CKA_LABEL, value: label },
        { type: pkcs11js.CKA_ID, value: id },
        { type: pkcs11js.CKA_TOKEN, value: true },
        { type: pkcs11js.CKA_PRIVATE, value: true },
        { type: pkcs11js.CKA_SENSITIVE, value: true },
        { type: pkcs11js.CKA_EXTRACTABLE, value: false },
        { type: pkcs11js.CKA_DECRYPT, value: true },
        { type: pkcs11js.CKA_SIGN, value: false },
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
      return new HsmRsaKey(token, label);
    });
  }

  /** Reads the public key (modulus and exponent) from the token. */
  publicKey(): Promise<KeyObject> {
    return this.#token.run(
      (context) => {
        const handle = requireKey(context, publicSelector(this.label));
        const [modulus, exponent] = readAttributes(context, handle, [
          pkcs11js.CKA_MODULUS,
          pkcs11js.CKA_PUBLIC_EXPONENT,
        ]);
        return createPublicKey({
          key: {
            kty: "RSA",
            n: (modulus ?? Buffer.alloc(0)).toString("base64url"),
            e: (exponent ?? Buffer.alloc(0)).toString("base64url"),
          },
          format: "jwk",
        });
      },
      { retryOnLostSession: true },
    );
  }

  /**
   * Decrypts an RSA-OAEP ciphertext in the token, with `hash` for both the
   * label hash and MGF1. Throws `decryption_failed` when the token rejects
   * the ciphertext. NOTE: SoftHSM 2.6.1 implements OAEP with SHA-1 only and
   * fails any other hash with CKR_ARGUMENTS_BAD (`hsm_failure`).
   */
  decryptOaep(ciphertext: Uint8Array, hash: OaepHash, label?: Uint8Array): Promise<Buffer> {
    const parameters = OAEP_MECHANISMS[hash];
    return this.#token.run(
      async (context) => {
        const handle = requireKey(context, privateSelector(this.label));
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

  /** Reads whether the token keeps the private key secret. */
  protection(): Promise<KeyProtection> {
    return this.#token.run(
      (context) =>
        readKeyProtection(
          context,
          requireKey(context, privateSelector(this.label)),
          pkcs11js.CKA_PRIVATE_EXPONENT,
        ),
      { retryOnLostSession: true },
    );
  }
}
