import pkcs11js from "pkcs11js";
import { KeywardError } from "../errors.ts";
import { decryptionError, hsmOperationFailed, returnValueOf } from "./pkcs11-errors.ts";
import type { HsmToken, SessionContext } from "./token.ts";

/** Objects fetched per `C_FindObjects` call. */
const FIND_BATCH = 16;

/** Returns the handles of every object matching `template`. */
export function findObjects(context: SessionContext, template: pkcs11js.Template): Buffer[] {
  const { module, session } = context;
  try {
    module.C_FindObjectsInit(session, template);
  } catch (error) {
    throw hsmOperationFailed("search for objects", error);
  }
  const handles: Buffer[] = [];
  try {
    for (;;) {
      const batch = module.C_FindObjects(session, FIND_BATCH);
      handles.push(...batch);
      if (batch.length < FIND_BATCH) break;
    }
  } catch (error) {
    throw hsmOperationFailed("search for objects", error);
  } finally {
    try {
      module.C_FindObjectsFinal(session);
    } catch {
      // The search is over either way; a failure here leaves nothing to undo.
    }
  }
  return handles;
}

/** The class, key type, label and optional CKA_ID that identify a key object. */
export interface KeySelector {
  objectClass: number;
  keyType: number;
  label: string;
  /** CKA_ID; when set, only the object with this ID and label matches. */
  id?: Buffer;
  /** Names the kind of key in messages, such as "AES key". */
  kind: string;
}

/** The class, key type and message name of a kind of key object, which is a `KeySelector` without label and ID. */
export type KeyObjectType = Omit<KeySelector, "label" | "id">;

/**
 * Returns the object types of the two halves of a key pair of `keyType`
 * (CKK_RSA, CKK_EC), named "`algorithm` private key" and "`algorithm`
 * public key" in messages.
 */
export function keyPairTypes(
  keyType: number,
  algorithm: string,
): { privateKey: KeyObjectType; publicKey: KeyObjectType } {
  return {
    privateKey: {
      objectClass: pkcs11js.CKO_PRIVATE_KEY,
      keyType,
      kind: `${algorithm} private key`,
    },
    publicKey: { objectClass: pkcs11js.CKO_PUBLIC_KEY, keyType, kind: `${algorithm} public key` },
  };
}

/** Builds the selector of the `type` object labelled `label`, and with CKA_ID `id` when given. */
export function keySelector(type: KeyObjectType, label: string, id?: Buffer): KeySelector {
  return { ...type, label, ...(id === undefined ? {} : { id }) };
}

/** Describes the selected object in messages: its label, and its CKA_ID in hex when the selector has one. */
export function describeSelector(selector: Pick<KeySelector, "label" | "id">): string {
  const id = selector.id === undefined ? "" : ` with ID ${selector.id.toString("hex")}`;
  return `labelled "${selector.label}"${id}`;
}

/**
 * Returns the handle of the one key matching `selector`, or undefined when
 * there is none. Throws `hsm_failure` when several keys match, because
 * using either could pick the wrong one.
 */
export function findKey(context: SessionContext, selector: KeySelector): Buffer | undefined {
  const template: pkcs11js.Template = [
    { type: pkcs11js.CKA_CLASS, value: selector.objectClass },
    { type: pkcs11js.CKA_KEY_TYPE, value: selector.keyType },
    { type: pkcs11js.CKA_LABEL, value: selector.label },
  ];
  if (selector.id !== undefined) template.push({ type: pkcs11js.CKA_ID, value: selector.id });
  const handles = findObjects(context, template);
  if (handles.length > 1) {
    throw new KeywardError(
      "hsm_failure",
      `the token has ${handles.length} ${selector.kind}s ${describeSelector(selector)}: keep one and delete or relabel the others`,
    );
  }
  return handles[0];
}

/**
 * Returns whether the token has the one key matching `selector`, with the
 * errors of `findKey`. Safe to repeat, so it is retried once after a lost
 * session.
 */
export function hasKey(token: HsmToken, selector: KeySelector): Promise<boolean> {
  return token.run((context) => findKey(context, selector) !== undefined, {
    retryOnLostSession: true,
  });
}

/** Like `findKey`, but throws `hsm_key_not_found` when the key is missing. */
export function requireKey(context: SessionContext, selector: KeySelector): Buffer {
  const handle = findKey(context, selector);
  if (handle === undefined) {
    throw new KeywardError(
      "hsm_key_not_found",
      `the token has no ${selector.kind} ${describeSelector(selector)}: check the key label, or whether the key was deleted from the HSM`,
    );
  }
  return handle;
}

