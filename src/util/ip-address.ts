/**
 * IPv4 and IPv6 addresses as unsigned integers, for range arithmetic and
 * canonical text. Written by hand because node:net validates addresses
 * but gives no numeric form; no cryptography is involved.
 */
import { isIPv4, isIPv6 } from "node:net";

/** An IP address family: 4 or 6. */
export type Family = 4 | 6;

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
