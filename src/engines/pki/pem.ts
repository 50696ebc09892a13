import { KeywardError } from "../../errors.ts";
import * as x509 from "./x509.ts";

/** One PEM block: its label (such as `CERTIFICATE`) and its DER content. */
export interface PemBlock {
  label: string;
  der: Buffer;
}

const BEGIN_MARKER = "-----BEGIN ";
const END_MARKER = "-----END ";
const DASHES = "-----";
const BASE64_BODY = /^[A-Za-z0-9+/=\s]*$/;

/** Returns whether `code` is a character of a PEM label as Keyward reads it: A-Z, 0-9 or space. */
function isLabelCharacter(code: number): boolean {
  return (code >= 0x41 && code <= 0x5a) || (code >= 0x30 && code <= 0x39) || code === 0x20;
}

/**
 * Returns the label that starts at `start` and ends at the next `-----`,
 * or undefined when the label is empty or has another character. No label
 * can contain `-`, so each marker has at most one label.
 */
function labelAt(text: string, start: number): string | undefined {
  let end = start;
  while (end < text.length && isLabelCharacter(text.charCodeAt(end))) end++;
  if (end === start || !text.startsWith(DASHES, end)) return undefined;
  return text.slice(start, end);
}

/** The positions of one label's END lines, in order, with a cursor that only moves forward. */
interface EndPositions {
  positions: number[];
  cursor: number;
}

/** Finds every `-----END <label>-----` line in one pass, grouped by label. */
function endPositionsByLabel(text: string): Map<string, EndPositions> {
  const byLabel = new Map<string, EndPositions>();
  for (
    let at = text.indexOf(END_MARKER);
    at !== -1;
    at = text.indexOf(END_MARKER, at + END_MARKER.length)
  ) {
    const label = labelAt(text, at + END_MARKER.length);
    if (label === undefined) continue;
    let entry = byLabel.get(label);
    if (!entry) {
      entry = { positions: [], cursor: 0 };
      byLabel.set(label, entry);
    }
    entry.positions.push(at);
  }
  return byLabel;
}

/**
 * Splits PEM text into `{ label, body }` pairs. A block is a
 * `-----BEGIN <label>-----` line and the first `-----END <label>-----`
 * after it, and text between blocks is ignored. A BEGIN line with no END
 * line of its label is skipped, and the scan goes on after it.
 *
 * The time is linear in the text's length. Searching the rest of the text
 * for the END line of each BEGIN line would be quadratic on text made of
 * unterminated BEGIN lines. So the END lines are found once, up front, and
 * each label's cursor only moves forward because BEGIN lines are read in
 * order.
 */
function scanPemBlocks(text: string): { label: string; body: string }[] {
  const ends = endPositionsByLabel(text);
  const blocks: { label: string; body: string }[] = [];
  let begin = text.indexOf(BEGIN_MARKER);
  while (begin !== -1) {
    let next = begin + BEGIN_MARKER.length;
    const label = labelAt(text, next);
    if (label !== undefined) {
      let bodyStart = next + label.length + DASHES.length;
      if (text.startsWith("\r\n", bodyStart)) bodyStart += 2;
      else if (text.startsWith("\n", bodyStart)) bodyStart += 1;
      else bodyStart = -1;
      const entry = bodyStart === -1 ? undefined : ends.get(label);
      if (entry) {
        while (
          entry.cursor < entry.positions.length &&
          entry.positions[entry.cursor]! < bodyStart
        ) {
          entry.cursor++;
        }
        const end = entry.positions[entry.cursor];
        if (end !== undefined) {
          blocks.push({ label, body: text.slice(bodyStart, end) });
          next = end + END_MARKER.length + label.length + DASHES.length;
        }
      }
    }
    begin = text.indexOf(BEGIN_MARKER, next);
  }
  return blocks;
}

/** Splits PEM text into its blocks. Throws `invalid_certificate` naming `field` when there are none or a body is not base64. */
export function readPemBlocks(text: string, field: string): PemBlock[] {
  const blocks: PemBlock[] = [];
  for (const { label, body } of scanPemBlocks(text)) {
    if (!BASE64_BODY.test(body)) {
      throw new KeywardError(
        "invalid_certificate",
        `"${field}" contains a PEM block that is not base64`,
        {
          field,
        },
      );
    }
    blocks.push({ label, der: Buffer.from(body.replace(/\s+/g, ""), "base64") });
  }
  if (blocks.length === 0) {
    throw new KeywardError("invalid_certificate", `"${field}" contains no PEM block`, { field });
  }
  return blocks;
}

/** Encodes DER as PEM with the given label, in 64-character lines. */
export function toPem(der: ArrayBuffer | Uint8Array, label: string): string {
  const base64 = Buffer.from(der as ArrayBuffer).toString("base64");
  const lines = base64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----`;
}

/** Parses one DER certificate, throwing `invalid_certificate` naming `field`. */
export function parseCertificateDer(der: Uint8Array, field: string): x509.X509Certificate {
  try {
    return new x509.X509Certificate(der);
  } catch (error) {
    throw new KeywardError(
      "invalid_certificate",
      `"${field}" contains a certificate that cannot be parsed`,
      {
        field,
        cause: error,
      },
    );
  }
}

/** Parses the certificates in PEM text, in order, ignoring other blocks. */
export function parseCertificates(text: string, field: string): x509.X509Certificate[] {
  return readPemBlocks(text, field)
    .filter((block) => block.label === "CERTIFICATE")
    .map((block) => parseCertificateDer(block.der, field));
}

/** Returns the DER of a PEM (or base64 DER) certificate signing request, throwing `invalid_certificate` naming `field`. */
export function csrDer(text: string, field = "csr"): Buffer {
  if (!text.includes("-----BEGIN")) return Buffer.from(text, "base64");
  const block = readPemBlocks(text, field).find((candidate) =>
    ["CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"].includes(candidate.label),
  );
  if (!block) {
    throw new KeywardError(
      "invalid_certificate",
      `"${field}" contains no CERTIFICATE REQUEST block`,
      {
        field,
      },
    );
  }
  return block.der;
}
