import { parseDuration } from "../../auth/duration.ts";
import { KeywardError } from "../../errors.ts";
import { KEY_BITS, keySpec } from "./key-pairs.ts";
import { splitList } from "./names.ts";
import * as x509 from "./x509.ts";

/** A role as Vault stores and returns it: snake_case fields, durations in seconds. */
export interface Role {
  ttl: number;
  max_ttl: number;
  allow_localhost: boolean;
  allowed_domains: string[];
  allow_bare_domains: boolean;
  allow_subdomains: boolean;
  allow_glob_domains: boolean;
  allow_wildcard_certificates: boolean;
  allow_any_name: boolean;
  enforce_hostnames: boolean;
  allow_ip_sans: boolean;
  allowed_uri_sans: string[];
  allowed_other_sans: string[];
  server_flag: boolean;
  client_flag: boolean;
  code_signing_flag: boolean;
  email_protection_flag: boolean;
  key_type: "rsa" | "ec" | "ed25519" | "any";
  key_bits: number;
  key_usage: string[];
  ext_key_usage: string[];
  ext_key_usage_oids: string[];
  use_csr_common_name: boolean;
  use_csr_sans: boolean;
  ou: string[];
  organization: string[];
  country: string[];
  locality: string[];
  province: string[];
  street_address: string[];
  postal_code: string[];
  require_cn: boolean;
  policy_identifiers: string[];
  basic_constraints_valid_for_non_ca: boolean;
  not_before_duration: number;
  no_store: boolean;
  generate_lease: boolean;
  issuer_ref: string;
}

/** A role write as sent: list fields as arrays or comma-separated strings, durations as seconds or strings. */
export type RoleInput = {
  [K in keyof Role]?: Role[K] extends string[]
    ? string[] | string
    : Role[K] extends number
      ? number | string
      : Role[K];
};

/** Vault's defaults for a new role. */
export const ROLE_DEFAULTS: Readonly<Role> = Object.freeze({
  ttl: 0,
  max_ttl: 0,
  allow_localhost: true,
  allowed_domains: [],
  allow_bare_domains: false,
  allow_subdomains: false,
  allow_glob_domains: false,
  allow_wildcard_certificates: true,
  allow_any_name: false,
  enforce_hostnames: true,
  allow_ip_sans: true,
  allowed_uri_sans: [],
  allowed_other_sans: [],
  server_flag: true,
  client_flag: true,
  code_signing_flag: false,
  email_protection_flag: false,
  key_type: "rsa",
  key_bits: 0,
  key_usage: ["DigitalSignature", "KeyAgreement", "KeyEncipherment"],
  ext_key_usage: [],
  ext_key_usage_oids: [],
  use_csr_common_name: true,
  use_csr_sans: true,
  ou: [],
  organization: [],
  country: [],
  locality: [],
  province: [],
  street_address: [],
  postal_code: [],
  require_cn: true,
  policy_identifiers: [],
  basic_constraints_valid_for_non_ca: false,
  not_before_duration: 30,
  no_store: false,
  generate_lease: false,
  issuer_ref: "default",
});

export const LIST_FIELDS = [
  "allowed_domains",
  "allowed_uri_sans",
  "allowed_other_sans",
  "key_usage",
  "ext_key_usage",
  "ext_key_usage_oids",
  "ou",
  "organization",
  "country",
  "locality",
  "province",
  "street_address",
  "postal_code",
  "policy_identifiers",
] as const;

export const DURATION_FIELDS = ["ttl", "max_ttl", "not_before_duration"] as const;

/** Key usage names as Vault accepts them (case-insensitive, with or without a `KeyUsage` prefix). */
export const KEY_USAGES: Record<string, x509.KeyUsageFlags> = {
  digitalsignature: x509.KeyUsageFlags.digitalSignature,
  contentcommitment: x509.KeyUsageFlags.nonRepudiation,
  keyencipherment: x509.KeyUsageFlags.keyEncipherment,
  dataencipherment: x509.KeyUsageFlags.dataEncipherment,
  keyagreement: x509.KeyUsageFlags.keyAgreement,
  certsign: x509.KeyUsageFlags.keyCertSign,
  crlsign: x509.KeyUsageFlags.cRLSign,
  encipheronly: x509.KeyUsageFlags.encipherOnly,
  decipheronly: x509.KeyUsageFlags.decipherOnly,
};

