import { constants, verify } from "node:crypto";
import { verifyPool } from "../../crypto/verify-pool.ts";
import { KeywardError } from "../../errors.ts";
import {
  childrenOf,
  contentOf,
  type DerElement,
  decodeOid,
  encodingOf,
  readElement,
} from "./der.ts";
import { readGeneralNames } from "./general-names.ts";
import type { KeySpec } from "./key-pairs.ts";
import type { AltName } from "./names.ts";
import { csrDer } from "./pem.ts";
import { type ReadPublicKey, readPublicKey, readPublicKeyInfo } from "./spki.ts";
import { firstAttribute } from "./subject.ts";
import * as x509 from "./x509.ts";

/** The PKCS#9 extensionRequest attribute, which carries a CSR's requested extensions. */
const EXTENSION_REQUEST = "1.2.840.113549.1.9.14";
const SUBJECT_ALT_NAME = "2.5.29.17";
const COMMON_NAME = "2.5.4.3";

/** Signature algorithms accepted on a CSR, by OID: the hash and the key type that must sign. */
const CSR_SIGNATURES: Record<string, { hash: string | null; keyType: KeySpec["type"] }> = {
  "1.2.840.113549.1.1.11": { hash: "sha256", keyType: "rsa" },
  "1.2.840.113549.1.1.12": { hash: "sha384", keyType: "rsa" },
  "1.2.840.113549.1.1.13": { hash: "sha512", keyType: "rsa" },
  "1.2.840.10045.4.3.2": { hash: "sha256", keyType: "ec" },
  "1.2.840.10045.4.3.3": { hash: "sha384", keyType: "ec" },
  "1.2.840.10045.4.3.4": { hash: "sha512", keyType: "ec" },
  "1.3.101.112": { hash: null, keyType: "ed25519" },
};

/** Names of rejected algorithms that clients still send, for the error message. */
const REJECTED_SIGNATURE_NAMES: Record<string, string> = {
  "1.2.840.113549.1.1.4": "md5WithRSAEncryption",
  "1.2.840.113549.1.1.5": "sha1WithRSAEncryption",
  "1.2.840.10045.4.1": "ecdsa-with-SHA1",
};

/** id-RSASSA-PSS (RFC 4055 section 3.1). */
const RSASSA_PSS = "1.2.840.113549.1.1.10";
/** id-mgf1 (RFC 4055 section 2.2). */
const MGF1 = "1.2.840.113549.1.1.8";
/** Hashes accepted in RSASSA-PSS parameters, by OID. SHA-1, the parameters' default, is not. */
const PSS_HASHES: Record<string, string> = {
  "2.16.840.1.101.3.4.2.1": "sha256",
  "2.16.840.1.101.3.4.2.2": "sha384",
  "2.16.840.1.101.3.4.2.3": "sha512",
};

/** The parameters of an RSASSA-PSS signature: its hash (also MGF1's) and salt length in bytes. */
interface PssParameters {
  hash: string;
  saltLength: number;
}

export interface CheckedCsr {
  /** The CSR, DER. */
  der: Uint8Array;
  /** The CSR parsed by @peculiar/x509, created on first use because parsing costs about as much as signing. */
  readonly csr: x509.Pkcs10CertificateRequest;
  /** SubjectPublicKeyInfo, DER. */
  publicKey: Uint8Array;
  keySpec: KeySpec;
  /** The bits of the subjectPublicKey, for the subject key identifier. */
  subjectPublicKey: Uint8Array;
  /** The CSR's subject, DER. */
  subjectDer: Uint8Array;
  commonName: string;
  /** DNS, IP, email and URI subject alternative names requested in the CSR. */
  altNames: AltName[];
}

function invalidCsr(field: string, cause: unknown): KeywardError {
  return new KeywardError(
    "invalid_certificate",
    `"${field}" is not a valid certificate signing request`,
    {
      field,
      cause,
    },
  );
}

/** The fields of a PKCS#10 CertificationRequest (RFC 2986 section 4), as positions in its DER. */
interface CsrLayout {
  info: DerElement;
  subject: DerElement;
  spki: DerElement;
  attributes: DerElement | undefined;
  signatureOid: string;
  /** The AlgorithmIdentifier's parameters, when present. */
  signatureParameters: DerElement | undefined;
  signature: Uint8Array;
}

