import { isIP } from "node:net";
import { checkCsr } from "../engines/pki/csr.ts";
import { formatIpAddress, ipAddressBytes } from "../engines/pki/general-names.ts";
import { invalidField, isKeywardError } from "../errors.ts";
import { MAX_LIST_ENTRIES } from "./names.ts";

/** The only placeholder a name template may contain, replaced by the device's name. */
export const DEVICE_PLACEHOLDER = "{{device}}";

/** Max common name length, in characters (the X.520 upper bound `ub-common-name`). */
const MAX_COMMON_NAME_LENGTH = 64;
const MAX_TEMPLATE_LENGTH = 253;
/** A DNS name as a subject alternative name: labels of letters, digits and `-`, optionally `*.` first. */
const DNS_NAME = /^(\*\.)?(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))*$/;

/** The names of one device's certificate, after `{{device}}` is replaced. */
export interface RenderedNames {
  commonName: string;
  /** DNS names (lower case) and IP addresses (canonical text form), in template order, without duplicates. */
  altNames: string[];
}

/** Replaces `{{device}}` in `template` with `device`. */
export function renderTemplate(template: string, device: string): string {
  return template.replaceAll(DEVICE_PLACEHOLDER, device);
}

/** Returns an IP address in its canonical text form: IPv4 dotted, IPv6 as RFC 5952 writes it. */
function canonicalIp(ip: string): string {
  return formatIpAddress(ipAddressBytes(ip));
}

/**
 * Returns the canonical form of one alternative name, or undefined when it
 * is no DNS name or IP address. A name whose last label is all digits
 * (`010.0.0.1`, `10.0.a.1`) is no DNS name: clients read such names as
 * IPv4 addresses, so it counts only when it is a valid IP address.
 */
export function canonicalAltName(name: string): string | undefined {
  if (isIP(name) !== 0) return canonicalIp(name);
  const lower = name.toLowerCase();
  if (lower.length > 253 || !DNS_NAME.test(lower)) return undefined;
  return /(^|\.)[0-9]+$/.test(lower) ? undefined : lower;
}

/** The device name that templates are rendered with when they are written. */
const SAMPLE_DEVICE = "a";

/** Returns the key under which two alt name templates count as the same name. */
function templateKey(template: string): string {
  return isIP(template) !== 0 ? canonicalIp(template) : template.toLowerCase();
}

function checkTemplateSyntax(template: unknown, field: string): string {
  if (typeof template !== "string" || template === "" || template.length > MAX_TEMPLATE_LENGTH) {
    throw invalidField(
      field,
      `"${field}" must be a string of 1 to ${MAX_TEMPLATE_LENGTH} characters`,
    );
  }
  if (template.replaceAll(DEVICE_PLACEHOLDER, "").match(/[{}]/)) {
    throw invalidField(
      field,
      `"${field}" may contain no placeholder other than ${DEVICE_PLACEHOLDER}`,
    );
  }
  return template;
}

/**
 * Checks the name templates of an assignment. Each is rendered for the
 * device name `a` and must then be a DNS name (optionally starting with
 * `*.`) or an IP address, the names a CSR may carry. So a template that
 * cannot yield a valid name for any device is rejected when it is written.
 * Two alt name templates that differ only in case (or two spellings of
 * one IP address) are rejected too. Throws `invalid_field`.
 */
