import { KeywardError } from "../../errors.ts";
import { parseCertificates } from "../pki/pem.ts";

/** TLS protocol versions that FreeRADIUS 3.2 accepts in `tls_min_version` and `tls_max_version` and that Keyward renders. */
export type FreeradiusTlsVersion = "1.2" | "1.3";

/** Options for {@link renderFreeradiusEapTls}. Every path is a path on the RADIUS server. */
export interface FreeradiusEapTlsOptions {
  /**
   * PEM CA chain of the Keyward PKI that issues the client certificates:
   * the issuing CA first, then each parent up to the root. Rendering reads
   * the issuing CA's subject from it for `check_cert_issuer` and writes no
   * certificate into the configuration.
   */
  caChain: string;
  /** `certificate_file`: the RADIUS server's certificate in PEM, followed by any intermediate CA certificates. */
  certificateFile: string;
  /** `private_key_file`: the RADIUS server's unencrypted private key in PEM. */
  privateKeyFile: string;
  /**
   * `ca_file`: a PEM file with the CA certificates trusted to issue client
   * certificates, normally `caChain` written to disk.
   */
  caFile: string;
  /**
   * `ca_path`: a folder of CA certificates and CRLs named by their subject
   * hash (`openssl rehash`). Required when `checkCrl` is true, because
   * FreeRADIUS loads CRLs only from this folder.
   */
  caPath?: string;
  /**
   * `check_crl`: reject client certificates that a CRL in `caPath` lists.
   * OpenSSL then also rejects every client certificate whose issuer has no
   * CRL in `caPath`, and every certificate once that CRL is past its
   * nextUpdate. Default true.
   */
  checkCrl?: boolean;
  /**
   * `check_all_crl`: check every CA of the chain against its issuer's CRL
   * too, not only the client certificate. Each CA then needs a current CRL
   * in `caPath`. Default false.
   */
  checkAllCrl?: boolean;
  /**
   * `ca_path_reload_interval` in seconds: how often FreeRADIUS re-reads
   * `caPath`, so that a replaced CRL takes effect without a restart. Left
   * out (FreeRADIUS then reads the folder only at start and on HUP) when
   * undefined. Between 1 and 86400.
   */
  caPathReloadIntervalSeconds?: number;
  /**
   * `check_cert_issuer`: accept only client certificates whose issuer name
   * equals the subject of the first certificate of `caChain`. Without it,
   * any CA that `caFile` trusts, such as another intermediate below the
   * same root, could issue accepted client certificates. Default true.
   */
  checkCertIssuer?: boolean;
  /**
   * `check_cert_cn = %{User-Name}`: require the EAP identity (User-Name)
   * to equal the client certificate's common name. Default true.
   */
  checkCertCn?: boolean;
  /**
   * `cipher_list`: OpenSSL cipher list for TLS 1.2. Only letters, digits
   * and `:+-!@=._` are accepted. Default `HIGH:!aNULL:!eNULL:!MD5:!RC4:!3DES`.
   */
  cipherList?: string;
  /** `tls_min_version`. Default "1.2", and older versions are rejected. */
  tlsMinVersion?: FreeradiusTlsVersion;
  /**
   * `tls_max_version`. Default "1.2", because FreeRADIUS 3.2 documents that
   * many EAP supplicants fail with TLS 1.3.
   */
  tlsMaxVersion?: FreeradiusTlsVersion;
  /**
   * `ecdh_curve`: a curve name or a colon-separated list of them, such as
   * `prime256v1:secp384r1`. Left out (OpenSSL chooses) when undefined.
   */
  ecdhCurve?: string;
  /** `fragment_size`: the largest EAP-TLS fragment in bytes, 256 to 4096. Default 1024. */
  fragmentSize?: number;
}

const DEFAULT_CIPHER_LIST = "HIGH:!aNULL:!eNULL:!MD5:!RC4:!3DES";
const CIPHER_LIST = /^[A-Za-z0-9:+\-!@=._]+$/;
const CURVE_LIST = /^[A-Za-z0-9_-]+(:[A-Za-z0-9_-]+)*$/;
// Characters a FreeRADIUS double-quoted value would treat specially:
// backslash escapes, `${...}` references, and the quote itself.
const UNSAFE_PATH_CHARACTERS = /["'`\\$\p{Cc}]/u;

function invalidField(field: string, message: string): KeywardError {
  return new KeywardError("invalid_field", `"${field}" ${message}`, { field });
}

function checkPath(field: string, path: string | undefined): string {
  if (typeof path !== "string" || path === "") {
    throw new KeywardError("missing_field", `"${field}" is required`, { field });
  }
  if (!path.startsWith("/")) throw invalidField(field, "must be an absolute path");
  if (UNSAFE_PATH_CHARACTERS.test(path)) {
    throw invalidField(
      field,
      "must not contain quotes, backslashes, dollar signs or control characters",
    );
  }
  return path;
}

function checkInteger(field: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw invalidField(field, `must be an integer from ${min} to ${max}`);
  }
  return value;
}

