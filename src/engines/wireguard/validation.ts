import { isIP } from "node:net";
import { parseDuration } from "../../auth/duration.ts";
import { invalidField } from "../../errors.ts";

/** Network and peer names: they appear in paths and in configuration comments. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** Device identifiers as the device registry will assign them. */
const DEVICE_ID = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;

/** A DNS name (RFC 1123 labels), for endpoints and search domains. */
const HOST_NAME =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/**
 * True for a name that glibc's getaddrinfo, and so `wg`, reads as an IPv4
 * address through `inet_aton` before any DNS lookup: "010.1.1.1" is
 * 8.1.1.1 in octal and "2130706433" is 127.0.0.1. A name such as
 * "300.1.1.1" is no address either, so its lookup fails and `wg setconf`
 * rejects the whole file. Top-level domains are never all digits (RFC 3696
 * section 2), and labels such as "0x7f" are hex numbers to `inet_aton`.
 */
function isNumericName(name: string): boolean {
  const labels = name.split(".");
  if (/^\d+$/.test(labels.at(-1) as string)) return true;
  return labels.every((label) => /^(?:0x[0-9a-f]*|\d+)$/i.test(label));
}

/** True for a DNS name (RFC 1123 labels) that is not a numeric address in disguise. */
function isHostName(name: string): boolean {
  return HOST_NAME.test(name) && !isNumericName(name);
}

/** Maximum entries in a list field (DNS servers, routes). */
export const MAX_LIST_ENTRIES = 64;

export function validateName(name: string, field: string): string {
  if (!NAME.test(name)) {
    throw invalidField(
      field,
      `"${field}" must be 1-64 characters of letters, digits, '_', '.' and '-', starting with a letter or digit`,
    );
  }
  return name;
}

export function validateDeviceId(value: unknown): string {
  if (typeof value !== "string" || !DEVICE_ID.test(value)) {
    throw invalidField(
      "device_id",
      `"device_id" must be 1-128 characters of letters, digits, '_', '.', ':' and '-'`,
    );
  }
  return value;
}

/** Reads a list field given as an array of strings or one comma-separated string. */
export function stringList(value: unknown, field: string): string[] {
  let items: unknown[];
  if (typeof value === "string") {
    items = value.trim() === "" ? [] : value.split(",").map((item) => item.trim());
  } else if (Array.isArray(value)) {
    items = value;
  } else {
    throw invalidField(field, `"${field}" must be a list of strings or a comma-separated string`);
  }
  if (items.length > MAX_LIST_ENTRIES) {
    throw invalidField(field, `"${field}" has more than ${MAX_LIST_ENTRIES} entries`);
  }
  return items.map((item) => {
    if (typeof item !== "string") throw invalidField(field, `"${field}" must contain strings`);
    return item;
  });
}

export function integerIn(value: unknown, field: string, min: number, max: number): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw invalidField(field, `"${field}" must be an integer from ${min} to ${max}`);
  }
  return value;
}

export function durationSeconds(value: unknown, field: string): number {
  if (typeof value !== "number" && typeof value !== "string") {
    throw invalidField(field, `"${field}" must be seconds or a duration such as "720h"`);
  }
  return parseDuration(value, field);
}

/**
 * Validates an endpoint as `host:port`: an IPv4 address, a bracketed IPv6
 * address or a DNS name, and a port from 1 to 65535. Returns it unchanged.
 */
export function validateEndpoint(value: unknown): string {
  const invalid = () =>
    invalidField(
      "endpoint",
      `"endpoint" must be host:port, such as "203.0.113.7:51820", "[2001:db8::7]:51820" or "vpn.example.com:51820"`,
    );
  if (typeof value !== "string" || value.length > 300) throw invalid();
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(value);
  if (!match) throw invalid();
  const [, ipv6, host, port] = match;
  if (ipv6 !== undefined && isIP(ipv6) !== 6) throw invalid();
  if (host !== undefined && isIP(host) !== 4 && !isHostName(host)) throw invalid();
  const portNumber = Number(port);
  if (portNumber < 1 || portNumber > 65_535 || String(portNumber) !== port) throw invalid();
  return value;
}

/** Validates a wg-quick `DNS` entry: a server address or a search domain. */
export function validateDnsEntry(value: string): string {
  if (value.length > 253 || (isIP(value) === 0 && !isHostName(value))) {
    throw invalidField("dns", `"dns" entries must be IP addresses or DNS names`);
  }
  return value;
}
