import { KeywardError } from "../../errors.ts";
import * as x509 from "./x509.ts";

/** One PEM block: its label (such as `CERTIFICATE`) and its DER content. */
export interface PemBlock {
  label: string;
  der: Buffer;
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END \1-----/g;
const BASE64_BODY = /^[A-Za-z0-9+/=\s]*$/;

/** Splits PEM text into its blocks. Throws `invalid_certificate` naming `field` when there are none or a body is not base64. */
export function readPemBlocks(text: string, field: string): PemBlock[] {
  const blocks: PemBlock[] = [];
  for (const match of text.matchAll(PEM_BLOCK)) {
    const body = match[2] ?? "";
    if (!BASE64_BODY.test(body)) {
      throw new KeywardError(
        "invalid_certificate",
        `"${field}" contains a PEM block that is not base64`,
        {
          field,
        },
      );
    }
    blocks.push({ label: match[1]!, der: Buffer.from(body.replace(/\s+/g, ""), "base64") });
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