function checkVersion(field: string, value: string): FreeradiusTlsVersion {
  if (value !== "1.2" && value !== "1.3") throw invalidField(field, 'must be "1.2" or "1.3"');
  return value;
}

/**
 * Quotes a value for a FreeRADIUS configuration file. FreeRADIUS 3.2.1 reads
 * `\"` inside double quotes as a quote and keeps every other backslash as
 * it is, so only quotes are escaped. Callers reject `$`, which would start a
 * `${...}` reference.
 */
function quote(value: string): string {
  return `"${value.replace(/"/g, '\\"')}"`;
}

// OpenSSL's short names for the attribute types X509_NAME_oneline prints
// by name (OpenSSL 3.0 objects table). Other types print as dotted OIDs.
const SHORT_NAMES: Record<string, string> = {
  "2.5.4.3": "CN",
  "2.5.4.4": "SN",
  "2.5.4.5": "serialNumber",
  "2.5.4.6": "C",
  "2.5.4.7": "L",
  "2.5.4.8": "ST",
  "2.5.4.9": "street",
  "2.5.4.10": "O",
  "2.5.4.11": "OU",
  "2.5.4.12": "title",
  "2.5.4.13": "description",
  "2.5.4.15": "businessCategory",
  "2.5.4.17": "postalCode",
  "2.5.4.41": "name",
  "2.5.4.42": "GN",
  "2.5.4.43": "initials",
  "2.5.4.44": "generationQualifier",
  "2.5.4.46": "dnQualifier",
  "2.5.4.65": "pseudonym",
  "2.5.4.97": "organizationIdentifier",
  "1.2.840.113549.1.9.1": "emailAddress",
  "0.9.2342.19200300.100.1.1": "UID",
  "0.9.2342.19200300.100.1.25": "DC",
};

interface Element {
  tag: number;
  start: number;
  end: number;
}

/** Reads the DER element at `offset`: its tag and the bounds of its content. */
function readElement(der: Uint8Array, offset: number): Element {
  const tag = der[offset];
  let length = der[offset + 1];
  if (tag === undefined || length === undefined) throw new RangeError("truncated DER");
  let start = offset + 2;
  if (length & 0x80) {
    const count = length & 0x7f;
    if (count === 0 || count > 3) throw new RangeError("unsupported DER length");
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + (der[start + i] ?? 0);
    start += count;
  }
  const end = start + length;
  if (end > der.length) throw new RangeError("truncated DER");
  return { tag, start, end };
}

function childrenOf(der: Uint8Array, parent: Element): Element[] {
  const children: Element[] = [];
  for (let offset = parent.start; offset < parent.end; ) {
    const child = readElement(der, offset);
    children.push(child);
    offset = child.end;
  }
  return children;
}

function decodeOid(bytes: Uint8Array): string {
  const parts: number[] = [];
  let value = 0;
  for (const byte of bytes) {
    value = value * 128 + (byte & 0x7f);
    if ((byte & 0x80) === 0) {
      parts.push(value);
      value = 0;
    }
  }
  const first = parts.shift() ?? 0;
  const head = first < 80 ? [Math.floor(first / 40), first % 40] : [2, first - 80];
  return [...head, ...parts].join(".");
}

/**
 * Formats a DER Name as OpenSSL's X509_NAME_oneline does, which is the form
 * FreeRADIUS compares `check_cert_issuer` with: `/C=DE/O=Example/CN=CA`,
 * each attribute in certificate order, and every value byte outside
 * printable ASCII written as `\xHH`.
 *
 * NOTE: OpenSSL treats GeneralString values whose bytes form 32-bit
 * characters specially; Keyward never issues such names, and this function
 * prints their bytes unchanged.
 */
export function opensslOnelineName(nameDer: Uint8Array): string {
  let text = "";
  for (const rdn of childrenOf(nameDer, readElement(nameDer, 0))) {
    for (const attribute of childrenOf(nameDer, rdn)) {
      const [type, value] = childrenOf(nameDer, attribute);
      if (!type || !value) throw new RangeError("attribute without type or value");
      const oid = decodeOid(nameDer.subarray(type.start, type.end));
      let printed = "";
      for (const byte of nameDer.subarray(value.start, value.end)) {
        printed +=
          byte < 0x20 || byte > 0x7e
            ? `\\x${byte.toString(16).toUpperCase().padStart(2, "0")}`
            : String.fromCharCode(byte);
      }
      text += `/${SHORT_NAMES[oid] ?? oid}=${printed}`;
    }
  }
  return text;
}

/** Returns the issuing CA's subject in X509_NAME_oneline form, from the first certificate of a PEM chain. */
function issuingCaName(caChain: string): string {
  const certificates = parseCertificates(caChain, "ca_chain");
  const issuing = certificates[0];
  if (!issuing) {
    throw new KeywardError("invalid_certificate", '"ca_chain" contains no CERTIFICATE block', {
      field: "ca_chain",
    });
  }
  try {
    return opensslOnelineName(new Uint8Array(issuing.subjectName.toArrayBuffer()));
  } catch (error) {
    throw new KeywardError(
      "invalid_certificate",
      '"ca_chain" contains a certificate whose subject cannot be parsed',
      { field: "ca_chain", cause: error },
    );
  }
}

