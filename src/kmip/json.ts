/**
 * The KMIP JSON encoding (KMIP Profiles, JSON encoding), mapped to the same
 * item tree as TTLV.
 *
 * Each item is an object `{"tag": …, "type": …, "value": …}`. The tag is its
 * normalized name or "0x" and 6 hex digits; a missing type means Structure,
 * whose value is an array of items. Scalars: Integer, Interval and
 * Enumeration as JSON numbers or text (enumeration and mask names, "0x" hex);
 * Long Integer as a number or "0x" hex; Boolean as true or false; Big
 * Integer, Byte String, Date-Time and Text String as strings, with the same
 * text forms as the XML encoding.
 */
import { KmipDecodeError } from "./errors.ts";
import { isPlaceholder, type KmipItem, type ScalarItem, type TemplateItem } from "./item.ts";
import {
  type ItemType,
  isItemType,
  isTagInValidRange,
  tagByName,
  tagDisplayName,
  tagNumber,
} from "./tags.ts";
import {
  contextForAttributeName,
  contextForTag,
  formatHex32,
  formatScalarText,
  parseScalarText,
  type ValueContext,
} from "./text-values.ts";
import { DEFAULT_MAX_DEPTH, DEFAULT_MAX_MESSAGE_BYTES } from "./ttlv.ts";

export interface JsonDecodeOptions {
  /** Maximum document length in characters. Default 1 MiB, as for TTLV. */
  maxLength?: number;
  /** Maximum item nesting depth; the outermost item is depth 1. Default 32, as for TTLV. */
  maxDepth?: number;
}

/** One item in the JSON encoding. */
export interface JsonItem {
  tag: string;
  type?: string;
  value: JsonItem[] | string | number | boolean;
}

const ATTRIBUTE_NAME_TAG = tagNumber("AttributeName");
const ATTRIBUTE_VALUE_TAG = tagNumber("AttributeValue");

/** Decodes one KMIP message (or any single item) from JSON text. */
export function decodeJson(text: string, options: JsonDecodeOptions = {}): KmipItem {
  const maxLength = options.maxLength ?? DEFAULT_MAX_MESSAGE_BYTES;
  if (text.length > maxLength) {
    throw new KmipDecodeError("InvalidMessage", `JSON document exceeds ${maxLength} characters`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new KmipDecodeError("InvalidMessage", "the message is not valid JSON");
  }
  return itemFromJson(parsed, options);
}

/** Converts an already parsed JSON value to an item tree, with the same checks as decodeJson. */
export function itemFromJson(value: unknown, options: JsonDecodeOptions = {}): KmipItem {
  return readItem(value, {}, 1, options.maxDepth ?? DEFAULT_MAX_DEPTH, "$");
}

function fieldError(path: string, message: string): KmipDecodeError {
  return new KmipDecodeError("InvalidField", `${path}: ${message}`);
}

function readTag(value: unknown, path: string): number {
  if (typeof value !== "string") throw fieldError(path, "tag is missing or not a string");
  if (/^0x[0-9A-Fa-f]{6}$/.test(value)) {
    const tag = Number(value);
    if (!isTagInValidRange(tag)) throw fieldError(path, `tag ${value} is outside the KMIP ranges`);
    return tag;
  }
  const tag = tagByName(value);
  if (tag === undefined) throw fieldError(path, `unknown tag "${value}"`);
  return tag;
}

function readItem(
  value: unknown,
  context: ValueContext,
  depth: number,
  maxDepth: number,
  path: string,
): KmipItem {
  if (depth > maxDepth)
    throw new KmipDecodeError("InvalidMessage", `items nest deeper than ${maxDepth}`);
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw fieldError(path, "an item must be a JSON object");
  }
  const object = value as Record<string, unknown>;
  for (const key of Object.keys(object)) {
    if (key !== "tag" && key !== "type" && key !== "value")
      throw fieldError(path, `unknown key "${key}"`);
  }
  const tag = readTag(object.tag, path);
  const itemPath = `${path}.${tagDisplayName(tag)}`;
  const type = object.type ?? "Structure";
  if (typeof type !== "string" || !isItemType(type))
    throw fieldError(itemPath, `unknown type ${JSON.stringify(type)}`);
  if (type === "Structure") {
    if (!Array.isArray(object.value))
      throw fieldError(itemPath, "a Structure value must be an array");
    let attributeName: string | undefined;
    const children = object.value.map((child, index) => {
      const item = readItem(
        child,
        contextForAttributeName(attributeName),
        depth + 1,
        maxDepth,
        `${itemPath}[${index}]`,
      );
      if (item.tag === ATTRIBUTE_NAME_TAG && item.type === "TextString") attributeName = item.value;
      return item;
    });
    return { tag, type, value: children };
  }
  const itemContext = tag === ATTRIBUTE_VALUE_TAG ? context : contextForTag(tag);
  return readScalar(tag, type, object.value, itemContext, itemPath);
}

