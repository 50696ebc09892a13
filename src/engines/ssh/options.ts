import { KeywardError } from "../../errors.ts";
import { parseAddress } from "../../util/ip-address.ts";
import type { CertificateType } from "./certificate.ts";
import { notAllowed } from "./principals.ts";
import { parseOptionMap } from "./role-fields.ts";
import { identityVariables, renderTemplate } from "./templates.ts";
import type { RequesterIdentity, SshRole } from "./types.ts";

/** Critical options OpenSSH defines (PROTOCOL.certkeys), and whether each takes a value. */
const KNOWN_CRITICAL_OPTIONS: Record<string, "value" | "flag"> = {
  "force-command": "value",
  "source-address": "value",
  "verify-required": "flag",
};

/** Extensions OpenSSH defines; each is a flag with an empty value. */
const KNOWN_EXTENSIONS = new Set([
  "no-touch-required",
  "permit-X11-forwarding",
  "permit-agent-forwarding",
  "permit-port-forwarding",
  "permit-pty",
  "permit-user-rc",
]);

function checkKnownValue(kind: "option" | "extension", name: string, value: string, field: string) {
  const flag =
    kind === "extension" ? KNOWN_EXTENSIONS.has(name) : KNOWN_CRITICAL_OPTIONS[name] === "flag";
  const valued = kind === "option" && KNOWN_CRITICAL_OPTIONS[name] === "value";
  if (flag && value !== "") {
    throw new KeywardError("invalid_field", `"${field}.${name}" is a flag; its value must be ""`, {
      field: `${field}.${name}`,
    });
  }
  if (valued && value === "") {
    throw new KeywardError("invalid_field", `"${field}.${name}" needs a value`, {
      field: `${field}.${name}`,
    });
  }
  if (kind === "option" && value.includes("\0")) {
    throw new KeywardError(
      "invalid_field",
      `"${field}.${name}" contains a NUL byte, which makes OpenSSH reject the certificate`,
      { field: `${field}.${name}` },
    );
  }
  if (name === "source-address") checkSourceAddress(value, `${field}.source-address`);
}

/** Longest `source-address` entry, in characters: the longest IPv6 text with an embedded IPv4 address (45) and `/128`. */
const MAX_SOURCE_ADDRESS_ENTRY = 49;

/**
 * Checks a `source-address` value as sshd (OpenSSH 9.2) reads it: entries
 * separated by commas alone, each an address or a CIDR block with host bits
 * zero, of hex digits, `.`, `:` and `/` only. sshd rejects a certificate
 * whose list has any other entry, so Keyward rejects it at signing.
 */
function checkSourceAddress(value: string, field: string): void {
  const invalid = (reason: string) =>
    new KeywardError(
      "invalid_field",
      `"${field}" must be a comma-separated list of IP addresses or CIDR blocks: ${reason}`,
      { field },
    );
  for (const entry of value.split(",")) {
    if (entry.length > MAX_SOURCE_ADDRESS_ENTRY || !/^[0-9A-Fa-f.:/]+$/.test(entry)) {
      throw invalid(
        `${JSON.stringify(entry)} may contain only hex digits, ".", ":" and "/", with no spaces`,
      );
    }
    const [address, prefix, extra] = entry.split("/");
    const parsed = parseAddress(address ?? "");
    const maxPrefix = parsed?.family === 6 ? 128 : 32;
    const prefixValid =
      prefix === undefined || (/^\d{1,3}$/.test(prefix) && Number(prefix) <= maxPrefix);
    if (parsed === undefined || !prefixValid || extra !== undefined) {
      throw invalid(`"${entry}" is not an address or CIDR block`);
    }
    const hostBits = BigInt(maxPrefix - Number(prefix ?? maxPrefix));
    if ((parsed.value & ((1n << hostBits) - 1n)) !== 0n) {
      throw invalid(`"${entry}" has host bits set`);
    }
  }
}

/**
 * Checks the values of a role's default critical options or extensions as
 * a request's are checked, so that a role cannot make every certificate
 * unusable.
 */
export function checkOptionValues(
  kind: "option" | "extension",
  values: Record<string, string>,
  field: string,
): Record<string, string> {
  for (const [name, value] of Object.entries(values)) checkKnownValue(kind, name, value, field);
  return values;
}

/**
 * Critical options: the requested ones if any, else the role's defaults.
 * Requested names must be in `allowed_critical_options`; an empty list
 * allows any, as in Vault. Host certificates carry none.
 */
export function criticalOptionsFor(
  role: SshRole,
  type: CertificateType,
  requested: Record<string, string> | undefined,
): Record<string, string> {
  const field = "critical_options";
  const options = parseOptionMap(requested, field);
  if (type === "host") {
    if (Object.keys(options).length > 0) {
      throw notAllowed("host certificates carry no critical options", field);
    }
    return {};
  }
  if (Object.keys(options).length === 0) return { ...role.defaultCriticalOptions };
  const allowed = role.allowedCriticalOptions;
  for (const [name, value] of Object.entries(options)) {
    if (allowed.length > 0 && !allowed.includes("*") && !allowed.includes(name)) {
      throw notAllowed(
        `critical option "${name}" is not in the role's allowed_critical_options`,
        `${field}.${name}`,
      );
    }
    checkKnownValue("option", name, value, field);
  }
  return options;
}

/**
 * Extensions: the requested ones if any, else the role's defaults. Requested
 * names must be in `allowed_extensions` (`*` allows any); an empty list
 * allows none, as in Vault. Host certificates carry none.
 */
export function extensionsFor(
  role: SshRole,
  type: CertificateType,
  requested: Record<string, string> | undefined,
  identity: RequesterIdentity,
): Record<string, string> {
  const field = "extensions";
  const extensions = parseOptionMap(requested, field);
  if (type === "host") {
    if (Object.keys(extensions).length > 0) {
      throw notAllowed("host certificates carry no extensions", field);
    }
    return {};
  }
  if (Object.keys(extensions).length === 0) {
    if (!role.defaultExtensionsTemplate) return { ...role.defaultExtensions };
    const variables = identityVariables(identity);
    const rendered: Record<string, string> = {};
    for (const [name, value] of Object.entries(role.defaultExtensions)) {
      const text = renderTemplate(value, variables);
      if (text !== undefined) rendered[name] = text;
    }
    return rendered;
  }
  const allowed = role.allowedExtensions;
  for (const [name, value] of Object.entries(extensions)) {
    if (!allowed.includes("*") && !allowed.includes(name)) {
      throw notAllowed(
        `extension "${name}" is not in the role's allowed_extensions`,
        `${field}.${name}`,
      );
    }
    checkKnownValue("extension", name, value, field);
  }
  return extensions;
}
