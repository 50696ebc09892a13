import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { parseOptionalDuration } from "../../auth/duration.ts";
import type { TokenRecord } from "../../auth/token-record.ts";
import type { TokenStore } from "../../auth/token-store.ts";
import { requestToken } from "../authentication.ts";
import {
  objectBody,
  registerListRoute,
  requireIdentity,
  sendAuth,
  sendData,
  WRITE_METHODS,
} from "./auth-shared.ts";
import { registerTokenRoleRoutes } from "./auth-token-roles.ts";
import {
  accessorField,
  type CreateBody,
  createBody,
  createRequest,
  incrementField,
  issuedAuthBlock,
  tokenAuthBlock,
  tokenField,
  tokenLookupData,
} from "./auth-token-wire.ts";

const TAGS = ["auth/token"];

/** Returns the caller's own token and record. A token on its last use is already revoked, so the record comes from the identity. */
async function selfToken(request: FastifyRequest, tokens: TokenStore) {
  const identity = requireIdentity(request);
  const token = requestToken(request) ?? "";
  const record = identity.record ?? (await tokens.resolveToken(token));
  return { token, record };
}

/**
 * The token auth method under `/v1/auth/token/`, with Vault's paths and
 * shapes. The store enforces the token model: parents, policy subsets and
 * root-only options. Which callers may use the paths that act on other
 * tokens is for the policy check in front of these routes to decide.
 */
