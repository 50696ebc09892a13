/**
 * The KMIP registry: item types, tags, enumerations and bit masks, for KMIP
 * 1.0 to 1.4 and 2.0 to 2.1.
 *
 * The numbers come from the specification tables in spec-tables.ts. This
 * module adds the names that the XML and JSON encodings use, built with the
 * "normalizing names" rule of the KMIP Profiles (XML and JSON encodings), and
 * the lookups the codecs need: tag by name, enumeration and mask by tag.
 */
import { KeywardError } from "../errors.ts";
import { PKCS11_FUNCTIONS, PKCS11_RETURN_CODES } from "./pkcs11-tables.ts";
import { SPEC_ENUMERATIONS, SPEC_MASKS, SPEC_TAGS } from "./spec-tables.ts";

/** TTLV item type bytes (the Item Type enumeration of KMIP 2.x; the same bytes in 1.x). */
export const ITEM_TYPES = {
  Structure: 0x01,
  Integer: 0x02,
  LongInteger: 0x03,
  BigInteger: 0x04,
  Enumeration: 0x05,
  Boolean: 0x06,
  TextString: 0x07,
  ByteString: 0x08,
  DateTime: 0x09,
  Interval: 0x0a,
  DateTimeExtended: 0x0b,
} as const;

export type ItemType = keyof typeof ITEM_TYPES;

const ITEM_TYPE_BY_BYTE = new Map<number, ItemType>(
  Object.entries(ITEM_TYPES).map(([name, byte]) => [byte, name as ItemType]),
);

/** Returns the item type for a TTLV type byte, or undefined when the byte names no type. */
export function itemTypeFromByte(byte: number): ItemType | undefined {
  return ITEM_TYPE_BY_BYTE.get(byte);
}

export function isItemType(name: string): name is ItemType {
  return Object.hasOwn(ITEM_TYPES, name);
}

/**
 * Converts a specification name ("IV/Counter/Nonce", "SHA-256", "PKCS#1") to
 * the name the XML and JSON encodings use ("IVCounterNonce", "SHA_256",
 * "PKCS_1"), in the steps of the KMIP Profiles. Brackets become spaces. A
 * non-word character before a letter and a lower-case letter becomes a
 * space, and other non-word characters become underscores. Leading digits of
 * the first word move to its end. Each word is capitalised, and the words
 * are joined.
 */
export function normalizeName(specName: string): string {
  let text = specName.replace(/[()]/g, " ");
  text = text.replace(/[^A-Za-z0-9_]([A-Za-z][a-z])/g, " $1");
  text = text.replace(/[^A-Za-z0-9_ ]/g, "_");
  const words = text.split(" ").filter((word) => word.length > 0);
  return words
    .map((word, index) => {
      const moved = index === 0 ? word.replace(/^(\d+)(.*)$/, "$2$1") : word;
      return moved.charAt(0).toUpperCase() + moved.slice(1);
    })
    .join("");
}

/** A tag of the registry. */
export interface TagInfo {
  readonly tag: number;
  /** The name in the specification's tag table, such as "Unique Identifier". */
  readonly specName: string;
  /** The XML and JSON name, such as "UniqueIdentifier". */
  readonly name: string;
  /** True for 1.x tags that KMIP 2.0 removed, such as Template-Attribute. */
  readonly removedIn2: boolean;
}

const TAGS_BY_NUMBER = new Map<number, TagInfo>();
const TAGS_BY_NAME = new Map<string, TagInfo>();
for (const [tag, specName, note] of SPEC_TAGS) {
  const info: TagInfo = {
    tag,
    specName,
    name: normalizeName(specName),
    removedIn2: note === "1.x",
  };
  TAGS_BY_NUMBER.set(tag, info);
  TAGS_BY_NAME.set(info.name, info);
}

/** Returns the registry entry of a tag number, or undefined for an unknown tag. */
export function tagInfo(tag: number): TagInfo | undefined {
  return TAGS_BY_NUMBER.get(tag);
}

/** Returns the tag number for an XML/JSON name ("UniqueIdentifier"), or undefined. */
export function tagByName(name: string): number | undefined {
  return TAGS_BY_NAME.get(name)?.tag;
}

/**
 * Returns the tag number for a name that code uses as a constant; an unknown
 * name is a programming error.
 */
export function tagNumber(name: string): number {
  const tag = tagByName(name);
  if (tag === undefined) throw new KeywardError("internal", `unknown KMIP tag name "${name}"`);
  return tag;
}

/** Returns the XML/JSON name of a tag, or its "0x42XXXX" hex form when the registry has none. */
export function tagDisplayName(tag: number): string {
  return TAGS_BY_NUMBER.get(tag)?.name ?? formatTagHex(tag);
}

export function formatTagHex(tag: number): string {
  return `0x${tag.toString(16).toUpperCase().padStart(6, "0")}`;
}

/** True for tag numbers in the KMIP standard (0x42XXXX) or extension (0x54XXXX) ranges. */
export function isTagInValidRange(tag: number): boolean {
  const prefix = tag >>> 16;
  return prefix === 0x42 || prefix === 0x54;
}

/** An enumeration or bit mask, with its names in normalized form. */
export interface Enumeration {
  /** The normalized enumeration name, such as "CryptographicAlgorithm". */
  readonly name: string;
  /** Value for each normalized value name; specification aliases included. */
  readonly byName: ReadonlyMap<string, number>;
  /** The rendered name of each value: KMIP 2.1's name where versions differ. */
  readonly byValue: ReadonlyMap<number, string>;
}

