import type { FastifyInstance, FastifyRequest } from "fastify";
import type { Keyward } from "../core/keyward.ts";
import { KeywardError } from "../errors.ts";
import type { Operation } from "../policy/index.ts";

declare module "fastify" {
  interface FastifyContextConfig {
    /**
     * The policy operation of a write, when it is not `update`: a fixed
     * operation, or a function that decides it (create when the object does
     * not exist yet, as Vault's existence checks do).
     */
    operation?: Operation | ((request: FastifyRequest) => Promise<Operation>);
  }
}

/** Paths that need the `sudo` capability besides the operation's own, as in Vault. */
const SUDO_PATHS: readonly RegExp[] = [
  /^sys\/audit(\/|$)/,
  /^sys\/rotate$/,
  /^sys\/seal$/,
  /^auth\/token\/accessors\/?$/,
  /^auth\/token\/revoke-orphan$/,
];

/** Returns the path a policy matches: the URL path without `/v1/` and the query, percent-decoded. */
export function policyPath(request: FastifyRequest): string {
  const raw = (request.url.split("?")[0] ?? "").replace(/^\/v1\//, "");
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

function isListRequest(request: FastifyRequest): boolean {
  const list = (request.query as { list?: unknown } | undefined)?.list;
  return list === true || list === "true" || list === "1" || list === 1;
}

async function operationOf(request: FastifyRequest): Promise<Operation> {
  switch (request.method) {
    case "GET":
    case "HEAD":
      return isListRequest(request) ? "list" : "read";
    case "DELETE":
      return "delete";
    case "PATCH":
      return "patch";
    default: {
      const configured = request.routeOptions.config?.operation;
      if (configured === undefined) return "update";
      return typeof configured === "function" ? configured(request) : configured;
    }
  }
}

function parametersOf(request: FastifyRequest): Record<string, unknown> | undefined {
  const source =
    request.method === "GET" || request.method === "HEAD" ? request.query : request.body;
  if (source === null || typeof source !== "object" || Array.isArray(source)) return undefined;
  return source as Record<string, unknown>;
}

/**
 * Checks the caller's policies. A request is allowed only when a policy
 * grants the operation on its path (and `sudo` on the paths that need it);
 * otherwise it gets 403 `permission_denied`, the same response whether or not
 * the path exists. It runs before schema validation, so parameter
 * constraints see the body as sent.
 */
export async function authorize(keyward: Keyward, request: FastifyRequest): Promise<void> {
  const identity = request.identity;
  if (identity === undefined) return;
  const path = policyPath(request);
  const acl = await keyward.policies.acl(identity.policies);
  const decision = acl.check({
    path,
    operation: await operationOf(request),
    parameters: parametersOf(request),
  });
  const needsSudo = SUDO_PATHS.some((pattern) => pattern.test(path));
  if (!decision.allowed || (needsSudo && !decision.sudo)) {
    request.log.warn({ accessor: identity.accessor, path }, "permission denied by policy");
    throw new KeywardError("permission_denied", "permission denied");
  }
}

export function registerAuthorization(app: FastifyInstance, keyward: Keyward) {
  // Before schema validation, so a caller without access learns nothing
  // about a route's fields from a 400.
  app.addHook("preValidation", async (request) => {
    if (request.routeOptions.config?.public === true) return;
    await authorize(keyward, request);
  });
}