/** Extended key usage names as Vault accepts them, with their OIDs. */
export const EXT_KEY_USAGES: Record<string, string> = {
  any: "2.5.29.37.0",
  serverauth: "1.3.6.1.5.5.7.3.1",
  clientauth: "1.3.6.1.5.5.7.3.2",
  codesigning: "1.3.6.1.5.5.7.3.3",
  emailprotection: "1.3.6.1.5.5.7.3.4",
  ipsecendsystem: "1.3.6.1.5.5.7.3.5",
  ipsectunnel: "1.3.6.1.5.5.7.3.6",
  ipsecuser: "1.3.6.1.5.5.7.3.7",
  timestamping: "1.3.6.1.5.5.7.3.8",
  ocspsigning: "1.3.6.1.5.5.7.3.9",
  microsoftservergatedcrypto: "1.3.6.1.4.1.311.10.3.3",
  netscapeservergatedcrypto: "2.16.840.1.113730.4.1",
};

const OID = /^[0-2](\.(0|[1-9]\d{0,9})){1,30}$/;

/** Returns the key usage flags of a list of names, throwing `invalid_field` on an unknown name. */
export function keyUsageFlags(names: string[], field = "key_usage"): number {
  let flags = 0;
  for (const name of names) {
    const flag = KEY_USAGES[name.toLowerCase().replace(/^keyusage/, "")];
    if (flag === undefined) {
      throw new KeywardError(
        "invalid_field",
        `"${field}" contains an unknown key usage "${name}"`,
        {
          field,
        },
      );
    }
    flags |= flag;
  }
  return flags;
}

/** Returns the OIDs of extended key usage names, throwing `invalid_field` on an unknown name. */
export function extKeyUsageOids(names: string[], field = "ext_key_usage"): string[] {
  return names.map((name) => {
    const oid = EXT_KEY_USAGES[name.toLowerCase().replace(/^extkeyusage/, "")];
    if (oid === undefined) {
      throw new KeywardError(
        "invalid_field",
        `"${field}" contains an unknown extended key usage "${name}"`,
        { field },
      );
    }
    return oid;
  });
}

/** Throws `invalid_field` naming `field` unless every entry is a dotted OID. */
export function checkOids(oids: string[], field: string): void {
  for (const oid of oids) {
    if (!OID.test(oid)) {
      throw new KeywardError("invalid_field", `"${field}" contains "${oid}", which is not an OID`, {
        field,
      });
    }
  }
}

/**
 * Builds a role from a write request: fields not sent take Vault's
 * defaults, as a role write in Vault replaces the whole role. Validates
 * every field and throws `invalid_field` naming the first invalid one.
 */
export function buildRole(input: RoleInput): Role {
  const role: Record<string, unknown> = { ...ROLE_DEFAULTS };
  for (const [name, value] of Object.entries(input)) {
    if (value === undefined) continue;
    if ((LIST_FIELDS as readonly string[]).includes(name)) {
      role[name] = splitList(value as string | string[]);
    } else if ((DURATION_FIELDS as readonly string[]).includes(name)) {
      role[name] = parseDuration(value as number | string, name);
    } else {
      role[name] = value;
    }
  }
  const built = role as unknown as Role;

  if (built.key_type !== "any") {
    const spec = keySpec(built.key_type, built.key_bits);
    built.key_bits = spec.bits;
  } else if (built.key_bits !== 0 && !Object.values(KEY_BITS).flat().includes(built.key_bits)) {
    throw new KeywardError("invalid_field", `"key_bits" ${built.key_bits} is not supported`, {
      field: "key_bits",
    });
  }
  keyUsageFlags(built.key_usage);
  extKeyUsageOids(built.ext_key_usage);
  checkOids(built.ext_key_usage_oids, "ext_key_usage_oids");
  checkOids(built.policy_identifiers, "policy_identifiers");
  if (built.max_ttl !== 0 && built.ttl > built.max_ttl) {
    throw new KeywardError("invalid_field", '"ttl" must not be longer than "max_ttl"', {
      field: "ttl",
    });
  }
  for (const country of built.country) {
    if (!/^[A-Za-z]{2}$/.test(country)) {
      throw new KeywardError(
        "invalid_field",
        `"country" must be two-letter codes, not "${country}"`,
        {
          field: "country",
        },
      );
    }
  }
  return built;
}

/** Returns the extended key usage OIDs of a role's certificates: from its flags, names and raw OIDs. */
export function roleExtKeyUsageOids(role: Role): string[] {
  const oids: string[] = [];
  if (role.server_flag) oids.push(EXT_KEY_USAGES.serverauth!);
  if (role.client_flag) oids.push(EXT_KEY_USAGES.clientauth!);
  if (role.code_signing_flag) oids.push(EXT_KEY_USAGES.codesigning!);
  if (role.email_protection_flag) oids.push(EXT_KEY_USAGES.emailprotection!);
  oids.push(...extKeyUsageOids(role.ext_key_usage), ...role.ext_key_usage_oids);
  return [...new Set(oids)];
}
