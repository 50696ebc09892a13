import type { FastifyInstance } from "fastify";
import type { AppRoleBackend } from "../../auth/approle/backend.ts";
import {
  customSecretIdBody,
  type RoleBody,
  roleBody,
  roleData,
  roleParams,
  roleSettings,
  type SecretIdBody,
  secretIdAccessorField,
  secretIdBody,
  secretIdData,
  secretIdField,
  secretIdRequest,
} from "./auth-approle-wire.ts";
import { objectBody, registerListRoute, sendAuth, sendData, WRITE_METHODS } from "./auth-shared.ts";
import { issuedAuthBlock } from "./auth-token-wire.ts";

const TAGS = ["auth/approle"];
const PUBLIC = { public: true };

type RoleRequest<Body = unknown> = { Params: { role_name: string }; Body: Body };

/**
 * The AppRole auth method under `/v1/auth/approle/`, with Vault's paths and
 * shapes. `login` is public. The other paths need a token, and which tokens
 * may use them is for the policy check in front of these routes.
 */
export async function registerAppRoleRoutes(app: FastifyInstance, approle: AppRoleBackend) {
  const prefix = "/v1/auth/approle";

  registerListRoute(app, `${prefix}/role`, TAGS, "List AppRole roles.", () => approle.listRoles());

  app.route<RoleRequest<RoleBody>>({
    method: WRITE_METHODS,
    url: `${prefix}/role/:role_name`,
    schema: { tags: TAGS, summary: "Create or update a role.", params: roleParams, body: roleBody },
    handler: async (request, reply) => {
      await approle.writeRole(request.params.role_name, roleSettings(request.body));
      return reply.code(204).send();
    },
  });

  app.get<RoleRequest>(`${prefix}/role/:role_name`, {
    schema: { tags: TAGS, summary: "Read a role.", params: roleParams },
    handler: async (request, reply) =>
      sendData(request, reply, roleData(await approle.readRole(request.params.role_name))),
  });

  app.delete<RoleRequest>(`${prefix}/role/:role_name`, {
    schema: { tags: TAGS, summary: "Delete a role and its secret IDs.", params: roleParams },
    handler: async (request, reply) => {
      await approle.deleteRole(request.params.role_name);
      return reply.code(204).send();
    },
  });

  app.get<RoleRequest>(`${prefix}/role/:role_name/role-id`, {
    schema: { tags: TAGS, summary: "Read a role's role ID.", params: roleParams },
    handler: async (request, reply) =>
      sendData(request, reply, { role_id: await approle.readRoleId(request.params.role_name) }),
  });

  app.route<RoleRequest<{ role_id: string }>>({
    method: WRITE_METHODS,
    url: `${prefix}/role/:role_name/role-id`,
    schema: {
      tags: TAGS,
      summary: "Set a role's role ID.",
      params: roleParams,
      body: objectBody({ role_id: { type: "string", minLength: 1, maxLength: 256 } }, ["role_id"]),
    },
    handler: async (request, reply) => {
      await approle.setRoleId(request.params.role_name, request.body.role_id);
      return reply.code(204).send();
    },
  });

  // `secret-id` issues a random secret ID, `custom-secret-id` the one in the body.
  for (const [path, summary, body] of [
    ["secret-id", "Issue a secret ID.", secretIdBody],
    ["custom-secret-id", "Issue a secret ID chosen by the caller.", customSecretIdBody],
  ] as const) {
    app.route<RoleRequest<SecretIdBody & { secret_id?: string }>>({
      method: WRITE_METHODS,
      url: `${prefix}/role/:role_name/${path}`,
      schema: { tags: TAGS, summary, params: roleParams, body },
      handler: async (request, reply) => {
        const { secretId, record } = await approle.generateSecretId(request.params.role_name, {
          ...secretIdRequest(request.body),
          secretId: request.body.secret_id,
        });
        return sendData(request, reply, {
          secret_id: secretId,
          secret_id_accessor: record.accessor,
          secret_id_ttl: record.ttl,
          secret_id_num_uses: record.numUses,
        });
      },
    });
  }

  registerListRoute(
    app,
    `${prefix}/role/:role_name/secret-id`,
    TAGS,
    "List a role's secret ID accessors.",
    (request) => approle.listSecretIdAccessors((request.params as { role_name: string }).role_name),
  );

  app.route<RoleRequest<{ secret_id: string }>>({
    method: WRITE_METHODS,
    url: `${prefix}/role/:role_name/secret-id/lookup`,
    schema: {
      tags: TAGS,
      summary: "Read a secret ID's properties.",
      params: roleParams,
      body: objectBody({ secret_id: secretIdField }, ["secret_id"]),
    },
    handler: async (request, reply) => {
      const record = await approle.lookupSecretId(request.params.role_name, request.body.secret_id);
      return sendData(request, reply, secretIdData(record));
    },
  });

  app.route<RoleRequest<{ secret_id: string }>>({
    method: [...WRITE_METHODS, "DELETE"],
    url: `${prefix}/role/:role_name/secret-id/destroy`,
    schema: {
      tags: TAGS,
      summary: "Destroy a secret ID.",
      params: roleParams,
      body: objectBody({ secret_id: secretIdField }, ["secret_id"]),
    },
    handler: async (request, reply) => {
      await approle.destroySecretId(request.params.role_name, request.body.secret_id);
      return reply.code(204).send();
    },
  });

  app.route<RoleRequest<{ secret_id_accessor: string }>>({
    method: WRITE_METHODS,
    url: `${prefix}/role/:role_name/secret-id-accessor/lookup`,
    schema: {
      tags: TAGS,
      summary: "Read a secret ID's properties by its accessor.",
      params: roleParams,
      body: objectBody({ secret_id_accessor: secretIdAccessorField }, ["secret_id_accessor"]),
    },
    handler: async (request, reply) => {
      const record = await approle.lookupSecretIdAccessor(
        request.params.role_name,
        request.body.secret_id_accessor,
      );
      return sendData(request, reply, secretIdData(record));
    },
  });

  app.route<RoleRequest<{ secret_id_accessor: string }>>({
    method: [...WRITE_METHODS, "DELETE"],
    url: `${prefix}/role/:role_name/secret-id-accessor/destroy`,
    schema: {
      tags: TAGS,
      summary: "Destroy a secret ID by its accessor.",
      params: roleParams,
      body: objectBody({ secret_id_accessor: secretIdAccessorField }, ["secret_id_accessor"]),
    },
    handler: async (request, reply) => {
      await approle.destroySecretIdAccessor(
        request.params.role_name,
        request.body.secret_id_accessor,
      );
      return reply.code(204).send();
    },
  });

  app.route<{ Body: { role_id: string; secret_id?: string } }>({
    method: WRITE_METHODS,
    url: `${prefix}/login`,
    config: PUBLIC,
    schema: {
      tags: TAGS,
      summary: "Log in with a role ID and secret ID and receive a token.",
      description:
        "Failed logins count against limits per source address and per role ID (10 per minute each); beyond them the response is 429 `rate_limited`.",
      body: objectBody(
        {
          role_id: { type: "string", minLength: 1, maxLength: 256 },
          secret_id: { type: "string", maxLength: 1024 },
        },
        ["role_id"],
      ),
    },
    handler: async (request, reply) => {
      const issued = await approle.login(
        { roleId: request.body.role_id, secretId: request.body.secret_id },
        request.ip,
      );
      return sendAuth(request, reply, issuedAuthBlock(issued), issued.warnings);
    },
  });
}
