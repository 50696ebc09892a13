import { randomUUID } from "node:crypto";
import swagger from "@fastify/swagger";
import Fastify, { type FastifyInstance, type FastifyServerOptions, LogController } from "fastify";
import type { Logger } from "pino";
import { DEFAULT_MAX_REQUEST_BYTES } from "../config.ts";
import type { Keyward } from "../core/keyward.ts";
import { estTlsOptions } from "../engines/pki/est/tls.ts";
import { KeywardError } from "../errors.ts";
import type { KmipCredentials } from "../kmip/server/credentials.ts";
import { registerAuthentication } from "./authentication.ts";
import { registerAuthorization } from "./authorization.ts";
import { addEngineConstraint } from "./engine-constraint.ts";
import { handleError } from "./error-handler.ts";
import { Metrics, registerMetricsRoutes } from "./metrics.ts";
import { registerAppRoleRoutes } from "./routes/auth-approle.ts";
import { registerTokenRoutes } from "./routes/auth-token.ts";
import { registerDeviceRoutes } from "./routes/devices.ts";
import { registerDeviceCertificateRoutes } from "./routes/devices-certificates.ts";
import { registerDeviceWireguardRoutes } from "./routes/devices-wireguard.ts";
import { registerPkiMounts } from "./routes/pki.ts";
import { registerSshMounts } from "./routes/ssh.ts";
import { registerAuditHooks, registerAuditRoutes } from "./routes/sys-audit.ts";
import { registerClusterRoutes } from "./routes/sys-cluster.ts";
import { registerGenerateRootRoutes } from "./routes/sys-generate-root.ts";
import { registerKmipRoutes } from "./routes/sys-kmip.ts";
import { registerMountRoutes } from "./routes/sys-mounts.ts";
import { registerOpenApiRoutes } from "./routes/sys-openapi.ts";
import { registerPolicyRoutes } from "./routes/sys-policies.ts";
import { registerSealRoutes } from "./routes/sys-seal.ts";
import { registerTransitMounts } from "./routes/transit.ts";
import { registerWifiMounts } from "./routes/wifi.ts";
import { registerWireguardMounts } from "./routes/wireguard.ts";
import { clientErrorHandler, frameworkErrors, registerUnmatchedHandling } from "./unmatched.ts";

/** Longest path segment the router accepts, in characters. */
const MAX_PARAM_LENGTH = 512;

export interface AppOptions {
  keyward: Keyward;
  logger: Logger;
  /** Largest request body accepted, in bytes. */
  maxRequestBytes: number;
  /** TLS certificate and key (PEM). Without them the app serves plain HTTP. */
  https?: { cert: Buffer; key: Buffer };
  /** Value of the `version` field in health and seal-status responses. */
  version?: string;
  /** The KMIP roles and credentials, served under `sys/kmip/` when the KMIP server is enabled. */
  kmip?: KmipCredentials;
}

/**
 * Parses every request body as JSON whatever its content type, as Vault
 * does (its CLI and several clients send JSON without a content type). An
 * empty body is an empty object.
 */
function parseJsonBody(
  _request: unknown,
  body: string,
  done: (error: Error | null, value?: unknown) => void,
) {
  if (body.trim() === "") {
    done(null, {});
    return;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    done(new KeywardError("invalid_json", "the request body is not valid JSON"));
    return;
  }
  if (nestingDepth(parsed) > MAX_JSON_DEPTH) {
    done(
      new KeywardError(
        "invalid_json",
        `the request body is nested deeper than ${MAX_JSON_DEPTH} levels`,
      ),
    );
    return;
  }
  done(null, parsed);
}

/** Deepest nesting a body may have; later stages (validation, audit redaction) recurse over bodies. */
const MAX_JSON_DEPTH = 64;

/** Returns how deeply `value` nests arrays and objects, without recursion. */
function nestingDepth(value: unknown): number {
  let deepest = 0;
  const stack: { value: unknown; depth: number }[] = [{ value, depth: 0 }];
  while (stack.length > 0) {
    const { value: current, depth } = stack.pop()!;
    if (current === null || typeof current !== "object") continue;
    if (depth + 1 > deepest) deepest = depth + 1;
    if (deepest > MAX_JSON_DEPTH) return deepest;
    for (const child of Object.values(current)) stack.push({ value: child, depth: depth + 1 });
  }
  return deepest;
}

