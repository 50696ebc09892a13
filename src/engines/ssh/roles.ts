import { parseDuration } from "../../auth/duration.ts";
import { KeywardError, missingField } from "../../errors.ts";
import { checkKeyId, checkPrincipal } from "./names.ts";
import { checkOptionValues } from "./options.ts";
import {
  parseBoolean,
  parseKeyLengths,
  parseList,
  parseOptionMap,
  parseString,
  validateOptionName,
} from "./role-fields.ts";
import { RSA_SIGNATURE_ALGORITHMS, type RsaSignatureAlgorithm } from "./signatures.ts";
import { renderSample } from "./templates.ts";
import type { RoleWrite, SshRole } from "./types.ts";

/** Certificate lifetime when neither the request nor the role sets one: 1 hour. */
export const DEFAULT_TTL_SECONDS = 3600;
/** Maximum certificate lifetime when the role sets no `max_ttl`: 768 hours, Vault's system maximum. */
export const MAX_TTL_SECONDS = 768 * 3600;
/** Seconds `valid_after` is backdated by unless the role sets `not_before_duration`: 30, as in Vault. */
const DEFAULT_NOT_BEFORE_SECONDS = 30;
/** Key ID template when the role sets no `key_id_format`. */
export const DEFAULT_KEY_ID_FORMAT = "keyward-{{token_display_name}}-{{public_key_hash}}";

export const MAX_ROLE_NAME_LENGTH = 128;
const ROLE_NAME_PATTERN = /^\w(?:[\w.-]*\w)?$/;

/** Throws `invalid_field` naming `field` unless `name` is a valid role or key name (one path segment). */
export function validateRoleName(name: string, field = "role"): void {
  if (name.length === 0 || name.length > MAX_ROLE_NAME_LENGTH || !ROLE_NAME_PATTERN.test(name)) {
    throw new KeywardError(
      "invalid_field",
      `invalid ${field}: use 1 to ${MAX_ROLE_NAME_LENGTH} letters, digits, "_", "." or "-", starting and ending with a letter, digit or "_"`,
      { field },
    );
  }
}

/**
 * Builds a role from a write, as Vault does: the write replaces the whole
 * role, and fields it leaves out take their defaults. Throws `invalid_field`,
 * `missing_field` or `unsupported_operation` naming the field at fault.
 */
export function buildRole(write: RoleWrite): SshRole {
  if (write.keyType === undefined) throw missingField("key_type");
  if (write.keyType !== "ca") {
    throw new KeywardError(
      "unsupported_operation",
      '"key_type" must be "ca"; Keyward signs certificates and has no OTP or dynamic keys',
      { field: "key_type" },
    );
  }

  const ttl = write.ttl === undefined ? 0 : parseDuration(write.ttl as number | string, "ttl");
  const maxTtl =
    write.maxTtl === undefined ? 0 : parseDuration(write.maxTtl as number | string, "max_ttl");
  if (ttl > 0 && maxTtl > 0 && ttl > maxTtl) {
    throw new KeywardError("invalid_field", '"ttl" must not exceed "max_ttl"', { field: "ttl" });
  }
  if (maxTtl > MAX_TTL_SECONDS || ttl > MAX_TTL_SECONDS) {
    throw new KeywardError(
      "invalid_field",
      `"${maxTtl > MAX_TTL_SECONDS ? "max_ttl" : "ttl"}" must be at most ${MAX_TTL_SECONDS} seconds (768h)`,
      { field: maxTtl > MAX_TTL_SECONDS ? "max_ttl" : "ttl" },
    );
  }

  const signer = parseString(write.algorithmSigner, "algorithm_signer");
  if (
    signer !== "" &&
    signer !== "default" &&
    !(RSA_SIGNATURE_ALGORITHMS as readonly string[]).includes(signer)
  ) {
    throw new KeywardError(
      "invalid_field",
      `"algorithm_signer" must be default, ${RSA_SIGNATURE_ALGORITHMS.join(" or ")}; ssh-rsa (SHA-1) signatures are not supported`,
      { field: "algorithm_signer" },
    );
  }

  const role: SshRole = {
    keyType: "ca",
    allowUserCertificates: parseBoolean(
      write.allowUserCertificates,
      "allow_user_certificates",
      false,
    ),
    allowHostCertificates: parseBoolean(
      write.allowHostCertificates,
      "allow_host_certificates",
      false,
    ),
    allowedUsers: parseList(write.allowedUsers, "allowed_users"),
    allowedUsersTemplate: parseBoolean(write.allowedUsersTemplate, "allowed_users_template", false),
    defaultUser: parseString(write.defaultUser, "default_user"),
    defaultUserTemplate: parseBoolean(write.defaultUserTemplate, "default_user_template", false),
    allowedDomains: parseList(write.allowedDomains, "allowed_domains"),
    allowedDomainsTemplate: parseBoolean(
      write.allowedDomainsTemplate,
      "allowed_domains_template",
      false,
    ),
    allowSubdomains: parseBoolean(write.allowSubdomains, "allow_subdomains", false),
    allowBareDomains: parseBoolean(write.allowBareDomains, "allow_bare_domains", false),
    allowedCriticalOptions: parseList(write.allowedCriticalOptions, "allowed_critical_options"),
    defaultCriticalOptions: checkOptionValues(
      "option",
      parseOptionMap(write.defaultCriticalOptions, "default_critical_options"),
      "default_critical_options",
    ),
    allowedExtensions: parseList(write.allowedExtensions, "allowed_extensions"),
    defaultExtensions: parseOptionMap(write.defaultExtensions, "default_extensions"),
    defaultExtensionsTemplate: parseBoolean(
      write.defaultExtensionsTemplate,
      "default_extensions_template",
      false,
    ),
    ttl,
    maxTtl,
    notBeforeDuration:
      write.notBeforeDuration === undefined
        ? DEFAULT_NOT_BEFORE_SECONDS
        : parseDuration(write.notBeforeDuration as number | string, "not_before_duration"),
    allowedUserKeyLengths: parseKeyLengths(write.allowedUserKeyLengths),
    keyIdFormat: parseString(write.keyIdFormat, "key_id_format"),
    allowUserKeyIds: parseBoolean(write.allowUserKeyIds, "allow_user_key_ids", false),
    allowEmptyPrincipals: parseBoolean(write.allowEmptyPrincipals, "allow_empty_principals", false),
    algorithmSigner: signer === "default" ? "" : (signer as RsaSignatureAlgorithm | ""),
    noStore: parseBoolean(write.noStore, "no_store", false),
  };

  checkRoleNames(role);
  if (!role.allowUserCertificates && !role.allowHostCertificates) {
    throw new KeywardError(
      "invalid_field",
      'set "allow_user_certificates" or "allow_host_certificates" to true; a role that allows neither signs nothing',
      { field: "allow_user_certificates" },
    );
  }
  for (const name of [...role.allowedCriticalOptions, ...role.allowedExtensions]) {
    if (name !== "*") validateOptionName(name, "allowed_critical_options");
  }
  return role;
}

