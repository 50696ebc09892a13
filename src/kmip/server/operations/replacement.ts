/**
 * The attributes and links of a replacement object: what Re-key gives the
 * new key and the object it replaces. The KMIP objects made for versions
 * that transit adds to a managed key (see transit-versions.ts) are built
 * the same way, so both paths agree.
 */
import type { KmipItem, StructureItem } from "../../item.ts";
import type { KmipAttribute } from "../attributes.ts";
import { invalidField } from "../errors.ts";
import { child, enumItem, struct, text } from "../items.ts";
import type { KmipObject } from "../object-store.ts";
import { attributeScalar, dateAttribute, replaceAttribute } from "../objects.ts";
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
  "Process Start Date",
  "Protect Stop Date",
  "Deactivation Date",
  "Destroy Date",
  "Compromise Date",
  "Compromise Occurrence Date",
  "Revocation Reason",
  "Link",
]);

/** The dates that Re-key moves with the Activation Date, and whether each must lie ahead. */
const FOLLOWING_DATES = [
  { name: "Process Start Date", future: false },
  { name: "Protect Stop Date", future: true },
  { name: "Deactivation Date", future: true },
] as const;

/**
 * Returns the request's Offset in seconds, or undefined when it has none.
 * Throws Invalid Field when the Offset is not an Interval.
 */
export function requestOffset(payload: StructureItem): bigint | undefined {
  const offset = child(payload, "Offset");
  if (offset === undefined) return undefined;
  if (offset.type !== "Interval") throw invalidField("Offset must be an Interval in seconds");
  return BigInt(offset.value);
}

/**
 * Returns the dates of the object that Re-key or Re-key Key Pair makes to
 * replace `replaced`, as KMIP sets them. Without an Offset, the replaced
 * object's Activation, Process Start, Protect Stop and Deactivation Dates
 * are copied. With one, the Activation Date is `now` plus the Offset, and
 * the other dates keep their distance from it when the replaced object
 * has an Activation Date. A Protect Stop or Deactivation Date that is not
 * after `now` is left out, so that re-keying a revoked key gives a key
 * that can be used.
 */
export function replacementDates(
  replaced: KmipObject | undefined,
  offset: bigint | undefined,
  now: bigint,
): KmipAttribute[] {
  const dateOf = (name: string): bigint | undefined => {
    const value = replaced === undefined ? undefined : attributeScalar(replaced, name);
    return typeof value === "bigint" ? value : undefined;
  };
  const oldActivation = dateOf("Activation Date");
  const activation = offset === undefined ? oldActivation : now + offset;
  let shift: bigint | undefined = 0n;
  if (offset !== undefined) {
    shift = oldActivation === undefined ? undefined : (activation as bigint) - oldActivation;
  }
  const dates: KmipAttribute[] = [];
  if (activation !== undefined) dates.push(dateAttribute("Activation Date", activation));
  if (shift === undefined) return dates;
  for (const { name, future } of FOLLOWING_DATES) {
    const old = dateOf(name);
    if (old === undefined) continue;
    const date = old + shift;
    if (!future || date > now) dates.push(dateAttribute(name, date));
  }
  return dates;
}

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
