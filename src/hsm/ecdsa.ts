import { createHash, createPublicKey, type KeyObject } from "node:crypto";
import { p256 } from "@noble/curves/nist.js";
import pkcs11js from "pkcs11js";
import { KeywardError } from "../errors.ts";
import { HsmKeyObject } from "./key-object.ts";
import {
  hasKey,
  type KeyProtection,
  keyPairTypes,
  keySelector,
  readAttributes,
} from "./objects.ts";
import { hsmOperationFailed } from "./pkcs11-errors.ts";
import { generateKeyPair } from "./templates.ts";
import type { HsmToken } from "./token.ts";

/** DER encoding of the P-256 (prime256v1) curve's object identifier 1.2.840.10045.3.1.7. */
const P256_OID = Buffer.from("06082a8648ce3d030107", "hex");
/** Bytes of one P-256 coordinate and of r and s. */
const P256_FIELD_BYTES = 32;
/** An uncompressed P-256 point: 0x04 || X || Y. */
const P256_POINT_BYTES = 1 + 2 * P256_FIELD_BYTES;

const { privateKey: PRIVATE_KEY, publicKey: PUBLIC_KEY } = keyPairTypes(pkcs11js.CKK_EC, "EC");

/**
 * An ECDSA P-256 key pair kept in a token. The private key is generated
 * there as sensitive and non-extractable, and it only signs. The public key
 * is a token object too, so it can be read back at any time.
 *
 * Signing hashes the message in Keyward and has the token sign the digest
 * (CKM_ECDSA), which every token with EC support offers.
 */
export class HsmEcdsaKey extends HsmKeyObject {
  /**
   * Returns the key pair labelled `label` (and with CKA_ID `id`, when
   * given), or undefined when the token has no such private key.
   */
  static async find(token: HsmToken, label: string, id?: Buffer): Promise<HsmEcdsaKey | undefined> {
    const found = await hasKey(token, keySelector(PRIVATE_KEY, label, id));
    return found ? new HsmEcdsaKey(token, label, id) : undefined;
  }

  /**
   * Generates a P-256 key pair in the token, both halves labelled `label`
   * and sharing the CKA_ID `id`, or a random one when absent. Throws
   * `already_exists` when an EC private key with the label (and that ID,
   * when given) exists.
   */
  static async generate(token: HsmToken, label: string, id?: Buffer): Promise<HsmEcdsaKey> {
    await generateKeyPair(token, {
      mechanism: pkcs11js.CKM_EC_KEY_PAIR_GEN,
      name: "EC key pair",
      label,
      id,
      publicKey: {
        type: PUBLIC_KEY,
        attributes: [{ type: pkcs11js.CKA_EC_PARAMS, value: P256_OID }],
        usage: { verify: true, encrypt: false, wrap: false },
      },
      // Set explicitly, because SoftHSM 2.6.1 defaults CKA_DECRYPT and CKA_UNWRAP to true.
      privateKey: {
        type: PRIVATE_KEY,
        usage: { sign: true, decrypt: false, unwrap: false, derive: false },
      },
    });
    return new HsmEcdsaKey(token, label, id);
  }

  /** Reads the public key from the token. Throws `hsm_failure` when it is not on P-256. */
  publicKey(): Promise<KeyObject> {
    return this.withObject(PUBLIC_KEY, (context, handle) => {
      const [params, point] = readAttributes(context, handle, [
        pkcs11js.CKA_EC_PARAMS,
        pkcs11js.CKA_EC_POINT,
      ]);
      if (params === undefined || !params.equals(P256_OID)) {
        throw new KeywardError(
          "hsm_failure",
          `the EC key labelled "${this.label}" is not on the P-256 curve`,
        );
      }
      return p256PublicKey(point ?? Buffer.alloc(0), this.label);
    });
  }

  /**
   * Signs `message` with ECDSA over its SHA-256 digest and returns the
   * signature DER-encoded (`Ecdsa-Sig-Value`, RFC 3279), as X.509 and TLS
   * use it. The token returns r || s, which is converted here.
   */
  async sign(message: Uint8Array): Promise<Buffer> {
    const digest = createHash("sha256").update(message).digest();
    return rawSignatureToDer(await this.signDigest(digest));
  }

  /**
   * Signs a message digest with CKM_ECDSA and returns the raw signature,
   * r || s of 32 bytes each (IEEE P1363). A digest longer than 32 bytes is
   * cut to its leftmost 32 bytes here, because some tokens reject longer
   * input, and ECDSA itself uses only as many leftmost bits of a hash as
   * the curve order has (256 for P-256). Throws `hsm_failure` when the
   * token returns anything but a valid signature.
   */
  signDigest(digest: Uint8Array): Promise<Buffer> {
    const input = Buffer.from(digest.subarray(0, P256_FIELD_BYTES));
    return this.withObject(PRIVATE_KEY, async (context, handle) => {
      let raw: Buffer;
      try {
        context.module.C_SignInit(context.session, { mechanism: pkcs11js.CKM_ECDSA }, handle);
        raw = await context.module.C_SignAsync(
          context.session,
          input,
          Buffer.alloc(2 * P256_FIELD_BYTES),
        );
      } catch (error) {
        throw hsmOperationFailed(`sign with the EC key "${this.label}"`, error);
      }
      return checkRawSignature(raw);
    });
  }

  /** Reads whether the token keeps the private key secret. */
  protection(): Promise<KeyProtection> {
    return this.readProtection(PRIVATE_KEY, pkcs11js.CKA_VALUE);
  }
}

/**
 * Converts a raw P-256 signature (r || s, 32 bytes each, as CKM_ECDSA
 * returns it) to DER. Throws `hsm_failure` when r or s is out of range.
 */
export function rawSignatureToDer(raw: Uint8Array): Buffer {
  try {
    return Buffer.from(p256.Signature.fromBytes(raw, "compact").toBytes("der"));
  } catch (error) {
    throw malformedSignature(raw, error);
  }
}

/** Returns `raw` when it is a P-256 signature r || s with r and s in range; throws `hsm_failure` otherwise. */
function checkRawSignature(raw: Buffer): Buffer {
  try {
    p256.Signature.fromBytes(raw, "compact");
  } catch (error) {
    throw malformedSignature(raw, error);
  }
  return Buffer.from(raw);
}

function malformedSignature(raw: Uint8Array, cause: unknown): KeywardError {
  return new KeywardError(
    "hsm_failure",
    `the HSM returned a malformed ECDSA signature of ${raw.length} bytes`,
    { cause },
  );
}

/**
 * Builds a public key from CKA_EC_POINT. PKCS#11 stores the point as a DER
 * OCTET STRING (0x04 0x41 || point), but some tokens return the bare point,
 * so both are accepted.
 */
function p256PublicKey(value: Buffer, label: string): KeyObject {
  let point = value;
  if (value.length === P256_POINT_BYTES + 2 && value[0] === 0x04 && value[1] === P256_POINT_BYTES) {
    point = value.subarray(2);
  }
  if (point.length !== P256_POINT_BYTES || point[0] !== 0x04) {
    throw new KeywardError(
      "hsm_failure",
      `the EC public key labelled "${label}" has an unexpected point encoding of ${value.length} bytes`,
    );
  }
  return createPublicKey({
    key: {
      kty: "EC",
      crv: "P-256",
      x: point.subarray(1, 1 + P256_FIELD_BYTES).toString("base64url"),
      y: point.subarray(1 + P256_FIELD_BYTES).toString("base64url"),
    },
    format: "jwk",
  });
}
