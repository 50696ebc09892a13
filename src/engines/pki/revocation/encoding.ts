import { KeywardError } from "../../../errors.ts";

const SERIAL_HEX = /^[0-9a-f]+$/;

/**
 * Converts a serial in lower-case hex to the content octets of a positive
 * DER INTEGER: leading zero octets removed, and one zero octet added when
 * the high bit is set. Throws `invalid_request` for other text.
 */
export function serialHexToInteger(serialHex: string): Uint8Array {
  if (!SERIAL_HEX.test(serialHex)) {
    throw new KeywardError(
      "invalid_request",
      `serial ${JSON.stringify(serialHex)} is not lower-case hex without colons`,
    );
  }
  const padded = serialHex.length % 2 === 0 ? serialHex : `0${serialHex}`;
  let bytes = Buffer.from(padded, "hex");
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  bytes = bytes.subarray(start);
  if ((bytes[0] ?? 0) > 0x7f) bytes = Buffer.concat([Buffer.of(0), bytes]);
  return new Uint8Array(bytes);
}

/**
 * Drops the milliseconds. RFC 5280 section 4.1.2.5.2 forbids fractional
 * seconds in GeneralizedTime, and OCSP times are written the same way.
 */
export function wholeSeconds(date: Date): Date {
  return new Date(Math.floor(date.getTime() / 1000) * 1000);
}
