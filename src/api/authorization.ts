import type { FastifyInstance, FastifyRequest } from "fastify";
import type { Keyward } from "../core/keyward.ts";
import { KeywardError } from "../errors.ts";
import type { Operation } from "../policy/index.ts";
import { TRUE_STRINGS } from "./envelope.ts";

declare module "fastify" {
  interface FastifyContextConfig {
    /**
     * The policy operation of a write, when it is not `update`: a fixed
     * operation, or a function that decides it (create when the object does
     * not exist yet, as Vault's existence checks do).
     */
    operation?: Operation | ((request: FastifyRequest) => Promise<Operation>);
    /**
     * Returns the path the policy check matches, for routes whose handler
     * normalises a path parameter (policy names are lowercased), so that
     * every spelling that reaches the same object is checked as one path.
     * Without it, the check matches `policyPath`.
     */
    aclPath?: (request: FastifyRequest) => string;
  }
  interface FastifyRequest {
    /** The path and operation the policy check decided on, which the audit record repeats. */
    policyCheck?: { path: string; operation: Operation };
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

/** The scheme and authority of an absolute-form request target (`GET http://host/v1/... HTTP/1.1`). */
const ABSOLUTE_FORM_ORIGIN = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*/;

/**
 * Returns the path a policy matches: the URL path without `/v1/` and the
 * query, percent-decoded. The origin of an absolute-form request target is
 * dropped, as the router drops it.
 */
export function policyPath(request: FastifyRequest): string {
  const target = request.url.replace(ABSOLUTE_FORM_ORIGIN, "");
  const raw = (target.split("?")[0] ?? "").replace(/^\/v1\//, "");
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

/**
 * Returns whether a GET is Vault's LIST: `list` is one of the spellings of
 * true that the list handlers accept (`t`, `TRUE` and the others of Go's
 * `strconv.ParseBool`), so a caller without `list` cannot list by spelling
 * true differently.
 */
export function isListRequest(request: FastifyRequest): boolean {
  let list = (request.query as { list?: unknown } | undefined)?.list;
  // Schema coercion turns a one-item array into its item.
  if (Array.isArray(list) && list.length === 1) list = list[0];
  if (list === true || list === 1) return true;
  return typeof list === "string" && TRUE_STRINGS.includes(list);
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
  // The router serves an absolute-form target (`http://host/v1/sys/...`)
  // as its path. Such targets are for proxies, so they are rejected rather
  // than matched against policies in a second spelling.
  if (!request.url.startsWith("/")) {
    throw new KeywardError(
      "invalid_request",
      "the request target must be a path such as /v1/sys/health, not an absolute URL",
    );
  }
  const path = request.routeOptions.config?.aclPath?.(request) ?? policyPath(request);
  const operation = await operationOf(request);
  request.policyCheck = { path, operation };
  const acl = await keyward.policies.acl(identity.policies);
  const decision = acl.check({ path, operation, parameters: parametersOf(request) });
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
