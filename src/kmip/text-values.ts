/**
 * Text forms of KMIP scalar values, shared by the XML and JSON encodings of
 * the KMIP Profiles. Enumerations are names or "0x" and 8 hex digits, masks
 * are bit names, and byte strings are hex. Date-Time is ISO 8601, and
 * numbers are decimal or "0x" hex.
 */
import { KmipDecodeError } from "./errors.ts";
import type { ScalarItem } from "./item.ts";
import {
  type Enumeration,
  enumerationForTag,
  type ItemType,
  maskForTag,
  tagForAttributeName,
  tagInfo,
} from "./tags.ts";
import { bigIntFromTwosComplement, bigIntToTwosComplement } from "./ttlv-layout.ts";

/** The enumeration or mask that gives meaning to a scalar's text, from its tag. */
export interface ValueContext {
  readonly enumeration?: Enumeration | undefined;
  readonly mask?: Enumeration | undefined;
}

/** The context of values whose tag has no enumeration or mask. */
const NO_CONTEXT: ValueContext = Object.freeze({});

/** The context of each registry tag, built once per tag. */
const TAG_CONTEXTS = new Map<number, ValueContext>();

/** Returns the enumeration and mask of a tag's values; tags outside the registry have neither. */
export function contextForTag(tag: number | undefined): ValueContext {
  if (tag === undefined) return NO_CONTEXT;
  let context = TAG_CONTEXTS.get(tag);
  if (context === undefined) {
    const enumeration = enumerationForTag(tag);
    const mask = maskForTag(tag);
    context = enumeration === undefined && mask === undefined ? NO_CONTEXT : { enumeration, mask };
    // Only registry tags are kept, so tags that clients make up cannot grow the map.
    if (tagInfo(tag) !== undefined) TAG_CONTEXTS.set(tag, context);
  }
  return context;
}

/** Returns the context of a KMIP 1.x Attribute Value, which is that of the tag its Attribute Name names. */
export function contextForAttributeName(attributeName: string | undefined): ValueContext {
  return contextForTag(
    attributeName === undefined ? undefined : tagForAttributeName(attributeName),
  );
}

const DECIMAL = /^-?\d+$/;
const HEX = /^0x[0-9A-Fa-f]+$/;
const HEX_BYTES = /^(?:[0-9A-Fa-f]{2})*$/;
const ISO_DATE_TIME =
  /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?(Z|[+-]\d{2}:\d{2})$/;

/**
 * Returns the error for a value that does not parse. The message leaves the
 * value out because a Byte String may be key material.
 */
/** A UTF-16 surrogate without its other half. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function invalid(type: ItemType): KmipDecodeError {
  return new KmipDecodeError("InvalidField", `invalid ${type} value`);
}

/** Parses a decimal or "0x" hex integer text; hex is read as unsigned. */
function parseNumberText(type: ItemType, text: string): bigint {
  if (DECIMAL.test(text) || HEX.test(text)) return BigInt(text);
  throw invalid(type);
}

function checkedNumber(type: ItemType, value: bigint, min: bigint, max: bigint): number {
  if (value < min || value > max) throw invalid(type);
  return Number(value);
}

function parseMask(text: string, mask: Enumeration): number {
  let bits = 0;
  for (const token of text.split(/[\s|]+/).filter((part) => part.length > 0)) {
    const named = mask.byName.get(token);
    const value = named ?? (HEX.test(token) || DECIMAL.test(token) ? Number(token) : undefined);
    if (value === undefined || !Number.isInteger(value) || value < 0 || value > 0xffffffff) {
      throw invalid("Integer");
    }
    bits = (bits | value) >>> 0;
  }
  return bits | 0;
}

function parseInteger(text: string, context: ValueContext): number {
  if (context.mask !== undefined && /[A-Za-z]/.test(text) && !HEX.test(text)) {
    return parseMask(text, context.mask);
  }
  const value = parseNumberText("Integer", text);
  if (HEX.test(text)) return checkedNumber("Integer", value, 0n, 0xffffffffn) | 0;
  return checkedNumber("Integer", value, -0x80000000n, 0x7fffffffn);
}

function parseEnumeration(text: string, context: ValueContext): number {
  if (HEX.test(text)) return checkedNumber("Enumeration", BigInt(text), 0n, 0xffffffffn);
  const value = context.enumeration?.byName.get(text);
  if (value === undefined) {
    throw new KmipDecodeError(
      "InvalidField",
      `unknown ${context.enumeration?.name ?? "Enumeration"} value "${text}"`,
    );
  }
  return value;
}

function parseBigInteger(text: string): bigint {
  const hex = text.startsWith("0x") ? text.slice(2) : text;
  if (hex.length === 0 || !/^[0-9A-Fa-f]+$/.test(hex)) throw invalid("BigInteger");
  return bigIntFromTwosComplement(Buffer.from(hex.length % 2 === 0 ? hex : `0${hex}`, "hex"));
}

