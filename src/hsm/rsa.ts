import { createPublicKey, type KeyObject } from "node:crypto";
import pkcs11js from "pkcs11js";
import { invalidField, KeywardError } from "../errors.ts";
import { HsmKeyObject } from "./key-object.ts";
import {
  decryptToCopy,
  hasKey,
  type KeyProtection,
  keyPairTypes,
  keySelector,
  readAttributes,
} from "./objects.ts";
import { emptyInput, hsmOperationFailed } from "./pkcs11-errors.ts";
import { generateKeyPair } from "./templates.ts";
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

/** The uses allowed for the private key of a new pair. Both default to true. */
export interface RsaKeyUsage {
  decrypt?: boolean;
  sign?: boolean;
}

const { privateKey: PRIVATE_KEY, publicKey: PUBLIC_KEY } = keyPairTypes(pkcs11js.CKK_RSA, "RSA");

/**
 * An RSA key pair kept in a token. The private key is generated there as
 * sensitive and non-extractable, and it decrypts (RSA-OAEP) and signs
 * (PKCS#1 v1.5 over a DigestInfo, or PSS over a digest) in the token.
 * Encryption and verification need only the public key, so they run
 * outside the token.
 */
export class HsmRsaKey extends HsmKeyObject {
  /**
   * Returns the key pair labelled `label` (and with CKA_ID `id`, when
   * given), or undefined when the token has no such private key.
   */
  static async find(token: HsmToken, label: string, id?: Buffer): Promise<HsmRsaKey | undefined> {
    const found = await hasKey(token, keySelector(PRIVATE_KEY, label, id));
    return found ? new HsmRsaKey(token, label, id) : undefined;
  }

  /**
   * Generates an RSA key pair with public exponent 65537 in the token, both
   * halves labelled `label` and sharing the CKA_ID `id`, or a random one
   * when absent. Throws `invalid_field` on `bits` for an unsupported size
   * and `already_exists` when an RSA private key with the label (and that
   * ID, when given) exists.
   */
  static async generate(
    token: HsmToken,
    label: string,
    bits: RsaModulusBits,
    id?: Buffer,
    usage: RsaKeyUsage = {},
  ): Promise<HsmRsaKey> {
    if (!RSA_MODULUS_BITS.includes(bits)) {
      throw invalidField("bits", `bits must be one of ${RSA_MODULUS_BITS.join(", ")}`);
    }
    const decrypt = usage.decrypt ?? true;
    const sign = usage.sign ?? true;
    await generateKeyPair(token, {
      mechanism: pkcs11js.CKM_RSA_PKCS_KEY_PAIR_GEN,
      name: "RSA key pair",
      label,
      id,
      publicKey: {
        type: PUBLIC_KEY,
        attributes: [
          { type: pkcs11js.CKA_MODULUS_BITS, value: bits },
          { type: pkcs11js.CKA_PUBLIC_EXPONENT, value: Buffer.from([0x01, 0x00, 0x01]) },
        ],
        usage: { encrypt: decrypt, verify: sign, wrap: false },
      },
      privateKey: {
        type: PRIVATE_KEY,
        usage: { decrypt, sign, unwrap: false, derive: false },
      },
    });
    return new HsmRsaKey(token, label, id);
  }

  /** Reads the public key (modulus and exponent) from the token. */
  publicKey(): Promise<KeyObject> {
    return this.withObject(PUBLIC_KEY, (context, handle) => {
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
    });
  }

  /**
   * Decrypts an RSA-OAEP ciphertext in the token, with `hash` for both the
   * label hash and MGF1. Throws `decryption_failed` when the token rejects
   * the ciphertext. NOTE: SoftHSM 2.6.1 implements OAEP with SHA-1 and an
   * empty label only: it fails other hashes with CKR_ARGUMENTS_BAD
   * (`hsm_failure`) and a label with CKR_GENERAL_ERROR (`decryption_failed`).
   */
  decryptOaep(ciphertext: Uint8Array, hash: RsaTokenHash, label?: Uint8Array): Promise<Buffer> {
    if (ciphertext.length === 0) return Promise.reject(emptyInput("ciphertext"));
    const parameters = HASH_MECHANISMS[hash];
    return this.withObject(PRIVATE_KEY, async (context, handle) => {
      const [modulus] = readAttributes(context, handle, [pkcs11js.CKA_MODULUS]);
      const mechanism: pkcs11js.Mechanism = {
        mechanism: pkcs11js.CKM_RSA_PKCS_OAEP,
        parameter: {
          type: pkcs11js.CK_PARAMS_RSA_OAEP,
          hashAlg: parameters.hashAlg,
          mgf: parameters.mgf,
          source: CKZ_DATA_SPECIFIED,
          ...(label === undefined || label.length === 0 ? {} : { sourceData: Buffer.from(label) }),
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
    });
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
    return this.readProtection(PRIVATE_KEY, pkcs11js.CKA_PRIVATE_EXPONENT);
  }

  #sign(mechanism: pkcs11js.Mechanism, input: Uint8Array): Promise<Buffer> {
    return this.withObject(PRIVATE_KEY, async (context, handle) => {
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
    });
  }
}