function buildEnumeration(specName: string, entries: readonly (readonly [string, number])[]) {
  const byName = new Map<string, number>();
  const byValue = new Map<number, string>();
  for (const [valueName, value] of entries) {
    const name = normalizeName(valueName);
    if (!byName.has(name)) byName.set(name, value);
    if (!byValue.has(value)) byValue.set(value, name);
  }
  return { name: normalizeName(specName), byName, byValue };
}

const ENUMERATIONS = new Map<string, Enumeration>();
for (const [specName, entries] of Object.entries(SPEC_ENUMERATIONS)) {
  const enumeration = buildEnumeration(specName, entries);
  ENUMERATIONS.set(enumeration.name, enumeration);
}

/**
 * The tags as an enumeration: KMIP 2.x's Attribute Reference carries an
 * attribute's tag number as an Enumeration value, written with the tag name.
 */
const TAG_ENUMERATION: Enumeration = {
  name: "Tag",
  byName: new Map([...TAGS_BY_NAME].map(([name, info]) => [name, info.tag])),
  byValue: new Map([...TAGS_BY_NUMBER].map(([tag, info]) => [tag, info.name])),
};
ENUMERATIONS.set("Tag", TAG_ENUMERATION);

// NOTE: KMIP 2.1 numbers PKCS#11 functions by their "1-based offset" in
// CK_FUNCTION_LIST_3_0; this table counts C_Initialize as 1, not the leading
// version field. The conformance cases use names only, so none confirms it.
for (const enumeration of [
  buildEnumeration(
    "PKCS#11 Function",
    PKCS11_FUNCTIONS.map((name, index) => [name, index + 1] as const),
  ),
  buildEnumeration("PKCS#11 Return Code", PKCS11_RETURN_CODES),
]) {
  ENUMERATIONS.set(enumeration.name, enumeration);
}

const MASKS = new Map<string, Enumeration>();
for (const [specName, entries] of Object.entries(SPEC_MASKS)) {
  const mask = buildEnumeration(specName, entries);
  MASKS.set(mask.name, mask);
}

/** Tags whose Enumeration values belong to an enumeration of another name. */
const ENUMERATION_OF_TAG: Readonly<Record<string, string>> = {
  MaskGeneratorHashingAlgorithm: "HashingAlgorithm",
  AttributeReference: "Tag",
  ExtensionType: "ItemType",
};

/** Returns an enumeration by its normalized name ("Operation", "ResultReason"). */
export function enumeration(name: string): Enumeration | undefined {
  return ENUMERATIONS.get(name);
}

/** The enumeration of each registry tag looked up so far, or null for a tag without one. */
const ENUMERATION_BY_TAG = new Map<number, Enumeration | null>();

/** Returns the enumeration whose values a tag's Enumeration items carry, or undefined when the registry has none. */
export function enumerationForTag(tag: number): Enumeration | undefined {
  const known = ENUMERATION_BY_TAG.get(tag);
  if (known !== undefined) return known ?? undefined;
  const name = TAGS_BY_NUMBER.get(tag)?.name;
  if (name === undefined) return undefined;
  const found = ENUMERATIONS.get(ENUMERATION_OF_TAG[name] ?? name);
  ENUMERATION_BY_TAG.set(tag, found ?? null);
  return found;
}

/** Returns the bit mask whose bits a tag's Integer items carry (Cryptographic Usage Mask and others). */
export function maskForTag(tag: number): Enumeration | undefined {
  const name = TAGS_BY_NUMBER.get(tag)?.name;
  return name === undefined ? undefined : MASKS.get(name);
}

/**
 * Attribute Names already mapped to their tags, because `normalizeName`
 * runs several regular expressions and every request names attributes.
 */
const ATTRIBUTE_NAME_TAGS = new Map<string, number>();

/**
 * Maximum entries of `ATTRIBUTE_NAME_TAGS`. Clients use few spellings of
 * the registry's names, and the bound limits the memory a client that
 * sends many spellings can take.
 */
const MAX_ATTRIBUTE_NAME_TAGS = 4096;

/**
 * Returns the tag that a KMIP 1.x Attribute Name string ("Cryptographic
 * Algorithm") stands for, so that the Attribute Value can be read with that
 * tag's enumeration or mask. Custom attribute names ("x-…") have no tag.
 */
export function tagForAttributeName(attributeName: string): number | undefined {
  const known = ATTRIBUTE_NAME_TAGS.get(attributeName);
  if (known !== undefined) return known;
  const tag = tagByName(normalizeName(attributeName));
  // Only names of registry tags are kept, so clients' custom names cannot grow the map.
  if (tag !== undefined && ATTRIBUTE_NAME_TAGS.size < MAX_ATTRIBUTE_NAME_TAGS) {
    ATTRIBUTE_NAME_TAGS.set(attributeName, tag);
  }
  return tag;
}

/** Returns the value of a named enumeration member; an unknown name is a programming error. */
export function enumerationValue(enumerationName: string, valueName: string): number {
  const value = ENUMERATIONS.get(enumerationName)?.byName.get(valueName);
  if (value === undefined) {
    throw new KeywardError(
      "internal",
      `unknown KMIP enumeration value ${enumerationName}.${valueName}`,
    );
  }
  return value;
}

/** Returns every registry tag, in tag order. */
export function allTags(): readonly TagInfo[] {
  return [...TAGS_BY_NUMBER.values()];
}
