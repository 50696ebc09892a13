import type { FastifyInstance } from "fastify";
import { KeywardError } from "../../../errors.ts";
import type { RoleInput } from "../roles.ts";
import {
  duration,
  listQuery,
  type PkiServiceResolver,
  requireList,
  roleParams,
  sendData,
  shortString,
  stringList,
  TAGS,
  WRITE_METHODS,
} from "./shared.ts";

const flag = (description: string) => ({ type: "boolean", description }) as const;

const roleBody = {
  type: "object",
  additionalProperties: false,
  properties: {
    ttl: duration("Default validity of issued certificates; 0 for the mount's default."),
    max_ttl: duration(
      "Maximum validity; 0 for the mount's max_lease_ttl. Longer requests are rejected.",
    ),
    allow_localhost: flag("Allow localhost and localdomain. Default true."),
    allowed_domains: stringList(
      "Domains the role may issue for; see allow_bare_domains, allow_subdomains and allow_glob_domains.",
    ),
    allow_bare_domains: flag("Allow the allowed_domains themselves."),
    allow_subdomains: flag("Allow subdomains of allowed_domains, including wildcards."),
    allow_glob_domains: flag("Treat `*` in allowed_domains as a glob."),
    allow_wildcard_certificates: flag("Allow names with a leading `*.`. Default true."),
    allow_any_name: flag("Allow any name."),
    enforce_hostnames: flag("Require DNS names to be valid hostnames. Default true."),
    allow_ip_sans: flag("Allow IP SANs. Default true."),
    allowed_uri_sans: stringList("Globs that URI SANs must match."),
    allowed_other_sans: stringList(
      "otherName SANs requests may carry: <oid>;UTF8:<glob>, or * for any.",
    ),
    server_flag: flag("Add the serverAuth extended key usage. Default true."),
    client_flag: flag("Add the clientAuth extended key usage. Default true."),
    code_signing_flag: flag("Add the codeSigning extended key usage."),
    email_protection_flag: flag("Add the emailProtection extended key usage."),
    key_type: {
      type: "string",
      enum: ["rsa", "ec", "ed25519", "any"],
      description: "Key type of issued keys, and required of CSRs. Default rsa.",
    },
    key_bits: {
      type: "integer",
      minimum: 0,
      maximum: 8192,
      description: "Key size; 0 for the type's default.",
    },
    key_usage: stringList("Key usages, such as DigitalSignature, KeyEncipherment, KeyAgreement."),
    ext_key_usage: stringList("Extended key usages by name, such as ServerAuth or IPSECEndSystem."),
    ext_key_usage_oids: stringList(
      "Extended key usages by OID, such as 1.3.6.1.5.5.7.3.17 for IPsec IKE.",
    ),
    use_csr_common_name: flag(
      "For sign: use the CSR's common name when the request has none. Default true.",
    ),
    use_csr_sans: flag("For sign: use the CSR's SANs. Default true."),
    ou: stringList("Organizational units of issued certificates."),
    organization: stringList("Organizations of issued certificates."),
    country: stringList("Countries of issued certificates."),
    locality: stringList("Localities of issued certificates."),
    province: stringList("Provinces of issued certificates."),
    street_address: stringList("Street addresses of issued certificates."),
    postal_code: stringList("Postal codes of issued certificates."),
    require_cn: flag("Require a common name. Default true."),
    policy_identifiers: stringList("Certificate policy OIDs."),
    basic_constraints_valid_for_non_ca: flag(
      "Add basic constraints CA:FALSE to issued certificates.",
    ),
    not_before_duration: duration("How far notBefore is backdated. Default 30s."),
    no_store: flag("Do not store issued certificates; they cannot be listed or revoked by serial."),
    generate_lease: flag("Accepted for Vault compatibility; no leases are made."),
    issuer_ref: shortString("Issuer that signs this role's certificates. Default `default`."),
  },
} as const;

/** Roles: create or replace, read, list and delete. */
export async function registerRoleRoutes(app: FastifyInstance, serviceFor: PkiServiceResolver) {
  app.get("/roles", {
    schema: { tags: TAGS, summary: "List roles (GET with list=true).", querystring: listQuery },
    handler: async (request, reply) => {
      requireList(request);
      const roles = await serviceFor(request).listRoles();
      if (roles.length === 0) throw new KeywardError("not_found", "no roles found");
      return sendData(request, reply, { keys: roles });
    },
  });

  app.get<{ Params: { role: string } }>("/roles/:role", {
    schema: { tags: TAGS, summary: "Read a role.", params: roleParams },
    handler: async (request, reply) => {
      const role = await serviceFor(request).readRole(request.params.role);
      if (!role) throw new KeywardError("not_found", `role "${request.params.role}" not found`);
      return sendData(request, reply, role);
    },
  });

  app.route<{ Params: { role: string }; Body: RoleInput }>({
    method: WRITE_METHODS,
    url: "/roles/:role",
    config: {
      operation: async (request) => {
        const { role } = request.params as { role: string };
        const existing = await serviceFor(request)
          .readRole(role)
          .catch(() => undefined);
        return existing ? "update" : "create";
      },
    },
    schema: {
      tags: TAGS,
      summary: "Create or replace a role.",
      description:
        "Fields not sent take Vault's defaults, as a role write replaces the whole role.",
      params: roleParams,
      body: roleBody,
    },
    handler: async (request, reply) =>
      sendData(
        request,
        reply,
        await serviceFor(request).writeRole(request.params.role, request.body),
      ),
  });

  app.delete<{ Params: { role: string } }>("/roles/:role", {
    schema: { tags: TAGS, summary: "Delete a role.", params: roleParams },
    handler: async (request, reply) => {
      await serviceFor(request).deleteRole(request.params.role);
      return reply.code(204).send();
    },
  });
}
