import { isIP } from "node:net";
import { isHostname, toAsciiHostname } from "../names.ts";
import { AcmeProblem } from "./problems.ts";
import type { Identifier } from "./records.ts";

/** Identifiers one order may carry at most. */
export const MAX_IDENTIFIERS = 100;

/** Returns an IP address in canonical form: dotted quad, or compressed lower-case IPv6; undefined when invalid. */
export function canonicalIp(value: string): string | undefined {
  const version = isIP(value);
  if (version === 4) {
    const canonical = value
      .split(".")
      .map((octet) => String(Number(octet)))
      .join(".");
    return canonical === value ? value : undefined;
  }
  if (version === 6) return new URL(`http://[${value}]/`).hostname.slice(1, -1);
  return undefined;
}

/** Returns `type:value`, the key identifiers are compared by. */
export function identifierKey(identifier: Identifier): string {
  return `${identifier.type}:${identifier.value}`;
}

/** Checks one identifier of a new order and returns it in canonical form. */
export function readIdentifier(value: unknown): Identifier {
  if (value === null || typeof value !== "object") {
    throw new AcmeProblem("malformed", "each identifier must be an object with type and value");
  }
  const { type, value: raw } = value as { type?: unknown; value?: unknown };
  if (typeof raw !== "string" || raw === "") {
    throw new AcmeProblem("malformed", 'each identifier must have a string "value"');
  }
  if (type === "ip") {
    const ip = canonicalIp(raw);
    if (ip === undefined) {
      throw new AcmeProblem("malformed", `"${raw}" is not an IP address in canonical form`, {
        identifier: { type, value: raw },
      });
    }
    return { type: "ip", value: ip };
  }
  if (type !== "dns") {
    throw new AcmeProblem(
      "unsupportedIdentifier",
      `identifier type "${String(type)}" is not supported; use dns or ip`,
    );
  }
  const lower = raw.toLowerCase();
  const ascii = toAsciiHostname(lower);
  if (
    ascii === undefined ||
    !isHostname(ascii) ||
    ascii.slice(2).includes("*") ||
    isIP(raw) !== 0
  ) {
    throw new AcmeProblem("rejectedIdentifier", `"${raw}" is not a valid DNS name`, {
      identifier: { type: "dns", value: raw },
    });
  }
  return { type: "dns", value: ascii };
}

/** Checks a new order's `identifiers` and returns them canonical and without duplicates. */
export function readIdentifiers(value: unknown): Identifier[] {
  if (!Array.isArray(value) || value.length === 0) {
    throw new AcmeProblem("malformed", '"identifiers" must be a non-empty array');
  }
  if (value.length > MAX_IDENTIFIERS) {
    throw new AcmeProblem(
      "rejectedIdentifier",
      `an order may have at most ${MAX_IDENTIFIERS} identifiers`,
    );
  }
  const seen = new Map<string, Identifier>();
  for (const item of value) {
    const identifier = readIdentifier(item);
    seen.set(identifierKey(identifier), identifier);
  }
  return [...seen.values()];
}

/**
 * Returns what an identifier is authorized by: the base name with
 * `wildcard: true` for `*.<name>` (RFC 8555 section 7.1.3), the identifier
 * itself otherwise.
 */
export function authorizationTarget(identifier: Identifier): {
  identifier: Identifier;
  wildcard: boolean;
} {
  if (identifier.type === "dns" && identifier.value.startsWith("*.")) {
    return { identifier: { type: "dns", value: identifier.value.slice(2) }, wildcard: true };
  }
  return { identifier, wildcard: false };
}

/** Returns the DNS name used in TLS SNI and PTR form for an IP identifier (RFC 8738 section 6). */
export function reverseName(ip: string): string {
  if (isIP(ip) === 4) return `${ip.split(".").reverse().join(".")}.in-addr.arpa`;
  const groups = new URL(`http://[${ip}]/`).hostname.slice(1, -1);
  const expanded = expandIpv6(groups);
  return `${expanded.replace(/:/g, "").split("").reverse().join(".")}.ip6.arpa`;
}

function expandIpv6(ip: string): string {
  const [head = "", tail] = ip.split("::");
  const headGroups = head === "" ? [] : head.split(":");
  const tailGroups = tail === undefined || tail === "" ? [] : tail.split(":");
  const missing = 8 - headGroups.length - tailGroups.length;
  const groups = [...headGroups, ...Array(Math.max(missing, 0)).fill("0"), ...tailGroups];
  return groups.map((group) => group.padStart(4, "0")).join(":");
}
