import { isIPv4, isIPv6 } from "node:net";
import { invalidField } from "../../errors.ts";

/** An IP address family: 4 or 6. */
export type Family = 4 | 6;

/** An IP prefix (CIDR block) with its address as an unsigned integer. */
export interface Prefix {
  family: Family;
  /** The address with host bits cleared for a range, or kept for an interface address. */
  address: bigint;
  length: number;
}

const BITS: Record<Family, number> = { 4: 32, 6: 128 };

/** Parses an IPv4 or IPv6 address without a prefix length; undefined when it is neither. */
export function parseAddress(text: string): { family: Family; value: bigint } | undefined {
  if (isIPv4(text)) return { family: 4, value: ipv4ToBigint(text) };
  if (isIPv6(text) && !text.includes("%")) return { family: 6, value: ipv6ToBigint(text) };
  return undefined;
}

function ipv4ToBigint(text: string): bigint {
  return text.split(".").reduce((value, octet) => (value << 8n) | BigInt(Number(octet)), 0n);
}

function ipv6ToBigint(text: string): bigint {
  let body = text;
  // An embedded IPv4 address (::ffff:192.0.2.1) becomes the last two groups.
  const lastColon = body.lastIndexOf(":");
  const last = body.slice(lastColon + 1);
  if (last.includes(".")) {
    const v4 = ipv4ToBigint(last);
    body = `${body.slice(0, lastColon + 1)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const parse = (part: string) =>
    part === "" ? [] : part.split(":").map((group) => Number.parseInt(group, 16));
  const halves = body.split("::");
  let groups: number[];
  if (halves.length === 2) {
    const head = parse(halves[0] as string);
    const tail = parse(halves[1] as string);
    groups = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  } else {
    groups = parse(body);
  }
  return groups.reduce((value, group) => (value << 16n) | BigInt(group), 0n);
}

/** Formats an address: dotted quad, or RFC 5952 text for IPv6 (lowercase, longest zero run as `::`). */
export function formatAddress(family: Family, value: bigint): string {
  if (family === 4) {
    return [24n, 16n, 8n, 0n].map((shift) => String((value >> shift) & 0xffn)).join(".");
  }
  const groups: number[] = [];
  for (let shift = 112n; shift >= 0n; shift -= 16n) groups.push(Number((value >> shift) & 0xffffn));
  let bestStart = -1;
  let bestLength = 1;
  for (let start = 0; start < 8; start += 1) {
    let length = 0;
    while (start + length < 8 && groups[start + length] === 0) length += 1;
    if (length > bestLength) {
      bestStart = start;
      bestLength = length;
    }
  }
  const hex = groups.map((group) => group.toString(16));
  if (bestStart === -1) return hex.join(":");
  const head = hex.slice(0, bestStart).join(":");
  const tail = hex.slice(bestStart + bestLength).join(":");
  return `${head}::${tail}`;
}

/** Formats a prefix as `address/length`. */
export function formatPrefix(prefix: Prefix): string {
  return `${formatAddress(prefix.family, prefix.address)}/${prefix.length}`;
}

/** Number of addresses in a prefix. */
export function prefixSize(prefix: Prefix): bigint {
  return 1n << BigInt(BITS[prefix.family] - prefix.length);
}

function hostMask(family: Family, length: number): bigint {
  return (1n << BigInt(BITS[family] - length)) - 1n;
}

/**
 * Parses a CIDR block such as `10.20.0.0/24` or `fd00:20::/64`. A bare
 * address is a single-address prefix. With `strict`, host bits must be zero
 * (`10.20.0.1/24` is rejected, as it names a range ambiguously).
 * Throws `invalid_field` naming `field`.
 */
export function parsePrefix(text: unknown, field: string, strict: boolean): Prefix {
  if (typeof text !== "string" || text.length > 64) {
    throw invalidField(field, `"${field}" must contain CIDR blocks such as "10.20.0.0/24"`);
  }
  const slash = text.indexOf("/");
  const addressText = slash === -1 ? text : text.slice(0, slash);
  const parsed = parseAddress(addressText);
  if (!parsed) {
    throw invalidField(field, `"${field}": "${text}" is not an IPv4 or IPv6 CIDR block`);
  }
  const bits = BITS[parsed.family];
  let length = bits;
  if (slash !== -1) {
    const lengthText = text.slice(slash + 1);
    if (!/^(?:0|[1-9]\d{0,2})$/.test(lengthText) || Number(lengthText) > bits) {
      throw invalidField(field, `"${field}": "${text}" has a prefix length outside 0-${bits}`);
    }
    length = Number(lengthText);
  }
  const hostBits = parsed.value & hostMask(parsed.family, length);
  if (strict && hostBits !== 0n) {
    throw invalidField(
      field,
      `"${field}": "${text}" has host bits set; write the range as ${formatPrefix({ family: parsed.family, address: parsed.value - hostBits, length })}`,
    );
  }
  return { family: parsed.family, address: parsed.value, length };
}

/** Returns the first address of a prefix. */
export function prefixStart(prefix: Prefix): bigint {
  return prefix.address & ~hostMask(prefix.family, prefix.length);
}

/** True when two prefixes of the same family share any address. */
export function prefixesOverlap(a: Prefix, b: Prefix): boolean {
  if (a.family !== b.family) return false;
  const shorter = Math.min(a.length, b.length);
  const mask = ~hostMask(a.family, shorter);
  return (a.address & mask) === (b.address & mask);
}

/** True when `value` lies inside `range`. */
export function prefixContains(range: Prefix, family: Family, value: bigint): boolean {
  return (
    range.family === family && (value & ~hostMask(family, range.length)) === prefixStart(range)
  );
}

/**
 * Returns the bounds of the addresses in a range that peers may use. The
 * first address is left out: it names the network (and is IPv6's
 * subnet-router anycast address). For IPv4 prefixes of /30 and shorter the
 * last, the broadcast address, is left out too.
 */
export function usableBounds(range: Prefix): { first: bigint; last: bigint } {
  const start = prefixStart(range);
  const end = start + prefixSize(range) - 1n;
  if (range.family === 4 && range.length >= 31) return { first: start, last: end };
  return { first: start + 1n, last: range.family === 4 ? end - 1n : end };
}

/**
 * Returns the lowest usable address of `range` that `taken` does not contain,
 * or undefined when the range is full. Runs in O(taken) time, whatever the
 * size of the range.
 */
export function lowestFree(range: Prefix, taken: ReadonlySet<string>): bigint | undefined {
  const { first, last } = usableBounds(range);
  for (let candidate = first; candidate <= last; candidate += 1n) {
    if (!taken.has(formatAddress(range.family, candidate))) return candidate;
  }
  return undefined;
}