const NUMBER_TYPES: ReadonlySet<ItemType> = new Set([
  "Integer",
  "LongInteger",
  "Enumeration",
  "Interval",
]);

function readScalar(
  tag: number,
  type: Exclude<ItemType, "Structure">,
  value: unknown,
  context: ValueContext,
  path: string,
): ScalarItem {
  let text: string;
  if (type === "Boolean" && typeof value === "boolean") {
    text = String(value);
  } else if (NUMBER_TYPES.has(type) && typeof value === "number") {
    if (!Number.isSafeInteger(value))
      throw fieldError(path, `${type} value ${value} is not an exact integer`);
    text = type === "Enumeration" ? formatHex32(value) : String(value);
    if (type === "Enumeration" && (value < 0 || value > 0xffffffff))
      throw fieldError(path, "Enumeration out of range");
  } else if (typeof value === "string" && type !== "Boolean") {
    text = value;
  } else {
    throw fieldError(path, `${type} value has the wrong JSON type`);
  }
  try {
    return parseScalarText(tag, type, text, context);
  } catch (error) {
    if (error instanceof KmipDecodeError) throw fieldError(path, error.message);
    throw error;
  }
}

/** Encodes an item tree as KMIP JSON text. */
export function encodeJson(item: KmipItem): string {
  return JSON.stringify(itemToJson(item));
}

/** Converts an item tree to the JSON encoding's objects. Placeholders are written as their text. */
export function itemToJson(item: TemplateItem, context: ValueContext = {}): JsonItem {
  const tag = tagDisplayName(item.tag);
  if (isPlaceholder(item)) return { tag, type: item.type, value: item.placeholder };
  if (item.type === "Structure") {
    let attributeName: string | undefined;
    const children = item.value.map((child) => {
      const json = itemToJson(child, contextForAttributeName(attributeName));
      if (
        child.tag === ATTRIBUTE_NAME_TAG &&
        child.type === "TextString" &&
        !isPlaceholder(child)
      ) {
        attributeName = child.value as string;
      }
      return json;
    });
    return { tag, value: children };
  }
  const itemContext = item.tag === ATTRIBUTE_VALUE_TAG ? context : contextForTag(item.tag);
  return { tag, type: item.type, value: jsonScalar(item as ScalarItem, itemContext) };
}

function jsonScalar(item: ScalarItem, context: ValueContext): string | number | boolean {
  switch (item.type) {
    case "Boolean":
      return item.value;
    case "Interval":
      return item.value;
    case "Integer": {
      const text = formatScalarText(item, context, "|");
      return /^-?\d+$/.test(text) ? item.value : text;
    }
    case "LongInteger":
      return Number.isSafeInteger(Number(item.value))
        ? Number(item.value)
        : `0x${BigInt.asUintN(64, item.value).toString(16).toUpperCase().padStart(16, "0")}`;
    case "BigInteger":
      return `0x${formatScalarText(item, context)}`;
    default:
      return formatScalarText(item, context);
  }
}
