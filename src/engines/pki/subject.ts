import { childrenOf, contentOf, decodeOid, readElement } from "./der.ts";
import { oid as derOid, directoryString, element, ia5String, sequence, TAG } from "./der-writer.ts";
import { splitList } from "./names.ts";
import type * as x509 from "./x509.ts";

/** Subject fields as Vault's CA and role endpoints name them; list fields as arrays or comma-separated strings. */
export interface SubjectFields {
  common_name?: string;
  ou?: string[] | string;
  organization?: string[] | string;
  country?: string[] | string;
  locality?: string[] | string;
  province?: string[] | string;
  street_address?: string[] | string;
  postal_code?: string[] | string;
  serial_number?: string;
}

/**
 * Builds a subject name in the attribute order Go's crypto/x509 writes, so
 * certificates look like Vault's: C, ST, L, street, postalCode, O, OU, CN,
 * serialNumber. Empty fields are left out.
 */
export function buildSubject(fields: SubjectFields): x509.JsonName {
  const name: x509.JsonName = [];
  const add = (type: string, values: string[]) => {
    for (const value of values) name.push({ [type]: [value] });
  };
  add("C", splitList(fields.country));
  add("ST", splitList(fields.province));
  add("L", splitList(fields.locality));
  add("2.5.4.9", splitList(fields.street_address));
  add("2.5.4.17", splitList(fields.postal_code));
  add("O", splitList(fields.organization));
  add("OU", splitList(fields.ou));
  if (fields.common_name) add("CN", [fields.common_name]);
  if (fields.serial_number) add("2.5.4.5", [fields.serial_number]);
  return name;
}

/** OIDs of the attribute short names `buildSubject` and @peculiar/x509 use. */
const ATTRIBUTE_OIDS: Record<string, string> = {
  CN: "2.5.4.3",
  L: "2.5.4.7",
  ST: "2.5.4.8",
  O: "2.5.4.10",
  OU: "2.5.4.11",
  C: "2.5.4.6",
  DC: "0.9.2342.19200300.100.1.25",
  E: "1.2.840.113549.1.9.1",
  G: "2.5.4.42",
  I: "2.5.4.43",
  SN: "2.5.4.4",
  T: "2.5.4.12",
};
const ATTRIBUTE_NAMES = new Map(Object.entries(ATTRIBUTE_OIDS).map(([name, oid]) => [oid, name]));
/** Attributes whose values are IA5String (RFC 5280 appendix A.1). */
const IA5_ATTRIBUTES = new Set([ATTRIBUTE_OIDS.E, ATTRIBUTE_OIDS.DC]);

/**
 * Encodes a subject as a DER Name. Each entry is one RDN; values are
 * PrintableString when every character allows it and UTF8String otherwise,
 * except email and domain components, which are IA5String. Values are
 * written as given, without string-representation unescaping.
 */
export function encodeName(name: x509.JsonName): Buffer {
  const rdns = name.map((rdn) => {
    const attributes: Buffer[] = [];
    for (const [type, values] of Object.entries(rdn)) {
      const oid = ATTRIBUTE_OIDS[type] ?? type;
      for (const value of values) {
        const encoded = IA5_ATTRIBUTES.has(oid) ? ia5String(value) : directoryString(value);
        attributes.push(sequence(derOid(oid), encoded));
      }
    }
    // DER orders the members of a SET OF by their encodings.
    return element(TAG.set, ...attributes.sort(Buffer.compare));
  });
  return sequence(...rdns);
}

/** Returns true when the subject has no attributes. */
export function isEmptyName(name: x509.JsonName): boolean {
  return name.every((rdn) => Object.values(rdn).every((values) => values.length === 0));
}

function escapeValue(value: string): string {
  return value
    .replace(/([,+"\\<>;])/g, "\\$1")
    .replace(/^([ #])/, "\\$1")
    .replace(/ $/, "\\ ")
    .replace(
      /[\r\n\t]/g,
      (character) => `\\${character.charCodeAt(0).toString(16).padStart(2, "0")}`,
    );
}

/** Formats a subject as @peculiar/x509 does for inventory search: `C=US, O=Example, CN=web`, unknown types by OID. */
export function formatName(name: x509.JsonName): string {
  return name
    .map((rdn) =>
      Object.entries(rdn)
        .flatMap(([type, values]) => {
          const label = ATTRIBUTE_NAMES.get(ATTRIBUTE_OIDS[type] ?? type) ?? type;
          return values.map((value) => `${label}=${escapeValue(value)}`);
        })
        .join("+"),
    )
    .join(", ");
}

const BMP_STRING = 0x1e;
const UNIVERSAL_STRING = 0x1c;

/** Decodes a directory string value; TeletexString and the other 8-bit forms are read as Latin-1. */
function decodeString(tag: number, content: Uint8Array): string {
  const bytes = Buffer.from(content);
  if (tag === TAG.utf8String) return bytes.toString("utf8");
  if (tag === BMP_STRING) return bytes.swap16().toString("utf16le");
  if (tag === UNIVERSAL_STRING) {
    const points: number[] = [];
    for (let i = 0; i + 3 < bytes.length; i += 4) points.push(bytes.readUInt32BE(i));
    return String.fromCodePoint(...points);
  }
  return bytes.toString("latin1");
}

/** Returns the first value of attribute `oid` in a DER Name, or undefined. Throws RangeError on malformed DER. */
export function firstAttribute(nameDer: Uint8Array, oid: string): string | undefined {
  for (const rdn of childrenOf(nameDer, readElement(nameDer, 0))) {
    for (const attribute of childrenOf(nameDer, rdn)) {
      const [type, value] = childrenOf(nameDer, attribute);
      if (type?.tag !== TAG.oid || !value) continue;
      if (decodeOid(contentOf(nameDer, type)) === oid) {
        return decodeString(value.tag, contentOf(nameDer, value));
      }
    }
  }
  return undefined;
}
