import type { FastifyInstance } from "fastify";
import { KeywardError } from "../../../errors.ts";
import { type AcmeConfig, EAB_POLICIES } from "../acme/config.ts";
import { acmeServiceOf } from "./acme.ts";
import { registerAcmeManagementRoutes } from "./acme-mgmt.ts";
import {
  listQuery,
  type PkiServiceResolver,
  requireList,
  roleParams,
  sendData,
  shortString,
  TAGS,
  WRITE_METHODS,
} from "./shared.ts";

/** The body of a route that takes no fields; an empty body parses as `{}`. */
const noFields = { type: "object", additionalProperties: false, properties: {} } as const;

const configBody = {
  type: "object",
  additionalProperties: false,
  properties: {
    enabled: { type: "boolean", description: "Serve the mount's ACME directories. Default false." },
    default_directory_policy: shortString(
      'What `<mount>/acme/` issues with: "sign-verbatim" (default), "role:<name>" or "forbid".',
    ),
    allowed_roles: {
      anyOf: [
        { type: "array", items: { type: "string", maxLength: 128 }, maxItems: 1000 },
        { type: "string", maxLength: 65536 },
      ],
      description: 'Roles whose `<mount>/roles/<role>/acme/` directories are served; "*" for all.',
    },
    eab_policy: {
      type: "string",
      enum: [...EAB_POLICIES],
      description:
        "When external account binding is required, for directories that directory_eab_policies does not name. Default not-required.",
    },
    directory_eab_policies: {
      type: "object",
      maxProperties: 1000,
      additionalProperties: { type: "string", enum: [...EAB_POLICIES] },
      description:
        'EAB policy of single directories: "acme" (the default directory) or "roles/<role>/acme" mapped to a policy. Replaces the whole map when sent.',
    },
    dns_resolver: shortString(
      "DNS server for validation, as IP or IP:port; empty for the system's.",
    ),
    base_url: shortString(
      "The mount's external URL for ACME URLs, such as https://host:8200/v1/pki.",
    ),
    allowed_networks: {
      type: "array",
      items: { type: "string", maxLength: 64 },
      maxItems: 1000,
      description:
        "CIDRs the validator may connect to; empty allows public unicast addresses only.",
    },
    hosts: {
      type: "object",
      additionalProperties: { type: "string", maxLength: 64 },
      maxProperties: 1000,
      description:
        "Names (or *.domain) the validator resolves to the given IP address without DNS.",
    },
    http_port: {
      type: "integer",
      minimum: 1,
      maximum: 65535,
      description: "http-01 port. Default 80.",
    },
    tls_port: {
      type: "integer",
      minimum: 1,
      maximum: 65535,
      description: "tls-alpn-01 port. Default 443.",
    },
    validation_timeout_seconds: {
      type: "number",
      exclusiveMinimum: 0,
      maximum: 300,
      description: "Time limit of one validation, in seconds. Default 10.",
    },
    max_redirects: {
      type: "integer",
      minimum: 0,
      maximum: 20,
      description: "Redirects http-01 follows. Default 10.",
    },
  },
} as const;

type ConfigBody = Omit<Partial<AcmeConfig>, "allowed_roles"> & {
  allowed_roles?: string | string[];
};

/**
 * Registers the token-authenticated ACME administration routes: the
 * mount's `config/acme`, EAB keys as Vault lays them out
 * (`acme/new-eab`, `roles/<role>/acme/new-eab`, `eab`), and read access to
 * ACME accounts, orders and authorizations under `acme/mgmt/`.
 */
export function registerAcmeAdminRoutes(app: FastifyInstance, serviceFor: PkiServiceResolver) {
  const acmeFor = (request: Parameters<PkiServiceResolver>[0]) =>
    acmeServiceOf(serviceFor(request));

  app.get("/config/acme", {
    schema: { tags: TAGS, summary: "Read the mount's ACME settings." },
    handler: async (request, reply) => sendData(request, reply, await acmeFor(request).config()),
  });

  registerAcmeManagementRoutes(app, acmeFor);

  app.route<{ Body: ConfigBody }>({
    method: WRITE_METHODS,
    url: "/config/acme",
    schema: { tags: TAGS, summary: "Change the mount's ACME settings.", body: configBody },
    handler: async (request, reply) => {
      const { allowed_roles, ...rest } = request.body;
      const changes: Partial<AcmeConfig> = { ...rest };
      if (allowed_roles !== undefined) {
        changes.allowed_roles = (
          Array.isArray(allowed_roles) ? allowed_roles : allowed_roles.split(",")
        )
          .map((role) => role.trim())
          .filter((role) => role !== "");
      }
      return sendData(request, reply, await acmeFor(request).writeConfig(changes));
    },
  });

  const createEab = (directory: string) => async (request: Parameters<PkiServiceResolver>[0]) =>
    acmeFor(request).createEabKey(directory);

  app.route({
    method: WRITE_METHODS,
    url: "/acme/new-eab",
    schema: {
      tags: TAGS,
      summary: "Create an EAB key for the mount's default ACME directory.",
      body: noFields,
    },
    handler: async (request, reply) => sendData(request, reply, await createEab("")(request)),
  });

  app.route<{ Params: { role: string } }>({
    method: WRITE_METHODS,
    url: "/roles/:role/acme/new-eab",
    schema: {
      tags: TAGS,
      summary: "Create an EAB key for a role's ACME directory.",
      params: roleParams,
      body: noFields,
    },
    handler: async (request, reply) => {
      const role = request.params.role;
      if (!(await serviceFor(request).readRole(role))) {
        throw new KeywardError("not_found", `role "${role}" not found`, { field: "role" });
      }
      return sendData(request, reply, await createEab(role)(request));
    },
  });

  app.get("/eab", {
    schema: { tags: TAGS, summary: "List EAB keys (without the keys).", querystring: listQuery },
    handler: async (request, reply) => {
      requireList(request);
      const keys = await acmeFor(request).listEabKeys();
      return sendData(request, reply, {
        keys: keys.map((key) => key.id),
        key_info: Object.fromEntries(keys.map((key) => [key.id, key])),
      });
    },
  });

  app.delete<{ Params: { key_id: string } }>("/eab/:key_id", {
    schema: { tags: TAGS, summary: "Delete an EAB key." },
    handler: async (request, reply) => {
      await acmeFor(request).deleteEabKey(request.params.key_id);
      return reply.code(204).send();
    },
  });
}