/**
 * Rejects a `default_user` or `key_id_format` that could never go into a
 * certificate. A template is checked with a sample value for each variable,
 * and its rendered value again when a certificate is signed.
 */
function checkRoleNames(role: SshRole): void {
  if (role.defaultUser !== "") {
    const sample = role.defaultUserTemplate ? renderSample(role.defaultUser) : role.defaultUser;
    checkPrincipal(sample, "default_user");
  }
  if (role.keyIdFormat !== "") checkKeyId(renderSample(role.keyIdFormat), "key_id_format");
}

/** Returns the TTL and max TTL, in seconds, that apply to a role's certificates: its own, else the engine defaults. */
export function effectiveTtls(role: SshRole): { ttl: number; maxTtl: number } {
  const maxTtl = role.maxTtl > 0 ? role.maxTtl : MAX_TTL_SECONDS;
  const ttl = role.ttl > 0 ? role.ttl : Math.min(DEFAULT_TTL_SECONDS, maxTtl);
  return { ttl, maxTtl };
}

/**
 * Returns a role as Vault's role read returns it: list fields as
 * comma-separated strings, and `ttl`, `max_ttl` and `key_id_format` as
 * written, so 0 or "" when left out. The `effective_*` fields (Keyward
 * extension) give the values that apply.
 */
export function roleToWire(role: SshRole): Record<string, unknown> {
  const effective = effectiveTtls(role);
  return {
    key_type: role.keyType,
    allow_user_certificates: role.allowUserCertificates,
    allow_host_certificates: role.allowHostCertificates,
    allowed_users: role.allowedUsers.join(","),
    allowed_users_template: role.allowedUsersTemplate,
    default_user: role.defaultUser,
    default_user_template: role.defaultUserTemplate,
    allowed_domains: role.allowedDomains.join(","),
    allowed_domains_template: role.allowedDomainsTemplate,
    allow_subdomains: role.allowSubdomains,
    allow_bare_domains: role.allowBareDomains,
    allowed_critical_options: role.allowedCriticalOptions.join(","),
    default_critical_options: role.defaultCriticalOptions,
    allowed_extensions: role.allowedExtensions.join(","),
    default_extensions: role.defaultExtensions,
    default_extensions_template: role.defaultExtensionsTemplate,
    ttl: role.ttl,
    max_ttl: role.maxTtl,
    not_before_duration: role.notBeforeDuration,
    allowed_user_key_lengths: role.allowedUserKeyLengths,
    key_id_format: role.keyIdFormat,
    allow_user_key_ids: role.allowUserKeyIds,
    allow_empty_principals: role.allowEmptyPrincipals,
    algorithm_signer: role.algorithmSigner === "" ? "default" : role.algorithmSigner,
    no_store: role.noStore,
    effective_ttl: effective.ttl,
    effective_max_ttl: effective.maxTtl,
    effective_key_id_format: role.keyIdFormat || DEFAULT_KEY_ID_FORMAT,
  };
}

/**
 * Returns the size rule for a key under `allowed_user_key_lengths`: the entry
 * for its exact type, else for its family (`rsa`, `ec`, `ed25519`). Returns
 * `undefined` when the map has no entry for the key.
 */
export function keyLengthRule(role: SshRole, algorithm: string): number | number[] | undefined {
  const lengths = role.allowedUserKeyLengths;
  let family = "ec";
  if (algorithm === "ssh-rsa") family = "rsa";
  if (algorithm === "ssh-ed25519") family = "ed25519";
  return lengths[algorithm] ?? lengths[family];
}