export interface FastifyOptions {
  logger?: Logger;
  /** Largest request body accepted, in bytes. */
  maxRequestBytes?: number;
  https?: { cert: Buffer; key: Buffer };
}

/**
 * Creates a Fastify instance configured as every Keyward API is: JSON
 * bodies whatever the content type, unknown fields rejected by the schemas,
 * and errors in Keyward's shape. It has no routes or hooks; tests of single
 * route modules build on it too.
 */
export function createFastify(options: FastifyOptions = {}): FastifyInstance {
  const serverOptions: FastifyServerOptions = {
    ...(options.logger ? { loggerInstance: options.logger } : {}),
    // One log line per request comes from registerRequestLogging instead.
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: "reqId" }),
    bodyLimit: options.maxRequestBytes ?? DEFAULT_MAX_REQUEST_BYTES,
    genReqId: () => randomUUID(),
    return503OnClosing: true,
    // Key names may be up to 128 characters, and mount paths share the limit.
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    frameworkErrors,
    clientErrorHandler,
    ajv: {
      customOptions: {
        // Unknown fields are rejected, not silently dropped.
        removeAdditional: false,
        coerceTypes: "array",
        useDefaults: true,
        allErrors: false,
        allowUnionTypes: true,
      },
    },
  };
  // Fastify's typings pick the server type from the options' static type; the
  // app is used through the common FastifyInstance interface either way.
  const create = Fastify as unknown as (options: object) => FastifyInstance;
  const app = create(
    options.https
      ? {
          ...serverOptions,
          // Clients may present a certificate (EST re-enrolment uses it); none is required.
          https: { cert: options.https.cert, key: options.https.key, ...estTlsOptions() },
        }
      : serverOptions,
  );

  // NOTE: Vault's LIST method cannot be served, because Node's HTTP parser
  // (llhttp) rejects methods outside its fixed set with 400 before any
  // handler runs. Lists are served for GET with `?list=true`, which is what Vault's
  // own Go client and CLI send; node-vault needs `noCustomHTTPVerbs: true`.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", { parseAs: "string" }, parseJsonBody);
  app.setErrorHandler(handleError);
  rejectUnsupportedRequests(app);
  rejectLooseQueryIntegers(app);
  return app;
}

/**
 * Rejects two kinds of request before authentication and every other hook.
 * The first is a request target with a raw `#`. The router ends the path at
 * `#` while the policy check reads the whole target, so such a target would
 * run one route under the policy check of another path. The second is a
 * request for a wrapped response, which Keyward cannot give.
 */
function rejectUnsupportedRequests(app: FastifyInstance) {
  // A callback hook: it runs on every request, and an async one costs a promise each time.
  app.addHook("onRequest", (request, _reply, done) => {
    if (request.url.includes("#")) {
      done(
        new KeywardError(
          "invalid_request",
          "the request target must not contain #; percent-encode it as %23 in a path or query value",
        ),
      );
      return;
    }
    // A Vault client sends this header to get its response wrapped, and
    // must not get the secret in clear instead.
    if (request.headers["x-vault-wrap-ttl"] !== undefined) {
      done(
        new KeywardError(
          "invalid_request",
          "response wrapping (X-Vault-Wrap-TTL) is not supported; send the request without the header",
        ),
      );
      return;
    }
    done();
  });
}

/** A query-string integer as the API takes it: decimal digits, no sign, no leading zero. */
const QUERY_INTEGER = /^(0|[1-9][0-9]*)$/;

/** The integer parameters of each route's querystring schema, found once per schema. */
const queryIntegers = new WeakMap<object, string[]>();

/**
 * Rejects query-string integers in any form but plain decimal. The schema
 * validator converts strings to numbers as JavaScript does, so without this
 * `wait=0x10` would mean 16 and `limit=1e3` 1000.
 */
function rejectLooseQueryIntegers(app: FastifyInstance) {
  app.addHook("preValidation", (request, _reply, done) => {
    const schema = request.routeOptions.schema?.querystring;
    if (schema === undefined || schema === null || typeof schema !== "object") {
      done();
      return;
    }
    let names = queryIntegers.get(schema);
    if (names === undefined) {
      const properties = (schema as { properties?: Record<string, { type?: unknown }> }).properties;
      names = Object.entries(properties ?? {})
        .filter(([, property]) => property.type === "integer")
        .map(([name]) => name);
      queryIntegers.set(schema, names);
    }
    const query = request.query as Record<string, unknown>;
    for (const name of names) {
      const value = query[name];
      if (typeof value === "string" && !QUERY_INTEGER.test(value)) {
        done(
          new KeywardError(
            "invalid_field",
            `"${name}" must be a whole number written in decimal digits, such as 30`,
            { field: name },
          ),
        );
        return;
      }
    }
    done();
  });
}

