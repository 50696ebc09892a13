import { isIP } from "node:net";
import { KeywardError } from "../../../errors.ts";
import type { PkiStore } from "../store.ts";

export const EAB_POLICIES = ["not-required", "new-account-required", "always-required"] as const;
export type EabPolicy = (typeof EAB_POLICIES)[number];

/**
 * The mount's ACME settings, at `<mount>/config/acme`, in the shape the
 * API reads and writes. Field names follow Vault's `config/acme` where
 * Vault has the field; the validator's fields are Keyward's own.
 */
export interface AcmeConfig {
  enabled: boolean;
  /**
   * The issuance policy of the mount's default directory (`<mount>/acme/`):
   * `sign-verbatim` (any validated name, server-auth usage only),
   * `role:<name>`, or `forbid`.
   */
  default_directory_policy: string;
  /** Roles whose directories (`<mount>/roles/<role>/acme/`) are served; `*` allows every role. */
  allowed_roles: string[];
  /** The external account binding policy of every directory that `directory_eab_policies` does not name. */
  eab_policy: EabPolicy;
  /**
   * External account binding policies of single directories, keyed by the
   * directory's path below the mount: `acme` for the mount's default
   * directory and `roles/<role>/acme` for a role's. Each overrides `eab_policy`.
   */
  directory_eab_policies: Record<string, EabPolicy>;
  /** DNS server for dns-01 and for resolving names, as `host` or `host:port`; empty uses the system's. */
  dns_resolver: string;
  /**
   * The mount's external URL, such as `https://keyward.example:8200/v1/pki`.
   * Empty builds URLs from each request's protocol and Host header.
   */
  base_url: string;
  /** Networks (CIDR) the validator may connect to; empty allows only public unicast addresses. */
  allowed_networks: string[];
  /** Names the validator resolves without DNS: exact names or `*.<domain>`, mapped to an IP address. */
  hosts: Record<string, string>;
  /** Port of http-01 requests; 80 in production (RFC 8555 section 8.3). */
  http_port: number;
  /** Port of tls-alpn-01 handshakes; 443 in production (RFC 8737 section 3). */
  tls_port: number;
  /** Time limit of one validation attempt, in seconds. */
  validation_timeout_seconds: number;
  /** Redirects an http-01 request follows at most. */
  max_redirects: number;
}

export const ACME_CONFIG_DEFAULTS: Readonly<AcmeConfig> = Object.freeze({
  enabled: false,
  default_directory_policy: "sign-verbatim",
  allowed_roles: ["*"],
  eab_policy: "not-required",
  directory_eab_policies: {},
  dns_resolver: "",
  base_url: "",
  allowed_networks: [],
  hosts: {},
  http_port: 80,
  tls_port: 443,
  validation_timeout_seconds: 10,
  max_redirects: 10,
});

const CONFIG_PATH = "config/acme";

/** A key of `directory_eab_policies`: `acme`, or `roles/<role>/acme` with a role name. */
const DIRECTORY_KEY = /^(?:acme|roles\/[\w.-]{1,128}\/acme)$/;

/** Returns a directory's key in `directory_eab_policies`: `acme` for the default directory (`""`), else `roles/<role>/acme`. */
export function directoryKeyOf(directory: string): string {
  return directory === "" ? "acme" : `roles/${directory}/acme`;
}

/** Returns the external account binding policy of one directory: its own entry, else the mount's `eab_policy`. */
export function eabPolicyOf(config: AcmeConfig, directory: string): EabPolicy {
  const key = directoryKeyOf(directory);
  return Object.hasOwn(config.directory_eab_policies, key)
    ? config.directory_eab_policies[key]!
    : config.eab_policy;
}

/** Reads the mount's ACME settings, with defaults for fields never written. */
export async function readAcmeConfig(store: PkiStore): Promise<AcmeConfig> {
  return { ...ACME_CONFIG_DEFAULTS, ...(await store.get<Partial<AcmeConfig>>(CONFIG_PATH)) };
}

/** Validates and stores changes to the ACME settings; returns the full settings. */
export async function writeAcmeConfig(
  store: PkiStore,
  changes: Partial<AcmeConfig>,
): Promise<AcmeConfig> {
  return store.withLock(CONFIG_PATH, async () => {
    const updated: AcmeConfig = { ...(await readAcmeConfig(store)), ...changes };
    validateAcmeConfig(updated);
    await store.put(CONFIG_PATH, updated);
    return updated;
  });
}

