import type { FastifyInstance, FastifyRequest } from "fastify";
import type { AuditBroker } from "../../audit/broker.ts";
import { SEARCH_TYPES, type SearchQuery } from "../../audit/search.ts";
import {
  type AuditRequest,
  type AuditRequestEntry,
  DEVICE_TYPES,
  type DeviceEntry,
  type DeviceType,
  type Operation,
} from "../../audit/types.ts";
import { isKeywardError } from "../../errors.ts";
import { requestToken } from "../authentication.ts";
import { isListRequest, policyPath } from "../authorization.ts";
import { envelope } from "../envelope.ts";
import type { ErrorBody } from "../error-handler.ts";

const pathParams = {
  type: "object",
  required: ["path"],
  properties: { path: { type: "string", minLength: 1, maxLength: 65 } },
} as const;

function deviceInfo(entry: DeviceEntry) {
  return {
    type: entry.type,
    description: entry.description,
    options: entry.options,
    path: `${entry.path}/`,
    local: false,
  };
}

/**
 * `sys/audit` and `sys/audit-hash`: Vault's audit device API, plus
 * Keyward's public key, search and verification endpoints.
 */
export async function registerAuditRoutes(app: FastifyInstance, audit: AuditBroker) {
  app.get("/v1/sys/audit", {
    schema: { tags: ["sys"], summary: "List the enabled audit devices." },
    handler: async (request) => {
      const data: Record<string, unknown> = {};
      for (const entry of audit.list()) data[`${entry.path}/`] = deviceInfo(entry);
      // Vault returns the table both at the top level and under `data`.
      return { ...data, ...envelope(data, { requestId: request.id }) };
    },
  });

  app.route({
    method: ["POST", "PUT"],
    url: "/v1/sys/audit/:path",
    schema: {
      tags: ["sys"],
      summary: "Enable an audit device at a path.",
      params: pathParams,
      body: {
        type: "object",
        additionalProperties: false,
        required: ["type"],
        properties: {
          type: { type: "string", enum: [...DEVICE_TYPES] },
          description: { type: "string", maxLength: 1024 },
          options: { type: ["object", "null"], additionalProperties: { type: "string" } },
          local: { type: "boolean" },
          // node-vault sends its path parameter in the body too; it is ignored.
          name: { type: "string" },
        },
      },
    },
    handler: async (request, reply) => {
      const { path } = request.params as { path: string };
      const body = request.body as {
        type: DeviceType;
        description?: string;
        options?: Record<string, string> | null;
      };
      await audit.enable(path, body.type, body.options ?? {}, body.description ?? "");
      return reply.code(204).send();
    },
  });

  app.delete("/v1/sys/audit/:path", {
    schema: { tags: ["sys"], summary: "Disable an audit device.", params: pathParams },
    handler: async (request, reply) => {
      const { path } = request.params as { path: string };
      await audit.disable(path);
      return reply.code(204).send();
    },
  });

  app.route({
    method: ["POST", "PUT"],
    url: "/v1/sys/audit-hash/:path",
    schema: {
      tags: ["sys"],
      summary: "Return the HMAC an audit device writes for a value.",
      params: pathParams,
      body: {
        type: "object",
        additionalProperties: false,
        required: ["input"],
        properties: { input: { type: "string" } },
      },
    },
    handler: async (request) => {
      const { path } = request.params as { path: string };
      const { input } = request.body as { input: string };
      const data = { hash: audit.hash(path, input) };
      return { ...data, ...envelope(data, { requestId: request.id }) };
    },
  });

  app.get("/v1/sys/audit/public-key", {
    schema: {
      tags: ["sys"],
      summary: "Return the Ed25519 public key (PEM) that verifies audit checkpoints.",
    },
    handler: async (request) => {
      const { publicKeyPem, keyId } = audit.publicKey();
      return envelope({ public_key: publicKeyPem, key_id: keyId }, { requestId: request.id });
    },
  });

  app.get("/v1/sys/audit/search", {
    schema: {
      tags: ["sys"],
      summary:
        "Search the records of a store audit device, merged by time over every node's chain.",
      querystring: {
        type: "object",
        additionalProperties: false,
        properties: {
          device: { type: "string" },
          node: { type: "string" },
          from: { type: "string" },
          to: { type: "string" },
          accessor: { type: "string" },
          path_prefix: { type: "string" },
          key: { type: "string" },
          type: { type: "string", enum: [...SEARCH_TYPES] },
          limit: { type: "integer" },
          offset: { type: "integer" },
        },
      },
    },
    handler: async (request) => {
      const result = await audit.search(request.query as SearchQuery);
      return envelope(result, { requestId: request.id });
    },
  });

  app.get("/v1/sys/audit/verify", {
    schema: {
      tags: ["sys"],
      summary:
        "Verify the hash chains and checkpoint signatures of a store audit device, one result per node.",
      querystring: {
        type: "object",
        additionalProperties: false,
        properties: { device: { type: "string" } },
      },
    },
    handler: async (request) => {
      const { device } = request.query as { device?: string };
      const result = await audit.verifyStore(device);
      return envelope(result, { requestId: request.id });
    },
  });
}