/** Builds the HTTP API around a Keyward instance. Routes are registered but the app is not listening. */
export async function buildApp(options: AppOptions): Promise<FastifyInstance> {
  const app = createFastify(options);
  registerUnmatchedHandling(app, options.keyward, MAX_PARAM_LENGTH);

  await app.register(swagger, {
    openapi: {
      openapi: "3.0.3",
      info: {
        title: "Keyward API",
        description: "Keyward's HTTP API. Paths and shapes follow Vault's where Vault has them.",
        version: options.version ?? "0.0.0",
      },
      components: {
        securitySchemes: {
          vaultToken: { type: "apiKey", in: "header", name: "X-Vault-Token" },
          bearer: { type: "http", scheme: "bearer" },
        },
      },
      security: [{ vaultToken: [] }, { bearer: [] }],
    },
  });

  const metrics = new Metrics(options.keyward);
  registerRequestLogging(app, metrics);
  normaliseBody(app);
  const keyward = options.keyward;
  registerAuthentication(app, keyward);
  registerAuthorization(app, keyward);
  registerAuditHooks(app, keyward.audit);
  await registerSealRoutes(app, keyward, options.version ?? "0.0.0");
  await registerClusterRoutes(app, keyward);
  await registerGenerateRootRoutes(app, keyward.rootGenerator);
  await registerTokenRoutes(app, keyward.tokens);
  await registerAppRoleRoutes(app, keyward.approle);
  await registerPolicyRoutes(app, keyward.policies, {
    lookupPolicies: async (token) => (await keyward.tokens.lookup(token))?.policies,
  });
  await registerAuditRoutes(app, keyward.audit);
  if (options.kmip !== undefined) await registerKmipRoutes(app, options.kmip);
  await registerMountRoutes(app, options.keyward);
  await registerOpenApiRoutes(app);
  await registerMetricsRoutes(app, metrics);
  await registerDeviceRoutes(app, keyward);
  await registerDeviceCertificateRoutes(app, keyward);
  await registerDeviceWireguardRoutes(app, keyward);
  addEngineConstraint(app, options.keyward);
  await registerTransitMounts(app, options.keyward);
  await registerPkiMounts(app, options.keyward);
  await registerSshMounts(app, options.keyward);
  await registerWireguardMounts(app, options.keyward);
  await registerWifiMounts(app, options.keyward);
  return app;
}

/**
 * Drops body fields that repeat a path parameter with the same value, such
 * as `name` in a body posted to `/v1/transit/encrypt/:name`. Vault ignores
 * them and node-vault sends them; a field whose value differs from the path
 * is left in place, so the schema rejects it as unknown. A write without a
 * body gets an empty one, as in Vault.
 */
function normaliseBody(app: FastifyInstance) {
  app.addHook("preValidation", async (request) => {
    // A write with no body at all is an empty object, as in Vault.
    if (request.body === undefined || request.body === null) {
      if (request.method === "POST" || request.method === "PUT") request.body = {};
      return;
    }
    const body = request.body;
    const params = request.params as Record<string, unknown> | undefined;
    if (!params || body === null || typeof body !== "object" || Array.isArray(body)) return;
    const fields = body as Record<string, unknown>;
    for (const [name, value] of Object.entries(params)) {
      if (Object.hasOwn(fields, name) && fields[name] === value) delete fields[name];
    }
  });
}

/**
 * Logs one line per request (id, method, route, status, duration and
 * identity; never headers or bodies) and records it in the metrics.
 */
function registerRequestLogging(app: FastifyInstance, metrics: Metrics) {
  app.addHook("onResponse", async (request, reply) => {
    const status = reply.statusCode;
    const route = request.routeOptions.url ?? "(no route)";
    metrics.observe(request.method, route, status, reply.elapsedTime / 1000);
    const fields = {
      method: request.method,
      route,
      status,
      durationMs: Math.round(reply.elapsedTime * 100) / 100,
      accessor: request.identity?.accessor,
    };
    // A 503 while sealed is the server's state, not a failure of the request.
    if (status >= 500 && status !== 503) request.log.error(fields, "request");
    else if (status >= 400) request.log.warn(fields, "request");
    else request.log.info(fields, "request");
  });
}