function readLayout(der: Uint8Array): CsrLayout {
  const outer = readElement(der, 0);
  if (outer.tag !== 0x30 || outer.end !== der.length) throw new RangeError("not one SEQUENCE");
  const fields = childrenOf(der, outer);
  const [info, algorithm, signature] = fields;
  if (info?.tag !== 0x30 || algorithm?.tag !== 0x30 || signature?.tag !== 0x03) {
    throw new RangeError("CertificationRequest fields missing");
  }
  if (fields.length !== 3) throw new RangeError("CertificationRequest has extra fields");
  const infoFields = childrenOf(der, info);
  const [version, subject, spki, attributes] = infoFields;
  if (version?.tag !== 0x02 || subject?.tag !== 0x30 || spki?.tag !== 0x30) {
    throw new RangeError("CertificationRequestInfo fields missing");
  }
  if (infoFields.length > 4) throw new RangeError("CertificationRequestInfo has extra fields");
  checkName(der, subject);
  const [algorithmOid, signatureParameters] = childrenOf(der, algorithm);
  if (algorithmOid?.tag !== 0x06) throw new RangeError("signature algorithm missing");
  const signatureBits = contentOf(der, signature);
  if (signatureBits[0] !== 0) throw new RangeError("signature has unused bits");
  return {
    info,
    subject,
    spki,
    attributes: attributes?.tag === 0xa0 ? attributes : undefined,
    signatureOid: decodeOid(contentOf(der, algorithmOid)),
    signatureParameters,
    signature: signatureBits.subarray(1),
  };
}

/**
 * Checks the shape of a Name (RFC 5280 section 4.1.2.4): a SEQUENCE of
 * RelativeDistinguishedNames, each a non-empty SET of SEQUENCEs that start
 * with an OBJECT IDENTIFIER. Throws a RangeError otherwise.
 */
function checkName(der: Uint8Array, name: DerElement): void {
  for (const rdn of childrenOf(der, name)) {
    const attributes = childrenOf(der, rdn);
    if (rdn.tag !== 0x31 || attributes.length === 0) {
      throw new RangeError("a name part is not a non-empty SET");
    }
    for (const attribute of attributes) {
      const [type, value] = childrenOf(der, attribute);
      if (attribute.tag !== 0x30 || type?.tag !== 0x06 || value === undefined) {
        throw new RangeError("a name attribute is not an OID and a value");
      }
    }
  }
}

/**
 * Reads RSASSA-PSS-params (RFC 4055 section 3.1). Returns undefined unless
 * the hash is SHA-256 or stronger, MGF1 uses the same hash (node:crypto
 * verifies with that pairing) and the trailer field is the default.
 */
function readPssParameters(der: Uint8Array, parameters: DerElement | undefined) {
  if (parameters?.tag !== 0x30) return undefined;
  let hash: string | undefined;
  let mgfHash: string | undefined;
  let saltLength = 20;
  for (const field of childrenOf(der, parameters)) {
    const [inner] = childrenOf(der, field);
    if (!inner) return undefined;
    if (field.tag === 0xa0) {
      const [oid] = childrenOf(der, inner);
      hash = oid ? PSS_HASHES[decodeOid(contentOf(der, oid))] : undefined;
    } else if (field.tag === 0xa1) {
      const [mgf, mgfParameters] = childrenOf(der, inner);
      if (!mgf || decodeOid(contentOf(der, mgf)) !== MGF1 || mgfParameters?.tag !== 0x30) {
        return undefined;
      }
      const [oid] = childrenOf(der, mgfParameters);
      mgfHash = oid ? PSS_HASHES[decodeOid(contentOf(der, oid))] : undefined;
    } else if (field.tag === 0xa2 && inner.tag === 0x02) {
      saltLength = Number.parseInt(Buffer.from(contentOf(der, inner)).toString("hex"), 16);
    } else if (field.tag === 0xa3) {
      if (Buffer.from(contentOf(der, inner)).toString("hex") !== "01") return undefined;
    }
  }
  if (hash === undefined || mgfHash !== hash || !Number.isSafeInteger(saltLength)) return undefined;
  return { hash, saltLength } satisfies PssParameters;
}

/** Returns the subject alternative names requested in the CSR's extensionRequest attribute. */
function requestedAltNames(der: Uint8Array, attributes: DerElement | undefined): AltName[] {
  if (!attributes) return [];
  for (const attribute of childrenOf(der, attributes)) {
    const [type, values] = childrenOf(der, attribute);
    if (type?.tag !== 0x06 || values?.tag !== 0x31) continue;
    if (decodeOid(contentOf(der, type)) !== EXTENSION_REQUEST) continue;
    const [extensions] = childrenOf(der, values);
    if (!extensions) return [];
    for (const extension of childrenOf(der, extensions)) {
      const parts = childrenOf(der, extension);
      const id = parts[0];
      const value = parts[parts.length - 1];
      if (id?.tag !== 0x06 || value?.tag !== 0x04) continue;
      if (decodeOid(contentOf(der, id)) !== SUBJECT_ALT_NAME) continue;
      return readGeneralNames(contentOf(der, value));
    }
  }
  return [];
}