/**
 * Renders the FreeRADIUS 3.2 `eap` module (mods-available/eap) for EAP-TLS
 * only: `default_eap_type = tls`, one `tls-config` section with the server
 * certificate, the trusted CAs, CRL checking, TLS 1.2 or later and the
 * issuer and identity checks, and a `tls` method that uses it. No other
 * EAP method is enabled, and the TLS session cache is off so that every
 * authentication checks the current CRL.
 *
 * Throws `missing_field` or `invalid_field` (named by the snake_case form of
 * the option) for a bad option, and `invalid_certificate` for an unreadable
 * `ca_chain`.
 */
export function renderFreeradiusEapTls(options: FreeradiusEapTlsOptions): string {
  const certificateFile = checkPath("certificate_file", options.certificateFile);
  const privateKeyFile = checkPath("private_key_file", options.privateKeyFile);
  const caFile = checkPath("ca_file", options.caFile);
  const checkCrl = options.checkCrl ?? true;
  const checkAllCrl = options.checkAllCrl ?? false;
  if (checkAllCrl && !checkCrl) throw invalidField("check_all_crl", "requires check_crl");
  const caPath =
    options.caPath !== undefined || checkCrl ? checkPath("ca_path", options.caPath) : undefined;

  const tlsMinVersion = checkVersion("tls_min_version", options.tlsMinVersion ?? "1.2");
  const tlsMaxVersion = checkVersion("tls_max_version", options.tlsMaxVersion ?? "1.2");
  if (tlsMinVersion > tlsMaxVersion) {
    throw invalidField("tls_max_version", "must not be below tls_min_version");
  }
  const cipherList = options.cipherList ?? DEFAULT_CIPHER_LIST;
  if (!CIPHER_LIST.test(cipherList)) {
    throw invalidField("cipher_list", "must contain only letters, digits and :+-!@=._");
  }
  if (options.ecdhCurve !== undefined && !CURVE_LIST.test(options.ecdhCurve)) {
    throw invalidField("ecdh_curve", "must be curve names separated by colons");
  }
  const fragmentSize = checkInteger("fragment_size", options.fragmentSize ?? 1024, 256, 4096);
  const issuerName = issuingCaName(options.caChain);
  // A literal backslash or dollar sign in the name could change how
  // FreeRADIUS reads the quoted value. The \xHH escapes of non-ASCII bytes
  // pass through unchanged, which the EAP-TLS test checks.
  if ((options.checkCertIssuer ?? true) && /\$|\\(?!x[0-9A-F]{2})/.test(issuerName)) {
    throw new KeywardError(
      "invalid_certificate",
      '"ca_chain" has an issuing CA whose subject contains a backslash or dollar sign, which check_cert_issuer cannot express; disable check_cert_issuer',
      { field: "ca_chain" },
    );
  }

  const tls: string[] = [
    `certificate_file = ${quote(certificateFile)}`,
    `private_key_file = ${quote(privateKeyFile)}`,
    `ca_file = ${quote(caFile)}`,
  ];
  if (caPath !== undefined) tls.push(`ca_path = ${quote(caPath)}`);
  tls.push(`check_crl = ${checkCrl ? "yes" : "no"}`);
  if (checkCrl) tls.push(`check_all_crl = ${checkAllCrl ? "yes" : "no"}`);
  tls.push("allow_expired_crl = no");
  if (options.caPathReloadIntervalSeconds !== undefined) {
    const seconds = checkInteger(
      "ca_path_reload_interval",
      options.caPathReloadIntervalSeconds,
      1,
      86400,
    );
    tls.push(`ca_path_reload_interval = ${seconds}`);
  }
  if (options.checkCertIssuer ?? true) tls.push(`check_cert_issuer = ${quote(issuerName)}`);
  if (options.checkCertCn ?? true) tls.push(`check_cert_cn = "%{User-Name}"`);
  tls.push(
    `cipher_list = ${quote(cipherList)}`,
    "cipher_server_preference = yes",
    `tls_min_version = ${quote(tlsMinVersion)}`,
    `tls_max_version = ${quote(tlsMaxVersion)}`,
  );
  if (options.ecdhCurve !== undefined) tls.push(`ecdh_curve = ${quote(options.ecdhCurve)}`);
  tls.push(`fragment_size = ${fragmentSize}`, "include_length = yes");

  const lines = [
    "# EAP-TLS only, rendered by Keyward.",
    "eap {",
    "\tdefault_eap_type = tls",
    "\ttimer_expire = 60",
    "\tignore_unknown_eap_types = no",
    "",
    "\ttls-config tls-keyward {",
    ...tls.map((line) => `\t\t${line}`),
    "",
    "\t\tcache {",
    "\t\t\tenable = no",
    "\t\t}",
    "",
    "\t\tocsp {",
    "\t\t\tenable = no",
    "\t\t}",
    "\t}",
    "",
    "\ttls {",
    "\t\ttls = tls-keyward",
    "\t}",
    "}",
    "",
  ];
  return lines.join("\n");
}
