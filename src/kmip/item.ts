/**
 * The in-memory KMIP item tree that the TTLV, XML and JSON codecs share.
 *
 * Every item has a tag number and a type. Scalars keep the full range of
 * their wire type: Long Integer, Big Integer, Date-Time (seconds since the
 * Unix epoch) and Date-Time Extended (microseconds) are bigints; Integer is a
 * signed 32-bit number; Enumeration and Interval are unsigned 32-bit numbers.
 */
import type { ItemType } from "./tags.ts";

interface ItemBase<T extends ItemType, V> {
  readonly tag: number;
  readonly type: T;
  readonly value: V;
}

export type IntegerItem = ItemBase<"Integer", number>;
export type LongIntegerItem = ItemBase<"LongInteger", bigint>;
export type BigIntegerItem = ItemBase<"BigInteger", bigint>;
export type EnumerationItem = ItemBase<"Enumeration", number>;
export type BooleanItem = ItemBase<"Boolean", boolean>;
export type TextStringItem = ItemBase<"TextString", string>;
export type ByteStringItem = ItemBase<"ByteString", Uint8Array>;
export type DateTimeItem = ItemBase<"DateTime", bigint>;
export type IntervalItem = ItemBase<"Interval", number>;
export type DateTimeExtendedItem = ItemBase<"DateTimeExtended", bigint>;

export type ScalarItem =
  | IntegerItem
  | LongIntegerItem
  | BigIntegerItem
  | EnumerationItem
  | BooleanItem
  | TextStringItem
  | ByteStringItem
  | DateTimeItem
  | IntervalItem
  | DateTimeExtendedItem;

export interface StructureItem<Child = KmipItem> {
  readonly tag: number;
  readonly type: "Structure";
  readonly value: readonly Child[];
}

/** One KMIP item: a structure of items or a scalar. */
export type KmipItem = StructureItem<KmipItem> | ScalarItem;

/**
 * A value written as a placeholder in a conformance case, such as
 * `$UNIQUE_IDENTIFIER_0` or `$NOW-3600`; the replay runner binds it.
 */
export interface PlaceholderItem {
  readonly tag: number;
  readonly type: ItemType;
  readonly placeholder: string;
}

/** An item tree that may contain placeholders (a parsed conformance case message). */
export type TemplateItem = StructureItem<TemplateItem> | ScalarItem | PlaceholderItem;

export function isPlaceholder(item: TemplateItem): item is PlaceholderItem {
  return "placeholder" in item;
}

export function structure<Child extends TemplateItem = KmipItem>(
  tag: number,
  children: readonly Child[],
): StructureItem<Child> {
  return { tag, type: "Structure", value: children };
}

/** Returns the first child of a structure with the tag, or undefined. */
export function findChild<Child extends TemplateItem>(
  parent: StructureItem<Child>,
  tag: number,
): Child | undefined {
  return parent.value.find((child) => child.tag === tag);
}

/** Compares two item trees by tag, type and value (bytes compared by content). */
export function itemsEqual(left: TemplateItem, right: TemplateItem): boolean {
  if (left.tag !== right.tag || left.type !== right.type) return false;
  if (isPlaceholder(left) || isPlaceholder(right)) {
    return isPlaceholder(left) && isPlaceholder(right) && left.placeholder === right.placeholder;
  }
  if (left.type === "Structure" && right.type === "Structure") {
    if (left.value.length !== right.value.length) return false;
    return left.value.every((child, index) => itemsEqual(child, right.value[index]!));
  }
  if (left.value instanceof Uint8Array && right.value instanceof Uint8Array) {
    return Buffer.from(left.value).equals(right.value);
  }
  return left.value === right.value;
}
