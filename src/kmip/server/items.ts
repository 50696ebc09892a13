/**
 * Builders and readers for KMIP items by tag name, for the server's
 * operations. Readers raise KmipOperationError (Invalid Field) when a
 * request item has the wrong type, so a malformed payload becomes an error
 * response and never a crash.
 */
import type { KmipItem, ScalarItem, StructureItem } from "../item.ts";
import { enumerationForTag, tagDisplayName, tagNumber } from "../tags.ts";
import { invalidField } from "./errors.ts";

const tagCache = new Map<string, number>();

/** Returns the tag number of a normalized tag name, cached. */
export function tag(name: string): number {
  let value = tagCache.get(name);
  if (value === undefined) {
    value = tagNumber(name);
    tagCache.set(name, value);
  }
  return value;
}

export function struct(name: string, children: readonly KmipItem[]): StructureItem {
  return { tag: tag(name), type: "Structure", value: children };
}

export function text(name: string, value: string): KmipItem {
  return { tag: tag(name), type: "TextString", value };
}

export function bytes(name: string, value: Uint8Array): KmipItem {
  return { tag: tag(name), type: "ByteString", value };
}

export function integer(name: string, value: number): KmipItem {
  return { tag: tag(name), type: "Integer", value };
}

export function longInteger(name: string, value: bigint): KmipItem {
  return { tag: tag(name), type: "LongInteger", value };
}

export function boolean(name: string, value: boolean): KmipItem {
  return { tag: tag(name), type: "Boolean", value };
}

export function dateTime(name: string, seconds: bigint): KmipItem {
  return { tag: tag(name), type: "DateTime", value: seconds };
}

/** Builds an Enumeration item from its value's normalized name ("SymmetricKey"). */
export function enumItem(name: string, valueName: string): KmipItem {
  const tagValue = tag(name);
  const value = enumerationForTag(tagValue)?.byName.get(valueName);
  if (value === undefined) {
    throw invalidField(`${valueName} is not a value of ${name}`);
  }
  return { tag: tagValue, type: "Enumeration", value };
}

/** Returns the normalized name of an Enumeration item's value, or its number in hex. */
export function enumName(item: KmipItem): string {
  if (item.type !== "Enumeration") {
    throw invalidField(`${tagDisplayName(item.tag)} must be an Enumeration`);
  }
  return enumerationForTag(item.tag)?.byValue.get(item.value) ?? `0x${item.value.toString(16)}`;
}

export function asStructure(item: KmipItem | undefined, name: string): StructureItem {
  if (item === undefined) throw invalidField(`${name} is missing`);
  if (item.type !== "Structure") throw invalidField(`${name} must be a Structure`);
  return item;
}

/** Returns the first child with the tag name, or undefined. */
export function child(parent: StructureItem, name: string): KmipItem | undefined {
  const wanted = tag(name);
  return parent.value.find((item) => item.tag === wanted);
}

export function children(parent: StructureItem, name: string): KmipItem[] {
  const wanted = tag(name);
  return parent.value.filter((item) => item.tag === wanted);
}

export function requireChild(parent: StructureItem, name: string): KmipItem {
  const item = child(parent, name);
  if (item === undefined) throw invalidField(`${name} is missing`);
  return item;
}

function checkType(item: KmipItem, type: ScalarItem["type"]): void {
  if (item.type !== type) {
    throw invalidField(`${tagDisplayName(item.tag)} must be of type ${type}`);
  }
}

export function textOf(item: KmipItem): string {
  checkType(item, "TextString");
  return item.value as string;
}

export function bytesOf(item: KmipItem): Uint8Array {
  checkType(item, "ByteString");
  return item.value as Uint8Array;
}

export function integerOf(item: KmipItem): number {
  checkType(item, "Integer");
  return item.value as number;
}

export function booleanOf(item: KmipItem): boolean {
  checkType(item, "Boolean");
  return item.value as boolean;
}

export function dateTimeOf(item: KmipItem): bigint {
  checkType(item, "DateTime");
  return item.value as bigint;
}

/** Reads an optional child's enumeration name. */
export function optionalEnum(parent: StructureItem, name: string): string | undefined {
  const item = child(parent, name);
  return item === undefined ? undefined : enumName(item);
}

export function optionalText(parent: StructureItem, name: string): string | undefined {
  const item = child(parent, name);
  return item === undefined ? undefined : textOf(item);
}

export function optionalInteger(parent: StructureItem, name: string): number | undefined {
  const item = child(parent, name);
  return item === undefined ? undefined : integerOf(item);
}

export function optionalBytes(parent: StructureItem, name: string): Uint8Array | undefined {
  const item = child(parent, name);
  return item === undefined ? undefined : bytesOf(item);
}

/** Returns a copy of an item with another tag. */
export function retag(item: KmipItem, tagValue: number): KmipItem {
  return { ...item, tag: tagValue } as KmipItem;
}