/**
 * Parses a CSR (PEM, or base64 DER) and checks that its key type and
 * signature algorithm are supported and that its signature verifies,
 * which proves the requester has the private key. The DER is read in
 * place and the signature checked with node:crypto over the original
 * bytes. RSA keys may sign with PKCS#1 v1.5 or RSASSA-PSS (SHA-256 or
 * stronger, MGF1 with the same hash). Throws `invalid_certificate`, `unsupported_key_type` or
 * `invalid_csr_signature` naming `field`.
 */
export async function checkCsr(text: string, field = "csr"): Promise<CheckedCsr> {
  const der = csrDer(text, field);
  let layout: CsrLayout;
  try {
    layout = readLayout(der);
  } catch (error) {
    throw invalidCsr(field, error);
  }
  const publicKey = encodingOf(der, layout.spki);
  const key = readPublicKeyInfo(publicKey, field);

  let pss: PssParameters | undefined;
  try {
    pss =
      layout.signatureOid === RSASSA_PSS
        ? readPssParameters(der, layout.signatureParameters)
        : undefined;
  } catch (error) {
    throw invalidCsr(field, error);
  }
  const scheme = pss
    ? { hash: pss.hash, keyType: "rsa" as const }
    : CSR_SIGNATURES[layout.signatureOid];
  if (!scheme) {
    const name =
      layout.signatureOid === RSASSA_PSS
        ? "RSASSA-PSS with SHA-1, a different MGF1 hash or an unknown trailer"
        : (REJECTED_SIGNATURE_NAMES[layout.signatureOid] ?? layout.signatureOid);
    throw new KeywardError(
      "unsupported_key_type",
      `"${field}" is signed with an unsupported algorithm (${name}); use SHA-256 or stronger with RSA or ECDSA, or Ed25519`,
      { field },
    );
  }
  const options = pss
    ? { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: pss.saltLength }
    : { dsaEncoding: "der" as const };
  const signed = encodingOf(der, layout.info);
  let valid = false;
  if (scheme.keyType !== key.spec.type) {
    // The signature cannot verify; an unusable key is still reported as
    // such, as when the key is imported before the check.
    readPublicKey(publicKey, field);
  } else {
    try {
      valid = await verifyPool.verify({
        algorithm: scheme.hash,
        data: signed,
        signature: layout.signature,
        key: key.key,
        options,
      });
    } catch {
      // The key or signature was unusable; the same check on this thread
      // then raises the error that names what was wrong.
      valid = verifyOnEventLoop(
        readPublicKey(publicKey, field),
        scheme.hash,
        signed,
        options,
        layout.signature,
        field,
      );
    }
  }
  if (!valid) {
    throw new KeywardError("invalid_csr_signature", `the signature of "${field}" does not verify`, {
      field,
    });
  }

  let altNames: AltName[];
  let commonName: string;
  try {
    altNames = requestedAltNames(der, layout.attributes);
    commonName = firstAttribute(encodingOf(der, layout.subject), COMMON_NAME) ?? "";
  } catch (error) {
    throw invalidCsr(field, error);
  }
  let parsed: x509.Pkcs10CertificateRequest | undefined;
  return {
    der,
    get csr() {
      parsed ??= new x509.Pkcs10CertificateRequest(der);
      return parsed;
    },
    publicKey,
    keySpec: key.spec,
    subjectPublicKey: key.subjectPublicKey,
    subjectDer: encodingOf(der, layout.subject),
    commonName,
    altNames,
  };
}

/** Checks the CSR's signature on this thread; errors from the key or signature become `invalid_csr_signature`. */
function verifyOnEventLoop(
  key: ReadPublicKey,
  hash: string | null,
  signed: Uint8Array,
  options: { padding?: number; saltLength?: number; dsaEncoding?: "der" },
  signature: Uint8Array,
  field: string,
): boolean {
  try {
    return verify(hash, signed, { ...options, key: key.key }, signature);
  } catch (error) {
    throw new KeywardError(
      "invalid_csr_signature",
      `the signature of "${field}" cannot be verified`,
      {
        field,
        cause: error,
      },
    );
  }
}