/**
 * Destroys every object with this label and CKA_ID, whatever its class
 * (the secret key, or both halves of a key pair), and returns how many
 * there were. Finding none is not an error, so a repeated call is harmless.
 */
export function destroyObjects(context: SessionContext, label: string, id: Buffer): number {
  const handles = findObjects(context, [
    { type: pkcs11js.CKA_LABEL, value: label },
    { type: pkcs11js.CKA_ID, value: id },
  ]);
  for (const handle of handles) {
    try {
      context.module.C_DestroyObject(context.session, handle);
    } catch (error) {
      throw hsmOperationFailed(`destroy the object ${describeSelector({ label, id })}`, error);
    }
  }
  return handles.length;
}

/**
 * Destroys the key objects with this label and CKA_ID in the token (see
 * `destroyObjects`) and returns how many there were. Safe to repeat, so it
 * is retried once after a lost session.
 */
export function destroyKeyObjects(token: HsmToken, label: string, id: Buffer): Promise<number> {
  return token.run((context) => destroyObjects(context, label, id), { retryOnLostSession: true });
}

/** Reads attributes of one object, as buffers in the order asked. */
export function readAttributes(context: SessionContext, handle: Buffer, types: number[]): Buffer[] {
  try {
    const result = context.module.C_GetAttributeValue(
      context.session,
      handle,
      types.map((type) => ({ type })),
    );
    return result.map((attribute) => attribute.value as Buffer);
  } catch (error) {
    throw hsmOperationFailed("read key attributes", error);
  }
}

/** The protection a token gives a key's secret value. */
export interface KeyProtection {
  /** CKA_SENSITIVE: the token never reveals the value in plaintext. */
  sensitive: boolean;
  /** CKA_EXTRACTABLE: the value may leave the token wrapped by another key. */
  extractable: boolean;
  /** True when the token returned the secret value on request, which it must refuse for a sensitive key. */
  valueReadable: boolean;
}

/**
 * Reads the protection of a secret or private key. `valueAttribute` is the
 * attribute that contains the secret (CKA_VALUE, or CKA_PRIVATE_EXPONENT for
 * RSA). The token is asked for it, and any bytes it returns are zeroed at once.
 */
export function readKeyProtection(
  context: SessionContext,
  handle: Buffer,
  valueAttribute: number,
): KeyProtection {
  const [sensitive, extractable] = readAttributes(context, handle, [
    pkcs11js.CKA_SENSITIVE,
    pkcs11js.CKA_EXTRACTABLE,
  ]);
  let valueReadable = false;
  try {
    const [value] = context.module.C_GetAttributeValue(context.session, handle, [
      { type: valueAttribute },
    ]);
    const bytes = value?.value;
    valueReadable = Buffer.isBuffer(bytes) && bytes.length > 0;
    if (Buffer.isBuffer(bytes)) bytes.fill(0);
  } catch (error) {
    const code = returnValueOf(error);
    if (code !== pkcs11js.CKR_ATTRIBUTE_SENSITIVE && code !== pkcs11js.CKR_ATTRIBUTE_TYPE_INVALID) {
      throw hsmOperationFailed("read key attributes", error);
    }
  }
  return {
    sensitive: readBoolean(sensitive),
    extractable: readBoolean(extractable),
    valueReadable,
  };
}

/** Decodes a CK_BBOOL attribute value. */
export function readBoolean(value: Buffer | undefined): boolean {
  return value !== undefined && value.length > 0 && value[0] !== 0;
}

/**
 * Decrypts `ciphertext` with the key `handle` under `mechanism` into a
 * scratch buffer of `outputLength` bytes and returns a copy of the
 * plaintext. The scratch buffer is zeroed whether or not decryption
 * succeeds. Throws what `decryptionError` makes of a failure, naming
 * `operation`.
 */
export async function decryptToCopy(
  context: SessionContext,
  mechanism: pkcs11js.Mechanism,
  handle: Buffer,
  ciphertext: Buffer,
  outputLength: number,
  operation: string,
): Promise<Buffer> {
  const output = Buffer.alloc(outputLength);
  try {
    context.module.C_DecryptInit(context.session, mechanism, handle);
    const plaintext = await context.module.C_DecryptAsync(context.session, ciphertext, output);
    return Buffer.from(plaintext);
  } catch (error) {
    throw decryptionError(operation, error);
  } finally {
    output.fill(0);
  }
}
