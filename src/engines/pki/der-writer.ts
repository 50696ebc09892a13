/**
 * A small DER encoder (X.690) for the fixed shapes of certificates:
 * tag-length-value elements, INTEGER, OBJECT IDENTIFIER, strings and times.
 * It builds byte arrays directly, which is much cheaper than an ASN.1
 * object model, and certificates are issued on the hot path.
 */

/** Universal and context-specific tags used by the certificate encoder. */
export const TAG = {
  boolean: 0x01,
  integer: 0x02,
  bitString: 0x03,
  octetString: 0x04,
  null: 0x05,
  oid: 0x06,
  utf8String: 0x0c,
  printableString: 0x13,
  ia5String: 0x16,
  utcTime: 0x17,
  generalizedTime: 0x18,
  sequence: 0x30,
  set: 0x31,
} as const;

/** Returns the tag of a context-specific element: `[number]`, constructed or primitive. */
export function contextTag(number: number, constructed: boolean): number {
  return (constructed ? 0xa0 : 0x80) | number;
}

function lengthBytes(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);
  const bytes: number[] = [];
  for (let rest = length; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** Encodes one element: `tag`, the DER length and the concatenated `contents`. */
export function element(tag: number, ...contents: Uint8Array[]): Buffer {
  const body = contents.length === 1 ? contents[0]! : Buffer.concat(contents);
  return Buffer.concat([Buffer.from([tag]), lengthBytes(body.length), body]);
}

export function sequence(...contents: Uint8Array[]): Buffer {
  return element(TAG.sequence, ...contents);
}

export function octetString(value: Uint8Array): Buffer {
  return element(TAG.octetString, value);
}

/** Encodes a BIT STRING whose bits fill whole bytes (no unused bits), such as a signature. */
export function bitString(value: Uint8Array): Buffer {
  return element(TAG.bitString, Buffer.from([0]), value);
}

export const DER_TRUE = Buffer.from([TAG.boolean, 1, 0xff]);
export const DER_NULL = Buffer.from([TAG.null, 0]);

/** Encodes a non-negative INTEGER from its unsigned big-endian bytes, minimally. */
export function unsignedInteger(bytes: Uint8Array): Buffer {
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start += 1;
  const trimmed = bytes.subarray(start);
  const padded =
    trimmed.length === 0 || trimmed[0]! & 0x80
      ? Buffer.concat([Buffer.from([0]), trimmed])
      : trimmed;
  return element(TAG.integer, padded);
}

export function smallInteger(value: number): Buffer {
  const bytes: number[] = [];
  for (let rest = value; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest & 0xff);
  return unsignedInteger(Buffer.from(bytes.length === 0 ? [0] : bytes));
}

const oidCache = new Map<string, Buffer>();

/** Encodes a dotted OBJECT IDENTIFIER; encodings are cached, as certificates reuse a few dozen OIDs. */
export function oid(dotted: string): Buffer {
  const cached = oidCache.get(dotted);
  if (cached) return cached;
  const arcs = dotted.split(".").map(Number);
  if (arcs.length < 2 || arcs.some((arc) => !Number.isSafeInteger(arc) || arc < 0)) {
    throw new RangeError(`invalid OID ${dotted}`);
  }
  const bytes: number[] = [];
  const values = [arcs[0]! * 40 + arcs[1]!, ...arcs.slice(2)];
  for (const value of values) {
    const groups: number[] = [value & 0x7f];
    for (let rest = Math.floor(value / 128); rest > 0; rest = Math.floor(rest / 128)) {
      groups.unshift((rest & 0x7f) | 0x80);
    }
    bytes.push(...groups);
  }
  const encoded = element(TAG.oid, Buffer.from(bytes));
  if (oidCache.size < 1024) oidCache.set(dotted, encoded);
  return encoded;
}

const PRINTABLE = /^[A-Za-z0-9 '()+,\-./:=?]*$/;

/** Encodes a directory string: PrintableString when every character allows it, UTF8String otherwise. */
export function directoryString(value: string): Buffer {
  return PRINTABLE.test(value)
    ? element(TAG.printableString, Buffer.from(value, "latin1"))
    : element(TAG.utf8String, Buffer.from(value, "utf8"));
}

export function ia5String(value: string, tag: number = TAG.ia5String): Buffer {
  return element(tag, Buffer.from(value, "latin1"));
}

/** First year RFC 5280 section 4.1.2.5 encodes as GeneralizedTime instead of UTCTime. */
const GENERALIZED_TIME_FROM_YEAR = 2050;

/**
 * Encodes a certificate time in whole seconds (RFC 5280 section 4.1.2.5):
 * UTCTime through 2049, GeneralizedTime from 2050 and before 1950.
 */
export function time(date: Date): Buffer {
  const iso = date.toISOString();
  const year = date.getUTCFullYear();
  // ISO form YYYY-MM-DDTHH:MM:SS.sssZ, with a four-digit year for 0-9999.
  const digits = `${iso.slice(5, 7)}${iso.slice(8, 10)}${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
  if (year >= 1950 && year < GENERALIZED_TIME_FROM_YEAR) {
    return element(TAG.utcTime, Buffer.from(`${iso.slice(2, 4)}${digits}`, "latin1"));
  }
  return element(TAG.generalizedTime, Buffer.from(`${iso.slice(0, 4)}${digits}`, "latin1"));
}
