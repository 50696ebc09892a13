import { KeywardError } from "../../errors.ts";
import type { CertificateType } from "./certificate.ts";
import { parseList } from "./roles.ts";
import { hasControlCharacter, renderAll } from "./templates.ts";
import type { RequesterIdentity, SshRole } from "./types.ts";

/** Returns the error for a requested name that the role does not allow. */
export function notAllowed(message: string, field: string): KeywardError {
  return new KeywardError("name_not_allowed", message, { field });
}

/** Returns whether `name` is a host name the role's `allowed_domains` allow. */
function hostAllowed(role: SshRole, domains: string[], name: string): boolean {
  return domains.some((domain) => {
    if (domain === "*") return true;
    if (name === domain) return role.allowBareDomains;
    return role.allowSubdomains && name.endsWith(`.${domain}`) && name.length > domain.length + 1;
  });
}

/**
 * Decides the certificate's principals: the requested ones, each allowed by
 * the role (users for user certificates, host names for host certificates),
 * or the role's default user when none are requested. An empty list is
 * valid for any principal in OpenSSH, so it needs `allow_empty_principals`.
 */
export function validPrincipals(
  role: SshRole,
  type: CertificateType,
  requested: string | undefined,
  identity: RequesterIdentity,
): string[] {
  const field = "valid_principals";
  const principals = [...new Set(parseList(requested, field))];
  for (const principal of principals) {
    if (principal.length > 255 || /\s/.test(principal) || hasControlCharacter(principal)) {
      throw new KeywardError(
        "invalid_field",
        `"${field}" has an invalid principal; use up to 255 characters without spaces or control characters`,
        { field },
      );
    }
  }
  if (principals.length === 0) {
    if (type === "user" && role.defaultUser !== "") {
      const user = renderAll([role.defaultUser], role.defaultUserTemplate, identity)[0];
      if (user !== undefined) return [user];
    }
    if (role.allowEmptyPrincipals) return [];
    throw new KeywardError(
      "missing_field",
      `"${field}" is empty and the role has no default; an empty list would be valid for every ${type === "user" ? "user" : "host"}`,
      { field },
    );
  }
  if (type === "user") {
    // As in Vault, a requested default_user must also be in allowed_users.
    const allowed = renderAll(role.allowedUsers, role.allowedUsersTemplate, identity);
    if (allowed.includes("*")) return principals;
    for (const principal of principals) {
      if (!allowed.includes(principal)) {
        throw notAllowed(`principal "${principal}" is not in the role's allowed_users`, field);
      }
    }
    return principals;
  }
  const domains = renderAll(role.allowedDomains, role.allowedDomainsTemplate, identity);
  for (const principal of principals) {
    if (!hostAllowed(role, domains, principal)) {
      throw notAllowed(
        `host name "${principal}" is not allowed by the role's allowed_domains`,
        field,
      );
    }
  }
  return principals;
}