/** Splits a CIDR such as `10.0.0.0/8` into its address, family and prefix length; undefined when invalid. */
export function parseCidr(
  cidr: string,
): { address: string; family: "ipv4" | "ipv6"; prefix: number } | undefined {
  const [address, prefixText, extra] = cidr.split("/");
  if (address === undefined || extra !== undefined) return undefined;
  const version = isIP(address);
  if (version === 0) return undefined;
  const maxPrefix = version === 4 ? 32 : 128;
  const prefix = prefixText === undefined ? maxPrefix : Number(prefixText);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > maxPrefix) return undefined;
  if (prefixText !== undefined && !/^\d{1,3}$/.test(prefixText)) return undefined;
  return { address, family: version === 4 ? "ipv4" : "ipv6", prefix };
}

function validateAcmeConfig(config: AcmeConfig): void {
  const policy = config.default_directory_policy;
  if (policy !== "sign-verbatim" && policy !== "forbid" && !/^role:[\w.-]{1,128}$/.test(policy)) {
    throw new KeywardError(
      "invalid_field",
      '"default_directory_policy" must be "sign-verbatim", "forbid" or "role:<role name>"',
      { field: "default_directory_policy" },
    );
  }
  if (!(EAB_POLICIES as readonly string[]).includes(config.eab_policy)) {
    throw new KeywardError(
      "invalid_field",
      `"eab_policy" must be one of ${EAB_POLICIES.join(", ")}`,
      {
        field: "eab_policy",
      },
    );
  }
  for (const [key, policy] of Object.entries(config.directory_eab_policies)) {
    if (!DIRECTORY_KEY.test(key) || !(EAB_POLICIES as readonly string[]).includes(policy)) {
      throw new KeywardError(
        "invalid_field",
        `"directory_eab_policies" maps "${key}" to "${policy}"; map "acme" or "roles/<role>/acme" to one of ${EAB_POLICIES.join(", ")}`,
        { field: "directory_eab_policies" },
      );
    }
  }
  if (config.dns_resolver !== "" && !isResolverAddress(config.dns_resolver)) {
    throw new KeywardError(
      "invalid_field",
      '"dns_resolver" must be an IP address, optionally with a port ("192.0.2.53:53" or "[2001:db8::53]:53")',
      { field: "dns_resolver" },
    );
  }
  if (config.base_url !== "") {
    const url = URL.canParse(config.base_url) ? new URL(config.base_url) : undefined;
    if (!url || (url.protocol !== "https:" && url.protocol !== "http:") || url.search !== "") {
      throw new KeywardError(
        "invalid_field",
        '"base_url" must be an http or https URL without a query, such as https://keyward.example:8200/v1/pki',
        { field: "base_url" },
      );
    }
    config.base_url = config.base_url.replace(/\/+$/, "");
  }
  for (const cidr of config.allowed_networks) {
    if (!parseCidr(cidr)) {
      throw new KeywardError(
        "invalid_field",
        `"allowed_networks" contains "${cidr}", which is not a CIDR such as 10.0.0.0/8`,
        { field: "allowed_networks" },
      );
    }
  }
  for (const [name, address] of Object.entries(config.hosts)) {
    if (isIP(address) === 0 || name === "") {
      throw new KeywardError(
        "invalid_field",
        `"hosts" maps "${name}" to "${address}"; map each name to an IP address`,
        { field: "hosts" },
      );
    }
  }
  for (const field of ["http_port", "tls_port"] as const) {
    const port = config[field];
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new KeywardError("invalid_field", `"${field}" must be a port from 1 to 65535`, {
        field,
      });
    }
  }
  if (
    !Number.isFinite(config.validation_timeout_seconds) ||
    config.validation_timeout_seconds <= 0 ||
    config.validation_timeout_seconds > 300
  ) {
    throw new KeywardError(
      "invalid_field",
      '"validation_timeout_seconds" must be more than 0 and at most 300',
      { field: "validation_timeout_seconds" },
    );
  }
  if (
    !Number.isInteger(config.max_redirects) ||
    config.max_redirects < 0 ||
    config.max_redirects > 20
  ) {
    throw new KeywardError("invalid_field", '"max_redirects" must be an integer from 0 to 20', {
      field: "max_redirects",
    });
  }
}

function isResolverAddress(value: string): boolean {
  if (isIP(value) !== 0) return true;
  const bracketed = /^\[([^\]]+)\]:(\d{1,5})$/.exec(value);
  if (bracketed) return isIP(bracketed[1]!) === 6 && Number(bracketed[2]) <= 65535;
  const withPort = /^([^:]+):(\d{1,5})$/.exec(value);
  return withPort !== null && isIP(withPort[1]!) === 4 && Number(withPort[2]) <= 65535;
}
