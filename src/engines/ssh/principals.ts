import { KeywardError } from "../../errors.ts";
import type { CertificateType } from "./certificate.ts";
import { checkPrincipal, checkPrincipalCount } from "./names.ts";
import { parseList } from "./role-fields.ts";
import { renderAll } from "./templates.ts";
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
 * Returns the role's default user for a request that names no principals,
 * rendered from the caller's identity when it is a template, or `undefined`
 * when there is none. The result must be a valid principal: token metadata
 * could otherwise put spaces, commas or NUL bytes into the certificate.
 * Role writes check a static value already; the check here also covers
 * roles stored before that check existed.
 */
function defaultUser(role: SshRole, identity: RequesterIdentity): string | undefined {
  if (role.defaultUser === "") return undefined;
  const user = renderAll([role.defaultUser], role.defaultUserTemplate, identity)[0];
  if (user === undefined) return undefined;
  checkPrincipal(
    user,
    "default_user",
    role.defaultUserTemplate
      ? "the role's default_user template rendered an invalid principal from the caller's token"
      : "the role's default_user is an invalid principal; write the role again with a valid one",
  );
  return user;
}

/**
 * Decides the certificate's principals: the requested ones, each allowed by
 * the role (users for user certificates, host names for host certificates),
 * or the role's default user when none are requested. An empty list is
 * valid for any principal in OpenSSH, so it needs `allow_empty_principals`.
 * More than 256 principals are rejected, because OpenSSH cannot read them.
 */
export function validPrincipals(
  role: SshRole,
  type: CertificateType,
  requested: string | undefined,
  identity: RequesterIdentity,
): string[] {
  const field = "valid_principals";
  const principals = [...new Set(parseList(requested, field))];
  for (const principal of principals) checkPrincipal(principal, field);
  checkPrincipalCount(principals.length, field);
  if (principals.length === 0) {
    if (type === "user") {
      const user = defaultUser(role, identity);
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
