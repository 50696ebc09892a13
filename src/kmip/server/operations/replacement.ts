/**
 * The attributes and links of a replacement object: what Re-key gives the
 * new key and the object it replaces. The KMIP objects made for versions
 * that transit adds to a managed key (see transit-versions.ts) are built
 * the same way, so both paths agree.
 */
import type { KmipItem } from "../../item.ts";
import type { KmipAttribute } from "../attributes.ts";
import { enumItem, struct, text } from "../items.ts";
import type { KmipObject } from "../object-store.ts";
import { replaceAttribute } from "../objects.ts";
import { initialAttributes, RANDOM_NUMBER_GENERATOR } from "./new-object.ts";

/** Builds a Link attribute of the type to the object `uid`. */
export function linkAttribute(linkType: string, uid: string): KmipAttribute {
  return {
    name: "Link",
    value: struct("AttributeValue", [
      enumItem("LinkType", linkType),
      text("LinkedObjectIdentifier", uid),
    ]),
  };
}

/** Attributes a replacement does not copy: the server sets them afresh for the new key. */
const NOT_COPIED = new Set([
  "Unique Identifier",
  "Digest",
  "State",
  "Initial Date",
  "Last Change Date",
  "Activation Date",
  "Deactivation Date",
  "Destroy Date",
  "Compromise Date",
  "Compromise Occurrence Date",
  "Revocation Reason",
  "Link",
]);

/**
 * Builds the attributes of object `uid`, which replaces `replaced`: the
 * replaced object's attributes except those the server sets afresh, then
 * `requested`, the server's attributes for `content`, a Replaced Object
 * Link and the Random Number Generator.
 */
export function replacementAttributes(
  replaced: KmipObject,
  uid: string,
  content: KmipItem | undefined,
  requested: readonly KmipAttribute[],
  now: bigint,
): KmipAttribute[] {
  const copied = replaced.attributes.filter((attribute) => !NOT_COPIED.has(attribute.name));
  return [
    ...initialAttributes(uid, replaced.objectType, [...copied, ...requested], content, now),
    linkAttribute("ReplacedObjectLink", replaced.uid),
    RANDOM_NUMBER_GENERATOR,
  ];
}

/**
 * Returns the replaced object with a Replacement Object Link to `uid` after
 * its other Links, and without its Names: KMIP moves the names of a
 * re-keyed object to its replacement, which `replacementAttributes` copies
 * them to.
 */
export function withReplacementLink(replaced: KmipObject, uid: string): KmipObject {
  const updated = replaceAttribute(
    replaceAttribute(replaced, "Link", undefined),
    "Name",
    undefined,
  );
  return {
    ...updated,
    attributes: [
      ...updated.attributes,
      ...replaced.attributes.filter((attribute) => attribute.name === "Link"),
      linkAttribute("ReplacementObjectLink", uid),
    ],
  };
}
