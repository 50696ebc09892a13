import { isKeywardError } from "../../../errors.ts";
import { checkNames } from "../names.ts";
import { ROLE_DEFAULTS, type Role } from "../roles.ts";
import type { PkiService } from "../service.ts";
import type { AcmeConfig } from "./config.ts";
import { AcmeProblem, PROBLEM_PREFIX, type ProblemDocument } from "./problems.ts";
import type { Identifier } from "./records.ts";

/** The role a directory issues with; `roleName` is `""` under the sign-verbatim policy. */
export interface IssuancePolicy {
  roleName: string;
  role: Role;
}

/**
 * The role of the sign-verbatim policy: any name the client proved control
 * of, any key type, and server authentication only. Only the names of the
 * order reach the certificate; the CSR's other subject fields are dropped.
 */
const SIGN_VERBATIM_ROLE: Readonly<Role> = Object.freeze({
  ...ROLE_DEFAULTS,
  allow_any_name: true,
  allow_ip_sans: true,
  allow_wildcard_certificates: true,
  key_type: "any",
  key_bits: 0,
  client_flag: false,
  server_flag: true,
  use_csr_common_name: false,
  use_csr_sans: false,
});

/**
 * Returns the role a directory issues with. Throws `unauthorized` when
 * ACME is disabled on the mount, when the default directory's policy is
 * `forbid`, or when the role is not in `allowed_roles`, and `malformed`
 * (404) when the role does not exist.
 */
export async function issuancePolicy(
  pki: PkiService,
  config: AcmeConfig,
  directory: string,
): Promise<IssuancePolicy> {
  if (!config.enabled) {
    throw new AcmeProblem(
      "unauthorized",
      "ACME is not enabled on this mount; enable it in config/acme",
    );
  }
  let roleName = directory;
  if (directory === "") {
    const policy = config.default_directory_policy;
    if (policy === "forbid") {
      throw new AcmeProblem(
        "unauthorized",
        "the default ACME directory is disabled (default_directory_policy is forbid); use a role's directory",
      );
    }
    if (policy === "sign-verbatim") return { roleName: "", role: SIGN_VERBATIM_ROLE };
    roleName = policy.slice("role:".length);
  } else if (!config.allowed_roles.includes("*") && !config.allowed_roles.includes(directory)) {
    throw new AcmeProblem("unauthorized", `role "${directory}" is not in the ACME allowed_roles`);
  }
  const role = await pki.readRole(roleName);
  if (!role) throw new AcmeProblem("malformed", `role "${roleName}" not found`, { status: 404 });
  if (role.no_store) {
    throw new AcmeProblem(
      "unauthorized",
      `role "${roleName}" has no_store set; ACME needs stored certificates for download and revocation`,
    );
  }
  return { roleName, role };
}

/**
 * Checks each identifier against the role's name rules. Throws
 * `rejectedIdentifier` with one subproblem per rejected identifier.
 */
export function checkIdentifiersAllowed(policy: IssuancePolicy, identifiers: Identifier[]): void {
  const subproblems: ProblemDocument[] = [];
  for (const identifier of identifiers) {
    try {
      checkNames(policy.role, {
        commonName: "",
        altNames: identifier.type === "dns" ? [identifier.value] : [],
        ipSans: identifier.type === "ip" ? [identifier.value] : [],
        uriSans: [],
        excludeCnFromSans: true,
      });
    } catch (error) {
      if (!isKeywardError(error) || !error.isClientError) throw error;
      subproblems.push({
        type: `${PROBLEM_PREFIX}rejectedIdentifier`,
        detail: `the role does not allow ${identifier.type} identifier "${identifier.value}"`,
        identifier,
      });
    }
  }
  if (subproblems.length === 1) {
    const only = subproblems[0]!;
    throw new AcmeProblem("rejectedIdentifier", only.detail, { identifier: only.identifier });
  }
  if (subproblems.length > 1) {
    throw new AcmeProblem(
      "rejectedIdentifier",
      `the role does not allow ${subproblems.length} of the identifiers`,
      { subproblems },
    );
  }
}
