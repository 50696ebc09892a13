import { KeywardError } from "../../errors.ts";

/** One DER element: its tag and where its header and content sit in the buffer. */
export interface DerElement {
  tag: number;
  start: number;
  contentStart: number;
  end: number;
}

/** Reads the element at `offset`; throws RangeError when it is truncated or its length form is unsupported. */
export function readElement(bytes: Uint8Array, offset: number): DerElement {
  const tag = bytes[offset];
  let lengthByte = bytes[offset + 1];
  if (tag === undefined || lengthByte === undefined) throw new RangeError("truncated DER");
  let length = lengthByte;
  let contentStart = offset + 2;
  if (lengthByte & 0x80) {
    const count = lengthByte & 0x7f;
    if (count === 0 || count > 4) throw new RangeError("unsupported DER length");
    length = 0;
    for (let i = 0; i < count; i++) {
      lengthByte = bytes[contentStart + i];
      if (lengthByte === undefined) throw new RangeError("truncated DER");
      length = length * 256 + lengthByte;
    }
    contentStart += count;
  }
  const end = contentStart + length;
  if (end > bytes.length) throw new RangeError("truncated DER");
  return { tag, start: offset, contentStart, end };
}

/** Returns the elements directly inside a constructed element, in order. */
export function childrenOf(bytes: Uint8Array, parent: DerElement): DerElement[] {
  const children: DerElement[] = [];
  let offset = parent.contentStart;
  while (offset < parent.end) {
    const child = readElement(bytes, offset);
    if (child.end > parent.end) throw new RangeError("DER element overruns its parent");
    children.push(child);
    offset = child.end;
  }
  return children;
}

/** Returns an element's content octets (without tag and length). */
export function contentOf(bytes: Uint8Array, element: DerElement): Uint8Array {
  return bytes.subarray(element.contentStart, element.end);
}

/** Returns an element's whole encoding (tag, length and content). */
export function encodingOf(bytes: Uint8Array, element: DerElement): Uint8Array {
  return bytes.subarray(element.start, element.end);
}

/** Decodes the content of an OBJECT IDENTIFIER to dotted form. */
export function decodeOid(content: Uint8Array): string {
  const arcs: number[] = [];
  let value = 0;
  for (const byte of content) {
    value = value * 128 + (byte & 0x7f);
    if ((byte & 0x80) === 0) {
      if (arcs.length === 0) {
        const first = value < 80 ? Math.floor(value / 40) : 2;
        arcs.push(first, value - first * 40);
      } else {
        arcs.push(value);
      }
      value = 0;
    }
  }
  if (content.length === 0 || (content[content.length - 1]! & 0x80) !== 0) {
    throw new RangeError("truncated OBJECT IDENTIFIER");
  }
  return arcs.join(".");
}

/** The encoded names of a certificate, exactly as they appear in its DER. */
export interface CertificateNames {
  issuer: Uint8Array;
  subject: Uint8Array;
  /** The subjectPublicKeyInfo, DER. */
  spki: Uint8Array;
}

/**
 * Returns the issuer, subject and public key of a DER certificate as their
 * original bytes. Parsing and re-encoding a name can change its bytes (for
 * example a string type), and RFC 5280 name chaining compares the encoded
 * names, so the issuer name of a new certificate is copied from here.
 */
export function certificateNames(der: Uint8Array): CertificateNames {
  try {
    const certificate = readElement(der, 0);
    const tbs = readElement(der, certificate.contentStart);
    let offset = tbs.contentStart;
    const fields: DerElement[] = [];
    while (offset < tbs.end && fields.length < 7) {
      const element = readElement(der, offset);
      fields.push(element);
      offset = element.end;
    }
    // TBSCertificate: [0] version (optional), serial, signature, issuer, validity, subject, spki.
    const first = fields[0]?.tag === 0xa0 ? 1 : 0;
    const issuer = fields[first + 2];
    const subject = fields[first + 4];
    const spki = fields[first + 5];
    if (!issuer || !subject || !spki) throw new RangeError("missing certificate fields");
    return {
      issuer: der.subarray(issuer.start, issuer.end),
      subject: der.subarray(subject.start, subject.end),
      spki: der.subarray(spki.start, spki.end),
    };
  } catch (error) {
    throw new KeywardError("invalid_certificate", "the certificate's DER encoding is invalid", {
      cause: error,
    });
  }
}
