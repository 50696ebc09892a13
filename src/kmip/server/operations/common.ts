import type { KmipItem, StructureItem } from "../../item.ts";
import { maskForTag } from "../../tags.ts";
import type { KmipAttribute } from "../attributes.ts";
import type { OperationContext } from "../context.ts";
import { invalidField, KmipOperationError } from "../errors.ts";
import { child, tag, text, textOf } from "../items.ts";
import type { KmipObject } from "../object-store.ts";
import { attributeScalar, loadObject, stateOf } from "../objects.ts";

/**
 * Returns the payload's Unique Identifier, or the batch's ID Placeholder
 * when the payload has none.
 */
export function requestUid(payload: StructureItem, context: OperationContext): string {
  const item = child(payload, "UniqueIdentifier");
  if (item !== undefined) return textOf(item);
  if (context.idPlaceholder !== undefined) return context.idPlaceholder;
  throw invalidField(
    "Unique Identifier is missing and no earlier batch item set the ID Placeholder",
  );
}

/** Loads the object a payload names and makes its identifier the batch's ID Placeholder. */
export async function requestObject(
  payload: StructureItem,
  context: OperationContext,
): Promise<KmipObject> {
  const uid = requestUid(payload, context);
  const object = await loadObject(context, uid);
  context.idPlaceholder = uid;
  return object;
}

export function uidItem(uid: string): KmipItem {
  return text("UniqueIdentifier", uid);
}

/** Returns the bit of a Cryptographic Usage Mask value name ("Encrypt"). */
export function usageBit(name: string): number {
  const bit = maskForTag(tag("CryptographicUsageMask"))?.byName.get(name);
  if (bit === undefined) throw new Error(`unknown usage mask bit ${name}`);
  return bit;
}

/** Checks that the object's usage mask allows the use (Incompatible Cryptographic Usage Mask otherwise). */
export function requireUsage(object: KmipObject, use: string): void {
  const mask = attributeScalar(object, "Cryptographic Usage Mask");
  if (typeof mask !== "number" || (mask & usageBit(use)) === 0) {
    throw new KmipOperationError(
      "IncompatibleCryptographicUsageMask",
      `the object's Cryptographic Usage Mask does not allow ${use}`,
    );
  }
}

/** Checks that the object is Active, as cryptographic operations require to create data. */
export function requireActive(object: KmipObject): void {
  const state = stateOf(object);
  if (state !== "Active") {
    throw new KmipOperationError(
      "WrongKeyLifecycleState",
      `the object is ${state}, and the operation requires Active`,
    );
  }
}

/** Checks that the object's state permits processing existing data (verify, decrypt). */
export function requireUsableForProcessing(object: KmipObject): void {
  const state = stateOf(object);
  if (state !== "Active" && state !== "Deactivated" && state !== "Compromised") {
    throw new KmipOperationError(
      "WrongKeyLifecycleState",
      `the object is ${state}, and the operation requires Active, Deactivated or Compromised`,
    );
  }
}

/**
 * Checks that no other object has a Name among the attributes (Non Unique
 * Name Attribute otherwise): a Name identifies one object on the server.
 * Objects that are destroyed keep their Names, so they conflict too. It
 * reads the Name index, not the objects.
 */
export async function requireUniqueNames(
  context: OperationContext,
  attributes: readonly KmipAttribute[],
  ownUid?: string,
): Promise<void> {
  for (const attribute of attributes) {
    if (attribute.name !== "Name") continue;
    const holders = await context.store.named(attribute.value);
    if (holders.some((uid) => uid !== ownUid)) {
      throw new KmipOperationError(
        "NonUniqueNameAttribute",
        "another object already has this Name",
      );
    }
  }
}
