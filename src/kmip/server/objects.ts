/**
 * Reading and changing a managed object's attributes: single values, the
 * lifecycle state and the dates the server keeps.
 */
import type { KmipItem } from "../item.ts";
import { enumerationForTag, tagForAttributeName } from "../tags.ts";
import type { KmipAttribute } from "./attributes.ts";
import type { OperationContext } from "./context.ts";
import { itemNotFound } from "./errors.ts";
import { tag } from "./items.ts";
import type { KmipObject } from "./object-store.ts";

const ATTRIBUTE_VALUE = () => tag("AttributeValue");

/** Builds an attribute from a scalar value. */
export function scalarAttribute(
  name: string,
  type:
    | "Enumeration"
    | "Integer"
    | "TextString"
    | "DateTime"
    | "Boolean"
    | "LongInteger"
    | "Interval",
  value: number | string | bigint | boolean,
): KmipAttribute {
  return { name, value: { tag: ATTRIBUTE_VALUE(), type, value } as KmipItem };
}

/** Builds an Enumeration attribute from its value name ("Active"). */
export function enumAttribute(name: string, valueName: string): KmipAttribute {
  const attributeTag = tagForAttributeName(name);
  const value =
    attributeTag === undefined ? undefined : enumerationForTag(attributeTag)?.byName.get(valueName);
  if (value === undefined) throw new Error(`${valueName} is not a value of ${name}`);
  return scalarAttribute(name, "Enumeration", value);
}

export function dateAttribute(name: string, seconds: bigint): KmipAttribute {
  return scalarAttribute(name, "DateTime", seconds);
}

export function findAttribute(object: KmipObject, name: string): KmipAttribute | undefined {
  return object.attributes.find((attribute) => attribute.name === name);
}

/** Returns the scalar value of a single-valued attribute, or undefined. */
export function attributeScalar(object: KmipObject, name: string): unknown {
  const attribute = findAttribute(object, name);
  if (attribute === undefined || attribute.value.type === "Structure") return undefined;
  return attribute.value.value;
}

/** Returns the State attribute's value name ("PreActive", "Active", …). */
export function stateOf(object: KmipObject): string {
  const value = attributeScalar(object, "State");
  const names = enumerationForTag(tag("State"))?.byValue;
  return typeof value === "number" ? (names?.get(value) ?? "Unknown") : "Unknown";
}

/** Replaces every instance of the named attribute with the given ones. */
export function replaceAttribute(
  object: KmipObject,
  name: string,
  replacement: KmipAttribute | undefined,
): KmipObject {
  const attributes: KmipAttribute[] = [];
  let placed = false;
  for (const attribute of object.attributes) {
    if (attribute.name !== name) {
      attributes.push(attribute);
    } else if (!placed && replacement !== undefined) {
      attributes.push(replacement);
      placed = true;
    }
  }
  if (!placed && replacement !== undefined) attributes.push(replacement);
  return { ...object, attributes };
}

/** Sets single-valued attributes and the Last Change Date. */
export function withAttributes(
  object: KmipObject,
  now: bigint,
  changes: readonly KmipAttribute[],
): KmipObject {
  let updated = object;
  for (const change of changes) updated = replaceAttribute(updated, change.name, change);
  return replaceAttribute(updated, "Last Change Date", dateAttribute("Last Change Date", now));
}

/**
 * Keeps Always Sensitive and Never Extractable true only while the object
 * has stayed Sensitive and not Extractable since its creation, as KMIP 1.4
 * defines them. An object created without those attributes gets none.
 */
export function withProtectionHistory(object: KmipObject, creating: boolean): KmipObject {
  let updated = object;
  const sensitive = attributeScalar(object, "Sensitive");
  if (typeof sensitive === "boolean" && (creating || sensitive === false)) {
    const always = creating ? sensitive : false;
    updated = replaceAttribute(
      updated,
      "Always Sensitive",
      scalarAttribute("Always Sensitive", "Boolean", always),
    );
  }
  const extractable = attributeScalar(object, "Extractable");
  if (typeof extractable === "boolean" && (creating || extractable === true)) {
    const never = creating ? !extractable : false;
    updated = replaceAttribute(
      updated,
      "Never Extractable",
      scalarAttribute("Never Extractable", "Boolean", never),
    );
  }
  return updated;
}

/** Loads an object by the payload's Unique Identifier or the batch's ID Placeholder. */
export async function loadObject(context: OperationContext, uid: string): Promise<KmipObject> {
  const object = await context.store.find(uid);
  if (object === undefined) throw itemNotFound(uid);
  return object;
}