export async function registerTokenRoutes(app: FastifyInstance, tokens: TokenStore) {
  const prefix = "/v1/auth/token";

  const create = (orphan: boolean) => async (request: FastifyRequest, reply: FastifyReply) => {
    const identity = requireIdentity(request);
    const issued = await tokens.create(identity, createRequest(request.body as CreateBody), {
      orphan,
    });
    return sendAuth(request, reply, issuedAuthBlock(issued), issued.warnings);
  };
  for (const [path, orphan] of [
    ["create", false],
    ["create-orphan", true],
  ] as const) {
    app.route({
      method: WRITE_METHODS,
      url: `${prefix}/${path}`,
      schema: {
        tags: TAGS,
        summary: orphan ? "Create an orphan token." : "Create a child token of the caller's token.",
        body: createBody,
      },
      handler: create(orphan),
    });
  }

  const lookupSelf = async (request: FastifyRequest, reply: FastifyReply) => {
    const { token, record } = await selfToken(request, tokens);
    return sendData(request, reply, tokenLookupData(record, tokens.currentTime(), token));
  };
  app.get(`${prefix}/lookup-self`, {
    schema: { tags: TAGS, summary: "Look up the caller's token." },
    handler: lookupSelf,
  });
  app.route({
    method: WRITE_METHODS,
    url: `${prefix}/lookup-self`,
    schema: { tags: TAGS, summary: "Look up the caller's token.", body: objectBody({}) },
    handler: lookupSelf,
  });

  app.route<{ Body: { token: string } }>({
    method: WRITE_METHODS,
    url: `${prefix}/lookup`,
    schema: {
      tags: TAGS,
      summary: "Look up a token.",
      body: objectBody({ token: tokenField }, ["token"]),
    },
    handler: async (request, reply) => {
      const record = await tokens.resolveToken(request.body.token);
      return sendData(
        request,
        reply,
        tokenLookupData(record, tokens.currentTime(), request.body.token),
      );
    },
  });

  app.route<{ Body: { accessor: string } }>({
    method: WRITE_METHODS,
    url: `${prefix}/lookup-accessor`,
    schema: {
      tags: TAGS,
      summary: "Look up a token by its accessor.",
      body: objectBody({ accessor: accessorField }, ["accessor"]),
    },
    handler: async (request, reply) => {
      const record = await tokens.resolveAccessor(request.body.accessor);
      return sendData(request, reply, tokenLookupData(record, tokens.currentTime(), ""));
    },
  });

  const renew = async (
    request: FastifyRequest,
    reply: FastifyReply,
    target: TokenRecord,
    clientToken: string,
    increment: number | string | undefined,
  ) => {
    const { record, warnings } = await tokens.renew(
      target,
      parseOptionalDuration(increment, "increment"),
    );
    // Counted from the renewal, so lease_duration is the TTL just granted.
    const renewedAt = record.lastRenewedAt ?? tokens.currentTime();
    return sendAuth(request, reply, tokenAuthBlock(clientToken, record, renewedAt), warnings);
  };

  app.route<{ Body: { token: string; increment?: number | string } }>({
    method: WRITE_METHODS,
    url: `${prefix}/renew`,
    schema: {
      tags: TAGS,
      summary: "Renew a token.",
      body: objectBody({ token: tokenField, increment: incrementField }, ["token"]),
    },
    handler: async (request, reply) => {
      const target = await tokens.resolveToken(request.body.token);
      return renew(request, reply, target, request.body.token, request.body.increment);
    },
  });

  app.route<{ Body: { increment?: number | string } }>({
    method: WRITE_METHODS,
    url: `${prefix}/renew-self`,
    schema: {
      tags: TAGS,
      summary: "Renew the caller's token.",
      body: objectBody({ increment: incrementField }),
    },
    handler: async (request, reply) => {
      const { token, record } = await selfToken(request, tokens);
      return renew(request, reply, record, token, request.body.increment);
    },
  });

  app.route<{ Body: { accessor: string; increment?: number | string } }>({
    method: WRITE_METHODS,
    url: `${prefix}/renew-accessor`,
    schema: {
      tags: TAGS,
      summary: "Renew a token by its accessor.",
      body: objectBody({ accessor: accessorField, increment: incrementField }, ["accessor"]),
    },
    handler: async (request, reply) => {
      const target = await tokens.resolveAccessor(request.body.accessor);
      return renew(request, reply, target, "", request.body.increment);
    },
  });

  app.route<{ Body: { token: string } }>({
    method: WRITE_METHODS,
    url: `${prefix}/revoke`,
    schema: {
      tags: TAGS,
      summary: "Revoke a token and all its descendants.",
      body: objectBody({ token: tokenField }, ["token"]),
    },
    handler: async (request, reply) => {
      await tokens.revoke(await tokens.resolveToken(request.body.token));
      return reply.code(204).send();
    },
  });

  app.route({
    method: WRITE_METHODS,
    url: `${prefix}/revoke-self`,
    schema: {
      tags: TAGS,
      summary: "Revoke the caller's token and all its descendants.",
      body: objectBody({}),
    },
    handler: async (request, reply) => {
      const { record } = await selfToken(request, tokens);
      await tokens.revoke(record);
      return reply.code(204).send();
    },
  });

  app.route<{ Body: { accessor: string } }>({
    method: WRITE_METHODS,
    url: `${prefix}/revoke-accessor`,
    schema: {
      tags: TAGS,
      summary: "Revoke a token by its accessor, with all its descendants.",
      body: objectBody({ accessor: accessorField }, ["accessor"]),
    },
    handler: async (request, reply) => {
      await tokens.revoke(await tokens.resolveAccessor(request.body.accessor));
      return reply.code(204).send();
    },
  });

  app.route<{ Body: { token: string } }>({
    method: WRITE_METHODS,
    url: `${prefix}/revoke-orphan`,
    schema: {
      tags: TAGS,
      summary: "Revoke a token and make its children orphans (needs sudo in Vault).",
      body: objectBody({ token: tokenField }, ["token"]),
    },
    handler: async (request, reply) => {
      await tokens.revokeOrphan(await tokens.resolveToken(request.body.token));
      return reply.code(204).send();
    },
  });

  registerListRoute(
    app,
    `${prefix}/accessors`,
    TAGS,
    "List every token's accessor (needs sudo in Vault).",
    () => tokens.listAccessors(),
  );

  await registerTokenRoleRoutes(app, tokens);
}
