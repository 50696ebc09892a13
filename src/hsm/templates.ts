import { randomBytes } from "node:crypto";
import pkcs11js from "pkcs11js";
import { KeywardError } from "../errors.ts";
import {
  describeSelector,
  findKey,
  type KeyObjectType,
  type KeySelector,
  keySelector,
} from "./objects.ts";
import { hsmOperationFailed } from "./pkcs11-errors.ts";
import type { HsmToken, SessionContext } from "./token.ts";

/** The usage attributes a template may set, by name. */
const USAGE_ATTRIBUTES = {
  encrypt: pkcs11js.CKA_ENCRYPT,
  decrypt: pkcs11js.CKA_DECRYPT,
  sign: pkcs11js.CKA_SIGN,
  verify: pkcs11js.CKA_VERIFY,
  wrap: pkcs11js.CKA_WRAP,
  unwrap: pkcs11js.CKA_UNWRAP,
  derive: pkcs11js.CKA_DERIVE,
} as const;

/**
 * Usage attributes of a new key object (CKA_ENCRYPT for `encrypt`, and so
 * on), listed in the template in the order of this object's keys. An
 * attribute left out gets the token's default.
 */
export type KeyUsage = Partial<Record<keyof typeof USAGE_ATTRIBUTES, boolean>>;

/** One key object to generate, with its type, the attributes of its algorithm, and its usage. */
export interface KeyObjectSpec {
  type: KeyObjectType;
  /** Attributes such as the size or curve, listed after CKA_CLASS and CKA_KEY_TYPE. */
  attributes?: pkcs11js.Template;
  usage: KeyUsage;
}

/**
 * Builds the template of a key object Keyward generates: a token object
 * (it survives the session) labelled `label` with CKA_ID `id`. A public key
 * is readable without login (CKA_PRIVATE false). A private or secret key is
 * usable only after login, and it is sensitive and non-extractable, so its
 * value never leaves the token.
 */
export function keyTemplate(spec: KeyObjectSpec, label: string, id: Buffer): pkcs11js.Template {
  const isPublic = spec.type.objectClass === pkcs11js.CKO_PUBLIC_KEY;
  const protection: pkcs11js.Template = isPublic
    ? []
    : [
        { type: pkcs11js.CKA_SENSITIVE, value: true },
        { type: pkcs11js.CKA_EXTRACTABLE, value: false },
      ];
  const usage = Object.entries(spec.usage).map(([name, value]) => ({
    type: USAGE_ATTRIBUTES[name as keyof KeyUsage],
    value,
  }));
  return [
    { type: pkcs11js.CKA_CLASS, value: spec.type.objectClass },
    { type: pkcs11js.CKA_KEY_TYPE, value: spec.type.keyType },
    ...(spec.attributes ?? []),
    { type: pkcs11js.CKA_LABEL, value: label },
    { type: pkcs11js.CKA_ID, value: id },
    { type: pkcs11js.CKA_TOKEN, value: true },
    { type: pkcs11js.CKA_PRIVATE, value: !isPublic },
    ...protection,
    ...usage,
  ];
}

/** The fields that `generateKeyPair` and `generateSecretKey` share. */
interface GenerateRequest {
  /** The CKM_*_GEN mechanism. */
  mechanism: number;
  /** Names what is generated in the error message, such as "RSA key pair". */
  name: string;
  label: string;
  /** The CKA_ID of the new objects; random when absent. */
  id?: Buffer;
}

/** The request of `generateKeyPair`. */
export interface KeyPairRequest extends GenerateRequest {
  publicKey: KeyObjectSpec;
  privateKey: KeyObjectSpec;
}

/** The request of `generateSecretKey`. */
export interface SecretKeyRequest extends GenerateRequest {
  key: KeyObjectSpec;
}

/**
 * Generates a key pair in the token, both halves labelled `label` and
 * sharing the CKA_ID `id`, or a random one when absent. Throws
 * `already_exists` when a private key of this type with the label (and that
 * ID, when given) exists, and `hsm_failure` when the token fails the call.
 * Not retried after a lost session, because the first attempt may have
 * created the pair.
 */
export function generateKeyPair(token: HsmToken, request: KeyPairRequest): Promise<void> {
  return token.run(async (context) => {
    rejectExistingKey(context, keySelector(request.privateKey.type, request.label, request.id));
    const id = request.id ?? randomBytes(16);
    const publicTemplate = keyTemplate(request.publicKey, request.label, id);
    const privateTemplate = keyTemplate(request.privateKey, request.label, id);
    try {
      await context.module.C_GenerateKeyPairAsync(
        context.session,
        { mechanism: request.mechanism },
        publicTemplate,
        privateTemplate,
      );
    } catch (error) {
      throw hsmOperationFailed(`generate the ${request.name} "${request.label}"`, error);
    }
  });
}

/**
 * Generates a secret key in the token, labelled `label` with the CKA_ID
 * `id`, or a random one when absent. Throws like `generateKeyPair`, and is
 * likewise not retried.
 */
export function generateSecretKey(token: HsmToken, request: SecretKeyRequest): Promise<void> {
  return token.run(async (context) => {
    rejectExistingKey(context, keySelector(request.key.type, request.label, request.id));
    const template = keyTemplate(request.key, request.label, request.id ?? randomBytes(16));
    try {
      await context.module.C_GenerateKeyAsync(
        context.session,
        { mechanism: request.mechanism },
        template,
      );
    } catch (error) {
      throw hsmOperationFailed(`generate the ${request.name} "${request.label}"`, error);
    }
  });
}

/** Throws `already_exists` when the token has a key matching `selector`. */
function rejectExistingKey(context: SessionContext, selector: KeySelector): void {
  if (findKey(context, selector) === undefined) return;
  // NOTE: "an" fits the kinds in use ("AES key", "EC private key", "RSA private key").
  throw new KeywardError(
    "already_exists",
    `the token already has an ${selector.kind} ${describeSelector(selector)}`,
  );
}
