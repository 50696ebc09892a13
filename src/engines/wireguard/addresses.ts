import { invalidField } from "../../errors.ts";
import { type Family, formatAddress, parseAddress } from "../../util/ip-address.ts";

/** An IP prefix (CIDR block) with its address as an unsigned integer. */
export interface Prefix {
  family: Family;
  /** The address with host bits cleared for a range, or kept for an interface address. */
  address: bigint;
  length: number;
}

const BITS: Record<Family, number> = { 4: 32, 6: 128 };

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