/**
 * Vault's operation for an HTTP method, for requests that reached no policy
 * check: GET is `read`, or `list` with `?list=true`.
 */
function operationOf(request: FastifyRequest): Operation {
  switch (request.method) {
    case "GET":
    case "HEAD":
      return isListRequest(request) ? "list" : "read";
    case "DELETE":
      return "delete";
    case "PATCH":
      return "patch";
    default:
      return "update";
  }
}

function nonEmptyObject(value: unknown): object | undefined {
  if (value === null || typeof value !== "object") return undefined;
  return Object.keys(value).length > 0 ? value : undefined;
}

/** Builds the audit entry of a request from what Fastify parsed and the token check found. */
export function auditEntryOf(request: FastifyRequest): AuditRequestEntry {
  const params = request.params as Record<string, unknown> | undefined;
  const auditRequest: AuditRequest = {
    id: request.id,
    // The path and operation the policy check decided on, so that a
    // percent-encoded path is recorded as the path it named.
    operation: request.policyCheck?.operation ?? operationOf(request),
    path: request.policyCheck?.path ?? policyPath(request),
    remoteAddress: request.ip,
    clientToken: requestToken(request),
    keyName: typeof params?.name === "string" ? params.name : undefined,
    data: nonEmptyObject(request.method === "GET" ? request.query : request.body),
  };
  const identity = request.identity;
  return {
    request: auditRequest,
    auth: identity && {
      accessor: identity.accessor,
      displayName: identity.displayName,
      policies: identity.policies,
    },
  };
}

/** Parses a serialised response body for the audit record; non-JSON bodies are left out. */
function responseData(payload: unknown): unknown {
  const text =
    typeof payload === "string"
      ? payload
      : Buffer.isBuffer(payload)
        ? payload.toString("utf8")
        : undefined;
  if (text === undefined || text === "") return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

interface AuditProgress {
  /** The entry the request record was written from; the response record reuses it. */
  entry?: AuditRequestEntry;
  requestLogged: boolean;
  /** Set once an audit write failed, so the error response that follows is not audited again. */
  failed: boolean;
}

/**
 * Writes the request record before the handler runs and the response
 * record before the response is sent. When no device can write, the
 * request fails with `audit_failure` and its handler never runs, or its
 * response is replaced by that error.
 *
 * A request rejected before its handler (no token, invalid body, unknown
 * route) gets both records when its error response is sent. The error
 * response of an audit failure itself is not audited, since no device
 * could write.
 */
export function registerAuditHooks(app: FastifyInstance, audit: AuditBroker) {
  const progress = new WeakMap<FastifyRequest, AuditProgress>();
  const progressOf = (request: FastifyRequest): AuditProgress => {
    let state = progress.get(request);
    if (state === undefined) {
      state = { requestLogged: false, failed: false };
      progress.set(request, state);
    }
    return state;
  };

  app.addHook("preHandler", async (request) => {
    const state = progressOf(request);
    try {
      state.entry = auditEntryOf(request);
      await audit.logRequest(state.entry);
      state.requestLogged = true;
    } catch (error) {
      state.failed = true;
      throw error;
    }
  });

  app.addHook("onSend", async (request, reply, payload) => {
    const state = progressOf(request);
    if (state.failed) return payload;
    try {
      const entry = state.entry ?? auditEntryOf(request);
      if (!state.requestLogged) {
        await audit.logRequest(entry);
        state.requestLogged = true;
      }
      const data = responseData(payload);
      const errors = (data as { errors?: unknown } | undefined)?.errors;
      await audit.logResponse({
        ...entry,
        response: { status: reply.statusCode, data },
        error: reply.statusCode >= 400 && Array.isArray(errors) ? String(errors[0]) : undefined,
      });
    } catch (error) {
      state.failed = true;
      if (!isKeywardError(error)) throw error;
      // Fastify sends an error thrown here in its own default shape, not
      // through the app's error handler, so the error body is built here.
      reply.code(error.status).type("application/json; charset=utf-8");
      const body: ErrorBody = { errors: [error.message], code: error.code, request_id: request.id };
      return JSON.stringify(body);
    }
    return payload;
  });
}