export function checkNameTemplates(commonName: unknown, altNames: unknown): void {
  const common = checkTemplateSyntax(commonName, "common_name");
  const renderedCommon = renderTemplate(common, SAMPLE_DEVICE);
  if (renderedCommon.length > MAX_COMMON_NAME_LENGTH) {
    throw invalidField(
      "common_name",
      `"common_name" must render to at most ${MAX_COMMON_NAME_LENGTH} characters`,
    );
  }
  if (canonicalAltName(renderedCommon) === undefined) {
    throw invalidField(
      "common_name",
      `"common_name" must be a DNS name (optionally starting with "*.") or an IP address, with ${DEVICE_PLACEHOLDER} where the device name goes; a name ending in an all-digit label must be a valid IP address`,
    );
  }
  if (!Array.isArray(altNames)) throw invalidField("alt_names", `"alt_names" must be a list`);
  if (altNames.length > MAX_LIST_ENTRIES) {
    throw invalidField("alt_names", `"alt_names" has more than ${MAX_LIST_ENTRIES} entries`);
  }
  const seen = new Map<string, number>();
  altNames.forEach((template, index) => {
    const field = `alt_names[${index}]`;
    checkTemplateSyntax(template, field);
    if (canonicalAltName(renderTemplate(template as string, SAMPLE_DEVICE)) === undefined) {
      throw invalidField(
        field,
        `"${field}" must be a DNS name (optionally starting with "*.") or an IP address, with ${DEVICE_PLACEHOLDER} where the device name goes; a name ending in an all-digit label must be a valid IP address`,
      );
    }
    const key = templateKey(template as string);
    const first = seen.get(key);
    if (first !== undefined) {
      throw invalidField(
        field,
        `"${field}" repeats alt_names[${first}] (names are compared without case); list each name once`,
      );
    }
    seen.set(key, index);
  });
}

/**
 * Renders the names of `device`'s certificate. An alternative name that
 * is no valid DNS name for this device (a device name with `_`, say) is
 * kept as rendered, and the PKI role rejects it at signing.
 */
export function renderNames(
  commonName: string,
  altNames: readonly string[],
  device: string,
): RenderedNames {
  const rendered: string[] = [];
  for (const template of altNames) {
    const name = renderTemplate(template, device);
    const canonical = canonicalAltName(name) ?? name;
    if (!rendered.includes(canonical)) rendered.push(canonical);
  }
  return { commonName: renderTemplate(commonName, device), altNames: rendered };
}

/** Returns true when an EC P-256/P-384, RSA of at least 2048 bits or Ed25519 key is described. */
function acceptedKey(key: { type: string; bits: number }): boolean {
  if (key.type === "ec") return key.bits === 256 || key.bits === 384;
  if (key.type === "rsa") return key.bits >= 2048;
  return key.type === "ed25519";
}

function describeKey(key: { type: string; bits: number }): string {
  return key.type === "ed25519" ? "Ed25519" : `${key.type.toUpperCase()} ${key.bits}-bit`;
}

/**
 * Checks a service certificate's CSR. It must be a valid PKCS#10 request
 * whose key is EC P-256 or P-384, RSA of at least 2048 bits or Ed25519.
 * Its common name must equal `expected.commonName`, and its subject
 * alternative names must be exactly `expected.altNames` (DNS names compared
 * in lower case, IP addresses in canonical form, order ignored). Throws `invalid_field`
 * naming `csr`, with the names that are missing or unexpected.
 */
export async function checkServiceCsr(csrText: string, expected: RenderedNames): Promise<void> {
  let csr: Awaited<ReturnType<typeof checkCsr>>;
  try {
    csr = await checkCsr(csrText, "csr");
  } catch (error) {
    if (isKeywardError(error) && error.isClientError) throw invalidField("csr", error.message);
    throw error;
  }
  if (!acceptedKey(csr.keySpec)) {
    throw invalidField(
      "csr",
      `"csr" must have an EC P-256 or P-384, RSA (at least 2048 bits) or Ed25519 key, not ${describeKey(csr.keySpec)}`,
    );
  }
  if (csr.commonName !== expected.commonName) {
    throw invalidField(
      "csr",
      `the CSR's common name ${JSON.stringify(csr.commonName)} must equal ${JSON.stringify(expected.commonName)}`,
    );
  }
  const requested = csr.altNames.map((name) =>
    name.type === "dns"
      ? name.value.toLowerCase()
      : name.type === "ip"
        ? name.value
        : `${name.type}:${name.value}`,
  );
  const missing = expected.altNames.filter((name) => !requested.includes(name));
  const unexpected = requested.filter((name) => !expected.altNames.includes(name));
  if (missing.length > 0 || unexpected.length > 0) {
    const parts = [
      ...(missing.length > 0 ? [`missing ${missing.join(", ")}`] : []),
      ...(unexpected.length > 0 ? [`unexpected ${unexpected.join(", ")}`] : []),
    ];
    throw invalidField(
      "csr",
      `the CSR's subject alternative names must be exactly the assigned ones: ${parts.join("; ")}`,
    );
  }
}
