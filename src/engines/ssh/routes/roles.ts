import type { FastifyInstance } from "fastify";
import { KeywardError } from "../../../errors.ts";
import { roleToWire } from "../roles.ts";
import type { RoleWrite } from "../types.ts";
import {
  duration,
  listQuery,
  optionMap,
  requireList,
  roleParams,
  type SshServiceResolver,
  sendData,
  sendNoContent,
  stringList,
  TAGS,
  WRITE_METHODS,
} from "./shared.ts";

interface RoleParams {
  role: string;
}

const bool = (description: string) => ({ type: "boolean", description }) as const;
const text = (description: string) => ({ type: "string", maxLength: 1024, description }) as const;

/** Role fields in Vault's names, each mapped to the service's camelCase name. */
const ROLE_FIELDS: Record<string, keyof RoleWrite> = {
  key_type: "keyType",
  allow_user_certificates: "allowUserCertificates",
  allow_host_certificates: "allowHostCertificates",
  allowed_users: "allowedUsers",
  allowed_users_template: "allowedUsersTemplate",
  default_user: "defaultUser",
  default_user_template: "defaultUserTemplate",
  allowed_domains: "allowedDomains",
  allowed_domains_template: "allowedDomainsTemplate",
  allow_subdomains: "allowSubdomains",
  allow_bare_domains: "allowBareDomains",
  allowed_critical_options: "allowedCriticalOptions",
  default_critical_options: "defaultCriticalOptions",
  allowed_extensions: "allowedExtensions",
  default_extensions: "defaultExtensions",
  default_extensions_template: "defaultExtensionsTemplate",
  ttl: "ttl",
  max_ttl: "maxTtl",
  not_before_duration: "notBeforeDuration",
  allowed_user_key_lengths: "allowedUserKeyLengths",
  key_id_format: "keyIdFormat",
  allow_user_key_ids: "allowUserKeyIds",
  allow_empty_principals: "allowEmptyPrincipals",
  algorithm_signer: "algorithmSigner",
  no_store: "noStore",
};

const roleBody = {
  type: "object",
  additionalProperties: false,
  required: ["key_type"],
  properties: {
    key_type: {
      type: "string",
      maxLength: 16,
      description: 'Must be "ca": Keyward signs certificates only.',
    },
    allow_user_certificates: bool("Allow user certificates. Default false."),
    allow_host_certificates: bool("Allow host certificates. Default false."),
    allowed_users: stringList('Users a user certificate may name as principals; "*" allows any.'),
    allowed_users_template: bool(
      "Render `allowed_users` as templates such as {{identity.entity.name}}.",
    ),
    default_user: text("The principal of a user certificate when the request names none."),
    default_user_template: bool("Render `default_user` as a template."),
    allowed_domains: stringList(
      'Domains whose host names a host certificate may name; "*" allows any.',
    ),
    allowed_domains_template: bool("Render `allowed_domains` as templates."),
    allow_subdomains: bool("Allow host names under the allowed domains."),
    allow_bare_domains: bool("Allow the allowed domains themselves as host names."),
    allowed_critical_options: stringList(
      "Critical options a request may set; empty allows any, as in Vault.",
    ),
    default_critical_options: optionMap(
      "Critical options of a user certificate whose request sets none.",
    ),
    allowed_extensions: stringList(
      'Extensions a request may set; "*" allows any, empty allows none.',
    ),
    default_extensions: optionMap(
      'Extensions of a user certificate whose request sets none, such as {"permit-pty": ""}.',
    ),
    default_extensions_template: bool("Render the values of `default_extensions` as templates."),
    ttl: duration("Certificate lifetime when the request sets none. Default 1h."),
    max_ttl: duration("Longest certificate lifetime. Default and at most 768h."),
    not_before_duration: duration(
      "How far `valid_after` is backdated against clock skew. Default 30s.",
    ),
    allowed_user_key_lengths: {
      type: "object",
      maxProperties: 16,
      // One union type, not anyOf: Ajv's "array" coercion would unwrap [384]
      // into 384 for an integer branch, or wrap 384 into [384] for an array
      // branch. With a union it coerces only a value that matches neither.
      additionalProperties: {
        type: ["integer", "array"],
        minimum: 0,
        maximum: 16_384,
        minItems: 1,
        maxItems: 16,
        items: { type: "integer", minimum: 0, maximum: 16_384 },
      },
      description:
        "Allowed key types (rsa, ec, ed25519 or SSH key type names) and sizes: a number is a minimum in bits, a list the exact sizes. When set, other key types are rejected. RSA keys under 2048 bits are always rejected.",
    },
    key_id_format: text(
      "Key ID template: {{token_display_name}}, {{role_name}}, {{public_key_hash}}. Default keyward-{{token_display_name}}-{{public_key_hash}}.",
    ),
    allow_user_key_ids: bool("Allow the request to set `key_id`."),
    allow_empty_principals: bool(
      "Allow certificates without principals, which OpenSSH accepts for every user or host.",
    ),
    algorithm_signer: {
      type: "string",
      enum: ["", "default", "rsa-sha2-256", "rsa-sha2-512"],
      description:
        "Signature algorithm of an RSA CA key; default rsa-sha2-256. ssh-rsa (SHA-1) is not supported.",
    },
    no_store: bool(
      "Do not keep issued certificates in the inventory (Keyward extension); they can then be revoked by serial only for every CA.",
    ),
  },
} as const;

/** Role management: create or replace, read, list and delete. */
export async function registerRoleRoutes(app: FastifyInstance, serviceFor: SshServiceResolver) {
  app.route({
    method: "GET",
    url: "/roles",
    schema: {
      tags: TAGS,
      summary: "List roles (GET with list=true).",
      description:
        "Returns role names in ascending order. Like Vault, returns 404 when there are none.",
      querystring: listQuery,
    },
    handler: async (request, reply) => {
      requireList(request);
      const keys = await serviceFor(request).listRoles();
      if (keys.length === 0) throw new KeywardError("not_found", "no roles found");
      return sendData(request, reply, { keys });
    },
  });

  app.route<{ Params: RoleParams; Body: Record<string, unknown> }>({
    method: WRITE_METHODS,
    url: "/roles/:role",
    schema: {
      tags: TAGS,
      summary: "Create or replace a role.",
      description:
        "Writes the whole role, as Vault does: fields left out take their defaults. Follows Vault's SSH CA role fields; `no_store` is a Keyward extension.",
      params: roleParams,
      body: roleBody,
    },
    handler: async (request, reply) => {
      const write: RoleWrite = {};
      for (const [name, value] of Object.entries(request.body ?? {})) {
        const field = ROLE_FIELDS[name];
        if (field !== undefined) write[field] = value;
      }
      await serviceFor(request).writeRole(request.params.role, write);
      return sendNoContent(reply);
    },
  });

  app.route<{ Params: RoleParams }>({
    method: "GET",
    url: "/roles/:role",
    schema: { tags: TAGS, summary: "Read a role.", params: roleParams },
    handler: async (request, reply) => {
      const role = await serviceFor(request).readRole(request.params.role);
      return sendData(request, reply, roleToWire(role));
    },
  });

  app.route<{ Params: RoleParams }>({
    method: "DELETE",
    url: "/roles/:role",
    schema: { tags: TAGS, summary: "Delete a role.", params: roleParams },
    handler: async (request, reply) => {
      await serviceFor(request).deleteRole(request.params.role);
      return sendNoContent(reply);
    },
  });
}
