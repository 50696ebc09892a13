/**
 * KMIP objects whose key is generated in the HSM: a Create or Create Key
 * Pair whose attributes set Extractable to false, on a server started with
 * the `hsm_pkcs11_*` settings. The key is then a sensitive, non-extractable
 * object in the token, labelled `keyward/kmip/<unique identifier>`, and the
 * KMIP object record keeps only its label and CKA_ID (`hsmObject`), and for
 * a private key the public key.
 *
 * This file loads no native code: the PKCS#11 part (hsm-keys.ts) is
 * imported on first use, so a server without an HSM never loads the addon.
 */
import { isKeywardError } from "../../errors.ts";
import type { HsmToken } from "../../hsm/token.ts";
import type { KmipAttribute } from "./attributes.ts";
import type { OperationContext } from "./context.ts";
import { KmipOperationError } from "./errors.ts";
import type { KmipHsmKeys } from "./hsm-keys.ts";
import type { KmipHsmObjectRef, KmipObject } from "./object-store.ts";
import { scalarAttribute } from "./objects.ts";

/** Returns the CKA_LABEL of the token objects of the KMIP object `uid`. */
export function hsmLabel(uid: string): string {
  return `keyward/kmip/${uid}`;
}

function booleanAttribute(attributes: readonly KmipAttribute[], name: string): boolean | undefined {
  const found = attributes.find((attribute) => attribute.name === name);
  return found?.value.type === "Boolean" ? found.value.value : undefined;
}

/**
 * Returns true when a new key's attributes ask for a key that never leaves
 * the server (Extractable false) and the server has an HSM to generate it
 * in. Sensitive true alone does not qualify, because KMIP lets a sensitive
 * key leave the server wrapped by another key, which a non-extractable
 * token object cannot.
 */
export function generatesInHsm(
  context: OperationContext,
  attributes: readonly KmipAttribute[],
): boolean {
  return context.hsm !== undefined && booleanAttribute(attributes, "Extractable") === false;
}

/**
 * Returns the attributes of a key generated in the HSM: the request's,
 * with Sensitive true added when absent. Throws Invalid Field for
 * Sensitive false, because the token keeps the key sensitive.
 */
export function hsmKeyAttributes(attributes: readonly KmipAttribute[]): KmipAttribute[] {
  const sensitive = booleanAttribute(attributes, "Sensitive");
  if (sensitive === false) {
    throw new KmipOperationError(
      "InvalidField",
      "a key generated in the HSM (Extractable false) is always sensitive; drop Sensitive false",
    );
  }
  if (sensitive === true) return [...attributes];
  return [...attributes, scalarAttribute("Sensitive", "Boolean", true)];
}

/**
 * Returns a Re-key request's attributes for a replacement generated in the
 * HSM, as `hsmKeyAttributes` does. Throws Invalid Field for Extractable true
 * too, because the replacement is generated in the token like the old key.
 */
export function hsmReplacementAttributes(attributes: readonly KmipAttribute[]): KmipAttribute[] {
  const checked = hsmKeyAttributes(attributes);
  if (booleanAttribute(attributes, "Extractable") === true) {
    throw new KmipOperationError(
      "InvalidField",
      "invalid Extractable: the replacement of a key generated in the HSM is generated there too and cannot be Extractable",
    );
  }
  return checked;
}

const loaded = new WeakMap<HsmToken, Promise<KmipHsmKeys>>();

/**
 * Returns the PKCS#11 side of the request's HSM, loading it on first use.
 * Throws General Failure naming the missing settings when the server has
 * no HSM, for an object generated in one earlier.
 */
export function hsmKeys(context: OperationContext): Promise<KmipHsmKeys> {
  const token = context.hsm;
  if (token === undefined) {
    return Promise.reject(
      new KmipOperationError(
        "GeneralFailure",
        "the object's key is held in an HSM, but this server has none configured: start it with the hsm_pkcs11_* settings of the token the key was created in",
      ),
    );
  }
  let keys = loaded.get(token);
  if (keys === undefined) {
    keys = import("./hsm-keys.ts").then((module) => new module.KmipHsmKeys(token));
    keys.catch(() => loaded.delete(token));
    loaded.set(token, keys);
  }
  return keys;
}

/** Returns the object's HSM reference, or undefined for a key Keyward holds. */
export function hsmObjectOf(object: KmipObject): KmipHsmObjectRef | undefined {
  return object.hsmObject;
}

/**
 * Runs an HSM call and turns Keyward's HSM errors into KMIP errors: a
 * rejected ciphertext becomes Cryptographic Failure, a missing token
 * object Item Not Found, and a failing token General Failure, each with
 * the HSM's message, which names labels and PKCS#11 return values only.
 */
export async function inHsm<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (!isKeywardError(error) || error instanceof KmipOperationError) throw error;
    if (error.code === "decryption_failed") {
      throw new KmipOperationError("CryptographicFailure", "the cryptographic operation failed");
    }
    if (error.code === "invalid_field") throw new KmipOperationError("InvalidField", error.message);
    if (error.code === "hsm_key_not_found") {
      throw new KmipOperationError("ItemNotFound", error.message);
    }
    if (error.code === "hsm_failure" || error.code === "hsm_unavailable") {
      throw new KmipOperationError("GeneralFailure", error.message);
    }
    throw error;
  }
}
