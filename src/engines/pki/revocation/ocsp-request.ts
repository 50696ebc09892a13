import { createHash } from "node:crypto";
import { id_pkix_ocsp_nonce, OCSPRequest, type Request } from "@peculiar/asn1-ocsp";
import { AsnConvert } from "@peculiar/asn1-schema";
import { KeywardError } from "../../../errors.ts";
import type * as x509 from "../x509.ts";
import { subjectNameDer, subjectPublicKeyBits } from "./certificate-fields.ts";

/**
 * Largest OCSP request accepted, in bytes. OpenSSL 3.0's request for one
 * certificate with a nonce is 105 bytes (SHA-1 CertID) or 135 bytes
 * (SHA-256), so this leaves room for `MAX_OCSP_CERT_IDS` CertIDs.
 */
export const MAX_OCSP_REQUEST_BYTES = 16 * 1024;

/** Largest number of CertIDs accepted in one request. */
export const MAX_OCSP_CERT_IDS = 64;

/**
 * Largest nonce extension value accepted, in bytes. RFC 8954 capped the
 * nonce at 32 octets, and RFC 9654, which replaced it, allows longer nonces.
 * Keyward's bound only limits what a response echoes.
 */
export const MAX_OCSP_NONCE_BYTES = 128;

type HashName = "sha1" | "sha256" | "sha384" | "sha512";

/** CertID hash algorithms by OID, with their digest length in bytes. */
const HASHES: ReadonlyMap<string, { name: HashName; length: number }> = new Map([
  ["1.3.14.3.2.26", { name: "sha1", length: 20 }],
  ["2.16.840.1.101.3.4.2.1", { name: "sha256", length: 32 }],
  ["2.16.840.1.101.3.4.2.2", { name: "sha384", length: 48 }],
  ["2.16.840.1.101.3.4.2.3", { name: "sha512", length: 64 }],
]);

/** One CertID from an OCSP request (RFC 6960 section 4.1.1). */
export interface OcspCertId {
  hashAlgorithm: HashName;
  issuerNameHash: Uint8Array;
  issuerKeyHash: Uint8Array;
  /** Serial in lower-case hex, in the same form as `x509.X509Certificate.serialNumber`. */
  serialHex: string;
  /** DER of the CertID, echoed in the response. */
  der: Uint8Array;
}

export interface OcspRequestInfo {
  certIds: OcspCertId[];
  /** Value of the nonce extension, exactly as received, for the response to echo. */
  nonce?: Uint8Array;
}

function invalid(message: string, cause?: unknown): KeywardError {
  return new KeywardError("invalid_request", message, cause === undefined ? {} : { cause });
}

/**
 * Parses a DER OCSPRequest (RFC 6960 section 4.1). Throws
 * `invalid_request`, with a message naming the problem, for an empty,
 * oversized or malformed request, for one without CertIDs or with more than
 * `MAX_OCSP_CERT_IDS`, and for a CertID with an unsupported hash algorithm,
 * wrong hash lengths or a negative serial. A request signature is not
 * checked, because Keyward's responder does not require signed requests.
 */
export function parseOcspRequest(der: Uint8Array): OcspRequestInfo {
  if (der.byteLength === 0) throw invalid("OCSP request is empty");
  if (der.byteLength > MAX_OCSP_REQUEST_BYTES) {
    throw invalid(
      `OCSP request is ${der.byteLength} bytes, more than the ${MAX_OCSP_REQUEST_BYTES}-byte limit`,
    );
  }

  let request: OCSPRequest;
  let encodedLength: number;
  try {
    request = AsnConvert.parse(der, OCSPRequest);
    encodedLength = AsnConvert.serialize(request).byteLength;
  } catch (error) {
    throw invalid("OCSP request is not a valid DER OCSPRequest", error);
  }
  // asn1-schema ignores bytes after the outer SEQUENCE, and encoding the
  // parsed value again gives the DER length, so a difference means trailing
  // bytes or a non-DER encoding.
  if (encodedLength !== der.byteLength) {
    throw invalid("OCSP request has trailing bytes or is not DER");
  }

  const requests = request.tbsRequest.requestList;
  if (requests.length === 0) throw invalid("OCSP request contains no CertID");
  if (requests.length > MAX_OCSP_CERT_IDS) {
    throw invalid(
      `OCSP request contains ${requests.length} CertIDs, more than the limit of ${MAX_OCSP_CERT_IDS}`,
    );
  }

  const info: OcspRequestInfo = { certIds: requests.map((item, index) => readCertId(item, index)) };
  const nonce = readNonce(request);
  if (nonce) info.nonce = nonce;
  return info;
}

function readCertId(request: Request, index: number): OcspCertId {
  const certId = request.reqCert;
  const label = `CertID ${index + 1}`;
  const oid = certId.hashAlgorithm.algorithm;
  const hash = HASHES.get(oid);
  if (!hash) {
    throw invalid(
      `${label} uses unsupported hash algorithm ${oid}. Use SHA-1, SHA-256, SHA-384 or SHA-512`,
    );
  }
  const issuerNameHash = new Uint8Array(certId.issuerNameHash.buffer);
  const issuerKeyHash = new Uint8Array(certId.issuerKeyHash.buffer);
  if (issuerNameHash.length !== hash.length || issuerKeyHash.length !== hash.length) {
    throw invalid(`${label} has issuer hashes of the wrong length for ${hash.name}`);
  }

  const serial = new Uint8Array(certId.serialNumber);
  if (serial.length === 0) throw invalid(`${label} has an empty serial number`);
  if ((serial[0] ?? 0) > 0x7f) throw invalid(`${label} has a negative serial number`);
  // DER gives a positive INTEGER a leading zero octet only as a sign octet.
  const magnitude = serial.length > 1 && serial[0] === 0 ? serial.subarray(1) : serial;

  return {
    hashAlgorithm: hash.name,
    issuerNameHash,
    issuerKeyHash,
    serialHex: Buffer.from(magnitude).toString("hex"),
    der: new Uint8Array(AsnConvert.serialize(certId)),
  };
}

function readNonce(request: OCSPRequest): Uint8Array | undefined {
  const nonces = (request.tbsRequest.requestExtensions ?? []).filter(
    (extension) => extension.extnID === id_pkix_ocsp_nonce,
  );
  if (nonces.length === 0) return undefined;
  if (nonces.length > 1) throw invalid("OCSP request repeats the nonce extension");
  // OpenSSL wraps the nonce in an OCTET STRING inside extnValue, while
  // RFC 6960 clients may put the bytes in extnValue directly. Echoing
  // extnValue unchanged satisfies both.
  const value = new Uint8Array(nonces[0]!.extnValue.buffer);
  if (value.length === 0) throw invalid("OCSP request nonce is empty");
  if (value.length > MAX_OCSP_NONCE_BYTES) {
    throw invalid(`OCSP request nonce is longer than ${MAX_OCSP_NONCE_BYTES} bytes`);
  }
  return value;
}

/**
 * Reports whether a CertID names `issuer`: its issuerNameHash is the hash
 * of the issuer's subject DER and its issuerKeyHash the hash of the
 * issuer's subjectPublicKey BIT STRING value (RFC 6960 section 4.1.1).
 */
export function certIdMatchesIssuer(certId: OcspCertId, issuer: x509.X509Certificate): boolean {
  const nameHash = createHash(certId.hashAlgorithm).update(subjectNameDer(issuer)).digest();
  const keyHash = createHash(certId.hashAlgorithm).update(subjectPublicKeyBits(issuer)).digest();
  return nameHash.equals(certId.issuerNameHash) && keyHash.equals(certId.issuerKeyHash);
}
