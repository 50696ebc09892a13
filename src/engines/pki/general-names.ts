import { isIPv4, isIPv6 } from "node:net";
import { childrenOf, contentOf, readElement } from "./der.ts";
import { contextTag, element, ia5String, oid, TAG } from "./der-writer.ts";
import { type AltName, parseOtherSan } from "./names.ts";

/** GeneralName choices (RFC 5280 section 4.2.1.6) by their context tag number. */
const GENERAL_NAME = { rfc822Name: 1, dNSName: 2, uniformResourceIdentifier: 6, iPAddress: 7 };

/** Encodes one subject alternative name as a GeneralName. */
export function encodeGeneralName(name: AltName): Buffer {
  switch (name.type) {
    case "dns":
      return ia5String(name.value, contextTag(GENERAL_NAME.dNSName, false));
    case "email":
      return ia5String(name.value, contextTag(GENERAL_NAME.rfc822Name, false));
    case "url":
      return ia5String(name.value, contextTag(GENERAL_NAME.uniformResourceIdentifier, false));
    case "ip":
      return element(contextTag(GENERAL_NAME.iPAddress, false), ipAddressBytes(name.value));
    case "other": {
      // otherName ::= SEQUENCE { type-id OID, value [0] EXPLICIT ANY }, implicitly tagged [0].
      const other = parseOtherSan(name.value, "other_sans");
      const value = element(TAG.utf8String, Buffer.from(other.value, "utf8"));
      return element(contextTag(0, true), oid(other.oid), element(contextTag(0, true), value));
    }
  }
}

/**
 * Reads the DNS, email, URI and IP names of a DER GeneralNames sequence;
 * other name forms are skipped. Throws RangeError on malformed DER.
 */
export function readGeneralNames(der: Uint8Array): AltName[] {
  const names: AltName[] = [];
  for (const name of childrenOf(der, readElement(der, 0))) {
    const value = contentOf(der, name);
    switch (name.tag) {
      case contextTag(GENERAL_NAME.dNSName, false):
        names.push({ type: "dns", value: Buffer.from(value).toString("latin1") });
        break;
      case contextTag(GENERAL_NAME.rfc822Name, false):
        names.push({ type: "email", value: Buffer.from(value).toString("latin1") });
        break;
      case contextTag(GENERAL_NAME.uniformResourceIdentifier, false):
        names.push({ type: "url", value: Buffer.from(value).toString("latin1") });
        break;
      case contextTag(GENERAL_NAME.iPAddress, false):
        if (value.length === 4 || value.length === 16) {
          names.push({ type: "ip", value: formatIpAddress(value) });
        }
        break;
    }
  }
  return names;
}

/** Returns the 4 or 16 octets of an IPv4 or IPv6 address; throws RangeError for anything else. */
export function ipAddressBytes(ip: string): Buffer {
  if (isIPv4(ip)) return Buffer.from(ip.split(".").map(Number));
  if (!isIPv6(ip)) throw new RangeError(`${ip} is not an IP address`);
  let text = ip.replace(/%.*$/, "");
  // An embedded IPv4 suffix (::ffff:192.0.2.1) becomes two 16-bit groups.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const octets = v4[1]!.split(".").map(Number);
    const high = ((octets[0]! << 8) | octets[1]!).toString(16);
    const low = ((octets[2]! << 8) | octets[3]!).toString(16);
    text = `${text.slice(0, v4.index)}${high}:${low}`;
  }
  const [head, tail] = text.includes("::") ? text.split("::") : [text, undefined];
  const headGroups = head ? head.split(":") : [];
  const tailGroups = tail ? tail.split(":") : [];
  const missing = 8 - headGroups.length - tailGroups.length;
  const groups = [
    ...headGroups,
    ...Array<string>(tail === undefined ? 0 : missing).fill("0"),
    ...tailGroups,
  ];
  const bytes = Buffer.alloc(16);
  for (const [index, group] of groups.entries()) {
    bytes.writeUInt16BE(Number.parseInt(group, 16), index * 2);
  }
  return bytes;
}

/**
 * Formats 4 or 16 address octets as text. IPv6 takes the RFC 5952 form:
 * lower case, the longest run of zero groups as `::`, and IPv4-mapped
 * addresses in mixed notation (`::ffff:192.0.2.1`).
 */
export function formatIpAddress(bytes: Uint8Array): string {
  if (bytes.length === 4) return Array.from(bytes).join(".");
  const mapped = bytes.subarray(0, 10).every((byte) => byte === 0) && bytes[10] === 0xff;
  if (mapped && bytes[11] === 0xff) return `::ffff:${Array.from(bytes.subarray(12)).join(".")}`;
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i]! << 8) | bytes[i + 1]!);
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i += 1;
      continue;
    }
    let end = i;
    while (end < 8 && groups[end] === 0) end += 1;
    if (end - i > bestLength) {
      bestStart = i;
      bestLength = end - i;
    }
    i = end;
  }
  const hex = groups.map((group) => group.toString(16));
  if (bestStart < 0) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLength).join(":")}`;
}
