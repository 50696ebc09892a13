/**
 * The attributes of a new object: those the client sent, and those the
 * server sets (identifier, type, Digest, State and dates).
 */
import type { KmipItem, StructureItem } from "../../item.ts";
import {
  checkClientSettableAtCreation,
  isMultiValued,
  type KmipAttribute,
  parseAttributeContainer,
} from "../attributes.ts";
import { withServerDefaults } from "../default-attributes.ts";
import { bytes, child, enumItem, integer, struct, tag } from "../items.ts";
import { keyBlockOf, materialDigest } from "../material.ts";
import type { KmipObject } from "../object-store.ts";
import {
  attributeScalar,
  dateAttribute,
  enumAttribute,
  replaceAttribute,
  scalarAttribute,
  withProtectionHistory,
} from "../objects.ts";

/**
 * The Random Number Generator attribute of keys the server generates:
 * node:crypto draws from OpenSSL 3's default generator, a NIST SP 800-90A
 * CTR_DRBG over AES-256.
 */
export const RANDOM_NUMBER_GENERATOR: KmipAttribute = {
  name: "Random Number Generator",
  value: struct("AttributeValue", [
    enumItem("RNGAlgorithm", "DRBG"),
    enumItem("CryptographicAlgorithm", "AES"),
    integer("CryptographicLength", 256),
    enumItem("DRBGAlgorithm", "CTR"),
  ]),
};

function findAttributeIn(object: KmipObject, name: string): KmipAttribute | undefined {
  return object.attributes.find((attribute) => attribute.name === name);
}

/** Reads the request's attributes: 1.x Template-Attribute or 2.x Attributes. */
export function requestAttributes(payload: StructureItem, ...names: string[]): KmipAttribute[] {
  const attributes: KmipAttribute[] = [];
  for (const name of names) attributes.push(...parseAttributeContainer(child(payload, name)));
  return attributes;
}

/**
 * Builds the attributes of a new object: the identifier and type, the
 * client's attributes, then those the server keeps (Digest, State, dates).
 */
export function initialAttributes(
  uid: string,
  objectType: string,
  requested: readonly KmipAttribute[],
  content: KmipItem | undefined,
  now: bigint,
): KmipAttribute[] {
  let object: KmipObject = {
    uid,
    objectType,
    attributes: [
      scalarAttribute("Unique Identifier", "TextString", uid),
      enumAttribute("Object Type", objectType),
    ],
  };
  for (const attribute of requested) {
    checkClientSettableAtCreation(attribute.name);
    if (attribute.name === "Object Type") continue;
    object = isMultiValued(attribute.name)
      ? { ...object, attributes: [...object.attributes, attribute] }
      : replaceAttribute(object, attribute.name, attribute);
  }
  const block = keyBlockOf(content);
  if (block !== undefined) {
    for (const name of ["CryptographicAlgorithm", "CryptographicLength"]) {
      const item = child(block, name);
      const attributeName =
        name === "CryptographicAlgorithm" ? "Cryptographic Algorithm" : "Cryptographic Length";
      if (item !== undefined && attributeScalar(object, attributeName) === undefined) {
        object = replaceAttribute(object, attributeName, {
          name: attributeName,
          value: { ...item, tag: tag("AttributeValue") } as KmipItem,
        });
      }
    }
  }
  const digest = content === undefined ? undefined : materialDigest(content);
  if (digest !== undefined) {
    object = {
      ...object,
      attributes: [
        ...object.attributes,
        {
          name: "Digest",
          value: struct("AttributeValue", [
            enumItem("HashingAlgorithm", "SHA_256"),
            bytes("DigestValue", digest.digest),
            enumItem("KeyFormatType", digest.format),
          ]),
        },
      ],
    };
  }
  object = withServerDefaults(object, content);
  object = withProtectionHistory(object, true);
  const activation = attributeScalar(object, "Activation Date");
  const active = typeof activation === "bigint" && activation <= now;
  object = replaceAttribute(
    object,
    "State",
    enumAttribute("State", active ? "Active" : "PreActive"),
  );
  object = replaceAttribute(object, "Initial Date", dateAttribute("Initial Date", now));
  if (findAttributeIn(object, "Original Creation Date") === undefined) {
    object = replaceAttribute(
      object,
      "Original Creation Date",
      dateAttribute("Original Creation Date", now),
    );
  }
  if (digest !== undefined) {
    object = replaceAttribute(
      object,
      "Key Format Type",
      enumAttribute("Key Format Type", digest.format),
    );
  }
  object = replaceAttribute(object, "Last Change Date", dateAttribute("Last Change Date", now));
  return [...object.attributes];
}
