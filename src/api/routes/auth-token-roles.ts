import type { FastifyInstance } from "fastify";
import { parseCidrList } from "../../auth/cidr.ts";
import { parseOptionalDuration } from "../../auth/duration.ts";
import type { TokenRole, TokenRoleSettings } from "../../auth/token-roles.ts";
import type { TokenStore } from "../../auth/token-store.ts";
import {
  cidrListSchema,
  durationSchema,
  objectBody,
  registerListRoute,
  requireIdentity,
  sendAuth,
  sendData,
  WRITE_METHODS,
} from "./auth-shared.ts";
import { type CreateBody, createBody, createRequest, issuedAuthBlock } from "./auth-token-wire.ts";

const TAGS = ["auth/token"];

const roleParams = {
  type: "object",
  required: ["role_name"],
  properties: { role_name: { type: "string", minLength: 1, maxLength: 256 } },
} as const;

const policyList = (description: string) =>
  ({
    type: "array",
    maxItems: 64,
    items: { type: "string", maxLength: 4096 },
    description: `${description} An array or a comma-separated string.`,
  }) as const;

const roleBody = objectBody({
  allowed_policies: policyList("Policies tokens of the role may have; empty for the creator's."),
  disallowed_policies: policyList("Policies tokens of the role may never have."),
  allowed_policies_glob: policyList('Glob patterns ("*") of allowed policies.'),
  disallowed_policies_glob: policyList("Glob patterns of disallowed policies."),
  orphan: { type: "boolean", description: "Create tokens with no parent." },
  renewable: { type: "boolean", description: "Let tokens be renewed (default true)." },
  path_suffix: {
    type: "string",
    maxLength: 256,
    description: "Appended to the tokens' creation path, which lookups show.",
  },
  token_bound_cidrs: cidrListSchema("CIDR blocks the tokens may be used from."),
  token_explicit_max_ttl: durationSchema("Hard limit on the tokens' lifetime."),
  token_no_default_policy: { type: "boolean", description: "Leave out the default policy." },
  token_num_uses: {
    type: "integer",
    minimum: 0,
    maximum: 2 ** 31 - 1,
    description: "Use limit of each token; 0 for unlimited.",
  },
  token_period: durationSchema("Make the tokens periodic with this period."),
  token_type: {
    type: "string",
    enum: ["service", "default", "default-service"],
    description: 'Only "service" tokens exist.',
  },
  // Vault's older names of token_period, token_explicit_max_ttl and token_bound_cidrs.
  period: durationSchema("Deprecated name of token_period."),
  explicit_max_ttl: durationSchema("Deprecated name of token_explicit_max_ttl."),
  bound_cidrs: cidrListSchema("Deprecated name of token_bound_cidrs."),
});

interface RoleBody {
  allowed_policies?: string[];
  disallowed_policies?: string[];
  allowed_policies_glob?: string[];
  disallowed_policies_glob?: string[];
  orphan?: boolean;
  renewable?: boolean;
  path_suffix?: string;
  token_bound_cidrs?: string[];
  token_explicit_max_ttl?: number | string;
  token_no_default_policy?: boolean;
  token_num_uses?: number;
  token_period?: number | string;
  token_type?: string;
  period?: number | string;
  explicit_max_ttl?: number | string;
  bound_cidrs?: string[];
}

function roleSettings(body: RoleBody): TokenRoleSettings {
  const boundCidrs = body.token_bound_cidrs ?? body.bound_cidrs;
  const boundField = body.token_bound_cidrs === undefined ? "bound_cidrs" : "token_bound_cidrs";
  return {
    allowedPolicies: body.allowed_policies,
    disallowedPolicies: body.disallowed_policies,
    allowedPoliciesGlob: body.allowed_policies_glob,
    disallowedPoliciesGlob: body.disallowed_policies_glob,
    orphan: body.orphan,
    renewable: body.renewable,
    pathSuffix: body.path_suffix,
    tokenBoundCidrs: boundCidrs === undefined ? undefined : parseCidrList(boundCidrs, boundField),
    tokenExplicitMaxTtl:
      parseOptionalDuration(body.token_explicit_max_ttl, "token_explicit_max_ttl") ??
      parseOptionalDuration(body.explicit_max_ttl, "explicit_max_ttl"),
    tokenNoDefaultPolicy: body.token_no_default_policy,
    tokenNumUses: body.token_num_uses,
    tokenPeriod:
      parseOptionalDuration(body.token_period, "token_period") ??
      parseOptionalDuration(body.period, "period"),
  };
}

/** Vault's shape of a token role. */
function roleData(role: TokenRole) {
  return {
    name: role.name,
    allowed_policies: [...role.allowedPolicies],
    disallowed_policies: [...role.disallowedPolicies],
    allowed_policies_glob: [...role.allowedPoliciesGlob],
    disallowed_policies_glob: [...role.disallowedPoliciesGlob],
    allowed_entity_aliases: null,
    orphan: role.orphan,
    renewable: role.renewable,
    path_suffix: role.pathSuffix,
    token_bound_cidrs: [...role.tokenBoundCidrs],
    token_explicit_max_ttl: role.tokenExplicitMaxTtl,
    explicit_max_ttl: role.tokenExplicitMaxTtl,
    token_no_default_policy: role.tokenNoDefaultPolicy,
    token_num_uses: role.tokenNumUses,
    token_period: role.tokenPeriod,
    period: role.tokenPeriod,
    token_type: "service",
  };
}

type RoleRequest<Body = unknown> = { Params: { role_name: string }; Body: Body };

/**
 * Token roles under `/v1/auth/token/roles/`, and token creation through a
 * role at `/v1/auth/token/create/<role>`, with Vault's paths and shapes.
 */
export async function registerTokenRoleRoutes(app: FastifyInstance, tokens: TokenStore) {
  const prefix = "/v1/auth/token";

  registerListRoute(app, `${prefix}/roles`, TAGS, "List token roles.", () => tokens.roles.list());

  app.route<RoleRequest<RoleBody>>({
    method: WRITE_METHODS,
    url: `${prefix}/roles/:role_name`,
    schema: {
      tags: TAGS,
      summary: "Create or update a token role.",
      params: roleParams,
      body: roleBody,
    },
    handler: async (request, reply) => {
      await tokens.roles.write(request.params.role_name, roleSettings(request.body));
      return reply.code(204).send();
    },
  });

  app.get<RoleRequest>(`${prefix}/roles/:role_name`, {
    schema: { tags: TAGS, summary: "Read a token role.", params: roleParams },
    handler: async (request, reply) =>
      sendData(request, reply, roleData(await tokens.roles.read(request.params.role_name))),
  });

  app.delete<RoleRequest>(`${prefix}/roles/:role_name`, {
    schema: { tags: TAGS, summary: "Delete a token role.", params: roleParams },
    handler: async (request, reply) => {
      await tokens.roles.delete(request.params.role_name);
      return reply.code(204).send();
    },
  });

  app.route<RoleRequest<CreateBody>>({
    method: WRITE_METHODS,
    url: `${prefix}/create/:role_name`,
    schema: {
      tags: TAGS,
      summary: "Create a token with a token role's settings.",
      params: roleParams,
      body: createBody,
    },
    handler: async (request, reply) => {
      const issued = await tokens.create(requireIdentity(request), createRequest(request.body), {
        roleName: request.params.role_name,
      });
      return sendAuth(request, reply, issuedAuthBlock(issued), issued.warnings);
    },
  });
}
