import { isIP } from "node:net";
import { domainToASCII } from "node:url";
import { KeywardError } from "../../errors.ts";
import { globMatch } from "../../util/glob.ts";
import type { Role } from "./roles.ts";

/**
 * A subject alternative name. `other` is an otherName whose value is a
 * UTF8String, written as Vault writes it: `<oid>;UTF8:<value>`.
 */
export interface AltName {
  type: "dns" | "ip" | "email" | "url" | "other";
  value: string;
}

/** Longest DNS name accepted, in characters (RFC 1035). */
const MAX_HOSTNAME_LENGTH = 253;
const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/** Splits a Vault list field: an array or a string, each item comma-separated, as Vault's comma-string slices are. Empty entries are dropped. */
export function splitList(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  const items = (Array.isArray(value) ? value : [value]).flatMap((item) => item.split(","));
  return items.map((item) => item.trim()).filter((item) => item !== "");
}

/**
 * URL delimiters and `%`, which end a URL host, so `domainToASCII` would
 * convert only the part before them: `a.example.com/x` would become
 * `a.example.com`. Spaces and control characters are checked separately.
 */
const URL_HOST_DELIMITERS = /[/\\?#:@%[\]^|<>]/;

/** True when `text` contains a C0 control character or DEL, or a space unless `spaces` allows them. */
function hasControl(text: string, spaces = true): boolean {
  const lowest = spaces ? 0x20 : 0x21;
  for (let index = 0; index < text.length; index++) {
    const code = text.charCodeAt(index);
    if (code < lowest || code === 0x7f) return true;
  }
  return false;
}

/** True when `text` contains a space, a C0 control character or DEL. */
function hasSpaceOrControl(text: string): boolean {
  return hasControl(text, false);
}

/**
 * Converts a DNS name to its ASCII form: internationalised labels become
 * punycode (`xn--…`), as RFC 5280 section 7.2 requires in a dNSName. A
 * leading `*.` is kept. Returns undefined when the name cannot be converted
 * or contains a character at which URL host parsing would cut the name or
 * which it would drop. Also returns undefined for a name that converts to
 * an IPv4 address: the URL parser reads `010.0.0.1`, `0x7f.1` and
 * `2130706433` as numeric IPv4 forms.
 */
export function toAsciiHostname(name: string): string | undefined {
  const wildcard = name.startsWith("*.");
  const rest = wildcard ? name.slice(2) : name;
  if (rest === "" || URL_HOST_DELIMITERS.test(rest) || hasSpaceOrControl(rest)) return undefined;
  const ascii = domainToASCII(rest);
  if (ascii === "" || isIP(ascii) !== 0) return undefined;
  return wildcard ? `*.${ascii}` : ascii;
}

/** True when `name` (ASCII, optionally with a leading `*.`) is a valid hostname. */
export function isHostname(name: string): boolean {
  const bare = name.startsWith("*.") ? name.slice(2) : name;
  if (bare.length === 0 || bare.length > MAX_HOSTNAME_LENGTH) return false;
  return bare.split(".").every((label) => LABEL.test(label));
}

/** Names requested for a certificate, before the role's checks. */
export interface RequestedNames {
  commonName: string;
  /** otherName SANs in Vault's `<oid>;UTF8:<value>` form. */
  otherSans?: string[];
  /** Hostnames and email addresses from `alt_names` and the CSR. */
  altNames: string[];
  ipSans: string[];
  uriSans: string[];
  excludeCnFromSans: boolean;
}

/**
 * Checks every requested name against the role and returns the subject
 * alternative names to write. DNS names are converted to punycode; an IP
 * address, wherever it was requested, becomes an iPAddress name and never a
 * dNSName. Throws `name_not_allowed` naming the field of the first name the
 * role does not allow.
 */
export function checkNames(role: Role, names: RequestedNames): AltName[] {
  const sans: AltName[] = [];
  const seen = new Set<string>();
  const add = (name: AltName) => {
    const key = `${name.type}:${name.value}`;
    if (seen.has(key)) return;
    seen.add(key);
    sans.push(name);
  };

  const hostOrEmail = (raw: string, field: string) => {
    if (isIP(raw) !== 0) {
      checkIp(role, raw, field);
      add({ type: "ip", value: raw });
      return;
    }
    const name = checkHostOrEmail(role, raw, field);
    add(name.includes("@") ? { type: "email", value: name } : { type: "dns", value: name });
  };

  if (names.commonName !== "") {
    if (isIP(names.commonName) !== 0) checkIp(role, names.commonName, "common_name");
    else checkHostOrEmail(role, names.commonName, "common_name");
    if (!names.excludeCnFromSans) hostOrEmail(names.commonName, "common_name");
  }
  for (const name of names.altNames) hostOrEmail(name, "alt_names");
  for (const ip of names.ipSans) {
    if (isIP(ip) === 0) {
      throw new KeywardError(
        "invalid_field",
        `"ip_sans" contains "${ip}", which is not an IP address`,
        {
          field: "ip_sans",
        },
      );
    }
    checkIp(role, ip, "ip_sans");
    add({ type: "ip", value: ip });
  }
  for (const uri of names.uriSans) {
    // URL parsing drops tabs and line breaks, but a URI may contain neither (RFC 3986).
    if (!URL.canParse(uri) || hasSpaceOrControl(uri)) {
      throw new KeywardError("invalid_field", `"uri_sans" contains "${uri}", which is not a URI`, {
        field: "uri_sans",
      });
    }
    if (!role.allowed_uri_sans.some((pattern) => globMatch(pattern, uri))) {
      throw notAllowed("uri_sans", uri, "allowed_uri_sans");
    }
    add({ type: "url", value: uri });
  }
  for (const other of names.otherSans ?? []) {
    const parsed = parseOtherSan(other, "other_sans");
    if (!role.allowed_other_sans.some((pattern) => otherSanAllowed(pattern, parsed))) {
      throw notAllowed("other_sans", other, "allowed_other_sans");
    }
    add({ type: "other", value: `${parsed.oid};UTF8:${parsed.value}` });
  }
  return sans;
}

const OTHER_SAN = /^([0-2](?:\.(?:0|[1-9]\d{0,9})){1,30});(UTF8|UTF-8):(.*)$/s;

/** An otherName SAN: its type OID and UTF-8 value. */
export interface OtherSan {
  oid: string;
  value: string;
}

/**
 * Parses an otherName SAN in Vault's form `<oid>;UTF8:<value>` (`UTF-8`
 * is accepted too). Only UTF8String values are supported. Throws
 * `invalid_field` naming `field`.
 */
export function parseOtherSan(text: string, field: string): OtherSan {
  const match = OTHER_SAN.exec(text);
  if (!match) {
    throw new KeywardError(
      "invalid_field",
      `"${field}" contains "${text}", which is not of the form <oid>;UTF8:<value>`,
      { field },
    );
  }
  const value = match[3]!;
  // A line break in a value could make a certificate show another name than
  // the one its role matched, so control characters are rejected.
  if (hasControl(value)) {
    throw new KeywardError(
      "invalid_field",
      `"${field}" contains an otherName value with a control character`,
      { field },
    );
  }
  return { oid: match[1]!, value };
}

/** Matches an otherName against one `allowed_other_sans` entry: `*`, or `<oid>;UTF8:<glob>`. */
function otherSanAllowed(pattern: string, name: OtherSan): boolean {
  if (pattern === "*") return true;
  const match = OTHER_SAN.exec(pattern);
  return match !== null && match[1] === name.oid && globMatch(match[3]!, name.value);
}

function notAllowed(field: string, name: string, rule: string): KeywardError {
  return new KeywardError(
    "name_not_allowed",
    `"${field}" contains "${name}", which the role does not allow (see the role's ${rule})`,
    { field },
  );
}

function checkIp(role: Role, ip: string, field: string): void {
  if (!role.allow_ip_sans) throw notAllowed(field, ip, "allow_ip_sans");
}

/**
 * Checks a hostname or email address against the role's domain rules, as
 * Vault's roles apply them, and returns it in ASCII form.
 */
function checkHostOrEmail(role: Role, raw: string, field: string): string {
  const at = raw.lastIndexOf("@");
  const local = at >= 0 ? raw.slice(0, at + 1) : "";
  const domainPart = at >= 0 ? raw.slice(at + 1) : raw;
  const ascii = toAsciiHostname(domainPart.toLowerCase());
  if (ascii === undefined || (role.enforce_hostnames && !isHostname(ascii))) {
    throw new KeywardError(
      "invalid_field",
      `"${field}" contains "${raw}", which is not a valid ${at >= 0 ? "email address" : "hostname"}`,
      { field },
    );
  }
  const name = local + ascii;
  const [firstLabel = "", ...otherLabels] = ascii.split(".");
  const hasWildcard = firstLabel.includes("*");
  // A wildcard may only be one `*` in the leftmost label (RFC 6125 section 6.4.3),
  // also when enforce_hostnames is off and the label check above is skipped.
  if (
    firstLabel.indexOf("*") !== firstLabel.lastIndexOf("*") ||
    otherLabels.some((label) => label.includes("*"))
  ) {
    throw new KeywardError(
      "invalid_field",
      `"${field}" contains "${raw}", which has a wildcard outside the leftmost label or more than one`,
      { field },
    );
  }
  if (hasWildcard && !role.allow_wildcard_certificates) {
    throw notAllowed(field, raw, "allow_wildcard_certificates");
  }
  if (role.allow_any_name) return name;

  const wildcard = ascii.startsWith("*.");
  const bare = wildcard ? ascii.slice(2) : ascii;
  if (
    role.allow_localhost &&
    at < 0 &&
    ["localhost", "localdomain", "localhost.localdomain"].includes(bare)
  ) {
    return name;
  }
  for (const allowed of role.allowed_domains) {
    const domain = toAsciiHostname(allowed.toLowerCase()) ?? allowed.toLowerCase();
    if (!hasWildcard && bare === domain && role.allow_bare_domains) return name;
    if (role.allow_subdomains && (bare.endsWith(`.${domain}`) || (wildcard && bare === domain))) {
      return name;
    }
    if (role.allow_glob_domains && domain.includes("*") && globMatch(domain, ascii)) return name;
  }
  throw notAllowed(field, raw, "allowed_domains");
}
