import { randomBytes } from "node:crypto";
import { KeywardError } from "../../../errors.ts";

/**
 * Base64 alphabet with padding, with line breaks and spaces allowed between characters.
 * Whitespace after the padding is matched only once a `=` is present, so no two parts of
 * the pattern can match the same spaces. A body of many spaces and one bad character
 * then fails in linear time. Overlapping parts would backtrack in quadratic time and
 * block the event loop for minutes on a 1 MiB body.
 */
const BASE64_TEXT = /^[A-Za-z0-9+/\s]*(?:={1,2}\s*)?$/;

/** Characters per base64 line in responses; `openssl base64 -d` reads lines of up to 64 characters. */
const LINE_LENGTH = 64;

/**
 * Decodes an EST request body: base64 of DER, as RFC 7030 section 3.2.2
 * and RFC 8951 require, with any line breaks. Throws `invalid_base64`
 * when the body is empty, contains other characters or has a length that
 * is not a multiple of four.
 */
export function decodeBase64Body(body: string): Buffer {
  const compact = body.replace(/\s+/g, "");
  if (compact === "" || !BASE64_TEXT.test(body) || compact.length % 4 !== 0) {
    throw new KeywardError(
      "invalid_base64",
      "the request body is not base64; send the DER CSR encoded as base64",
      { field: "csr" },
    );
  }
  return Buffer.from(compact, "base64");
}

/** Encodes DER as base64 in lines of 64 characters, each ending in CRLF. */
export function encodeBase64Body(der: Uint8Array): string {
  const text = Buffer.from(der).toString("base64");
  return `${(text.match(new RegExp(`.{1,${LINE_LENGTH}}`, "g")) ?? []).join("\r\n")}\r\n`;
}

/** One body part of a multipart response. */
export interface BodyPart {
  contentType: string;
  der: Uint8Array;
}

/**
 * Builds a multipart/mixed body (RFC 2046 section 5.1) of base64 parts, as
 * serverkeygen returns its key and certificate (RFC 7030 section 4.4.2).
 * Each part carries `Content-Transfer-Encoding: base64`, as in the
 * examples of RFC 7030, for clients written before RFC 8951. Returns the
 * body and the Content-Type header with its boundary.
 */
export function multipartMixed(parts: BodyPart[]): { contentType: string; body: string } {
  // Base64 text never contains "-", so no part can contain the boundary.
  const boundary = `est-${randomBytes(12).toString("hex")}`;
  const sections = parts.map(
    (part) =>
      `--${boundary}\r\nContent-Type: ${part.contentType}\r\nContent-Transfer-Encoding: base64\r\n\r\n${encodeBase64Body(part.der)}`,
  );
  return {
    contentType: `multipart/mixed; boundary=${boundary}`,
    body: `${sections.join("")}--${boundary}--\r\n`,
  };
}