function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/** Parses an ISO 8601 date-time into microseconds since the Unix epoch. */
function parseIsoMicroseconds(type: ItemType, text: string): bigint {
  const match = ISO_DATE_TIME.exec(text);
  if (match === null) throw invalid(type);
  const [year, month, day, hour, minute, second] = match.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) throw invalid(type);
  if (hour > 23 || minute > 59 || second > 59) throw invalid(type);
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(hour, minute, second, 0);
  let micros = BigInt(date.getTime()) * 1000n + BigInt((match[7] ?? "").padEnd(6, "0") || "0");
  const zone = match[8]!;
  if (zone !== "Z") {
    const offsetMinutes = Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6));
    if (Number(zone.slice(1, 3)) > 23 || Number(zone.slice(4, 6)) > 59) throw invalid(type);
    micros -= BigInt((zone.startsWith("-") ? -1 : 1) * offsetMinutes) * 60_000_000n;
  }
  return micros;
}

function parseDateTime(type: "DateTime" | "DateTimeExtended", text: string): bigint {
  if (HEX.test(text)) {
    if (text.length !== 18) throw invalid(type);
    return BigInt.asIntN(64, BigInt(text));
  }
  const micros = parseIsoMicroseconds(type, text);
  if (type === "DateTimeExtended") return micros;
  if (micros % 1_000_000n !== 0n) throw invalid(type);
  return micros / 1_000_000n;
}

/** Parses the text form of a scalar of the given type. */
export function parseScalarText(
  tag: number,
  type: Exclude<ItemType, "Structure">,
  text: string,
  context: ValueContext,
): ScalarItem {
  switch (type) {
    case "Integer":
      return { tag, type, value: parseInteger(text, context) };
    case "LongInteger":
      return { tag, type, value: parseLongInteger(text) };
    case "BigInteger":
      return { tag, type, value: parseBigInteger(text) };
    case "Enumeration":
      return { tag, type, value: parseEnumeration(text, context) };
    case "Boolean":
      if (text !== "true" && text !== "false") throw invalid(type);
      return { tag, type, value: text === "true" };
    case "TextString":
      // TTLV carries text as UTF-8, which has no form for a lone surrogate.
      if (LONE_SURROGATE.test(text)) {
        throw new KmipDecodeError("InvalidField", "invalid TextString value: not valid Unicode");
      }
      return { tag, type, value: text };
    case "ByteString":
      if (!HEX_BYTES.test(text)) throw invalid(type);
      return { tag, type, value: Buffer.from(text, "hex") };
    case "DateTime":
    case "DateTimeExtended":
      return { tag, type, value: parseDateTime(type, text) };
    case "Interval":
      return {
        tag,
        type,
        value: checkedNumber(type, parseNumberText(type, text), 0n, 0xffffffffn),
      };
  }
}

/** Parses a signed decimal, or "0x" hex read as 64-bit two's complement. */
function parseLongInteger(text: string): bigint {
  const value = parseNumberText("LongInteger", text);
  if (HEX.test(text)) {
    if (value > 0xffffffffffffffffn) throw invalid("LongInteger");
    return BigInt.asIntN(64, value);
  }
  if (value !== BigInt.asIntN(64, value)) throw invalid("LongInteger");
  return value;
}

function formatMask(value: number, mask: Enumeration): string | undefined {
  const names: string[] = [];
  let remaining = value >>> 0;
  for (let bit = 1; bit <= 0x80000000 && remaining !== 0; bit *= 2) {
    if ((remaining & bit) === 0) continue;
    const name = mask.byValue.get(bit);
    if (name === undefined) return undefined;
    names.push(name);
    remaining = (remaining & ~bit) >>> 0;
  }
  return names.length > 0 ? names.join(" ") : undefined;
}

function formatIso(micros: bigint, withFraction: boolean): string | undefined {
  const millis = micros / 1000n;
  // Date handles years up to 275760, but the text form has 4 year digits.
  if (millis < -62_167_219_200_000n || millis > 253_402_300_799_999n) return undefined;
  const iso = new Date(Number(millis)).toISOString();
  const fraction = (((micros % 1_000_000n) + 1_000_000n) % 1_000_000n).toString().padStart(6, "0");
  return `${iso.slice(0, 19)}${withFraction ? `.${fraction}` : ""}+00:00`;
}

export function formatHex32(value: number): string {
  return `0x${(value >>> 0).toString(16).toUpperCase().padStart(8, "0")}`;
}

function formatHex64(value: bigint): string {
  return `0x${BigInt.asUintN(64, value).toString(16).toUpperCase().padStart(16, "0")}`;
}

/**
 * Formats a scalar as text. `space`-separated mask names match the XML
 * encoding's form; the JSON encoding joins them with "|" instead.
 */
export function formatScalarText(
  item: ScalarItem,
  context: ValueContext,
  maskSeparator = " ",
): string {
  switch (item.type) {
    case "Integer": {
      const names = context.mask === undefined ? undefined : formatMask(item.value, context.mask);
      return names === undefined ? String(item.value) : names.split(" ").join(maskSeparator);
    }
    case "Enumeration":
      return context.enumeration?.byValue.get(item.value) ?? formatHex32(item.value);
    case "LongInteger":
    case "Interval":
      return String(item.value);
    case "BigInteger":
      return bigIntToTwosComplement(item.value).toString("hex");
    case "Boolean":
      return item.value ? "true" : "false";
    case "TextString":
      return item.value;
    case "ByteString":
      return Buffer.from(item.value).toString("hex");
    case "DateTime":
      return formatIso(item.value * 1_000_000n, false) ?? formatHex64(item.value);
    case "DateTimeExtended":
      return formatIso(item.value, true) ?? formatHex64(item.value);
  }
}
