import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { AcmeResponse, AcmeScope } from "../acme/context.ts";
import { AcmeProblem, PROBLEM_CONTENT_TYPE, toProblem } from "../acme/problems.ts";
import { type AcmeOperation, AcmeService } from "../acme/service.ts";
import { directoryPath } from "../acme/urls.ts";
import type { PkiService } from "../service.ts";
import { type PkiServiceResolver, PUBLIC, TAGS } from "./shared.ts";

/** The media type of every ACME POST body (RFC 8555 section 6.2). */
const JOSE_JSON = "application/jose+json";

/** The role segment of a role's directory: one path segment, as role names are. */
const ROLE_PARAM = /^[\w.-]{1,128}$/;

const services = new WeakMap<PkiService, AcmeService>();

/** Returns the ACME server of a PKI mount, created on first use and kept as long as the mount's service. */
export function acmeServiceOf(pki: PkiService): AcmeService {
  let service = services.get(pki);
  if (!service) {
    service = new AcmeService(pki);
    services.set(pki, service);
  }
  return service;
}

type Params = { mount: string; role?: string; id?: string; type?: string };

/** Returns the directory a request was sent to: its role, or `""` for the mount's default directory. */
function directoryOf(request: FastifyRequest): string {
  const role = (request.params as Params).role;
  if (role === undefined) return "";
  if (!ROLE_PARAM.test(role))
    throw new AcmeProblem("malformed", "directory not found", { status: 404 });
  return role;
}

/** Returns the mount's URL as the client reached it: protocol, Host header and `/v1/<mount>`. */
function mountBaseOf(request: FastifyRequest): string {
  return `${request.protocol}://${request.host}/v1/${(request.params as Params).mount}`;
}

/** Returns the request path below `/v1/<mount>`, without the query. */
function pathBelowMount(request: FastifyRequest): string {
  const path = request.url.split("?")[0] ?? "";
  const prefix = `/v1/${(request.params as Params).mount}`;
  return path.startsWith(prefix) ? path.slice(prefix.length) : path;
}

function send(reply: FastifyReply, response: AcmeResponse) {
  if (response.location) reply.header("location", response.location);
  if (response.retryAfter !== undefined) reply.header("retry-after", String(response.retryAfter));
  for (const link of response.links ?? []) appendLink(reply, link);
  reply.code(response.status);
  if (response.body === undefined) return reply.send();
  return reply.type(response.contentType ?? "application/json").send(response.body);
}

function appendLink(reply: FastifyReply, link: string) {
  const current = reply.getHeader("link");
  const links =
    current === undefined ? [] : Array.isArray(current) ? current.map(String) : [String(current)];
  reply.header("link", [...links, link]);
}

/**
 * Registers the ACME server's routes (RFC 8555) for the mount's default
 * directory under `/acme/` and for each role's under
 * `/roles/<role>/acme/`. They are public, since ACME authenticates each
 * request with its JWS, and the audit hooks record them as any other
 * route. They live in their own plugin scope, whose error handler sends
 * `application/problem+json` and whose onSend hook adds the Replay-Nonce,
 * Link rel="index" and Cache-Control headers to every response.
 */
export async function registerAcmeRoutes(app: FastifyInstance, serviceFor: PkiServiceResolver) {
  await app.register(async (scope) => {
    const scopes = new WeakMap<FastifyRequest, AcmeScope>();
    const acmeFor = (request: FastifyRequest) => acmeServiceOf(serviceFor(request));
    const scopeOf = async (request: FastifyRequest): Promise<AcmeScope> => {
      const built = await acmeFor(request).scope(
        directoryOf(request),
        mountBaseOf(request),
        pathBelowMount(request),
      );
      scopes.set(request, built);
      return built;
    };

    scope.setErrorHandler((error, request, reply) => {
      const problem = toProblem(error);
      if (problem.status >= 500 && problem.status !== 503) {
        request.log.error(
          { err: problem.cause ?? error, problem: problem.type },
          "ACME request failed",
        );
      } else {
        request.log.debug({ problem: problem.type, detail: problem.message }, "ACME problem");
      }
      if (problem.location) reply.header("location", problem.location);
      return reply.code(problem.status).type(PROBLEM_CONTENT_TYPE).send(problem.toDocument());
    });

    scope.addHook("onSend", async (request, reply, payload) => {
      reply.header("cache-control", "no-store");
      let acme: AcmeService;
      try {
        acme = acmeFor(request);
      } catch {
        // Sealed, or no PKI mount here: there is no nonce store to draw from.
        return payload;
      }
      reply.header("replay-nonce", acme.issueNonce());
      const built = scopes.get(request);
      const directoryUrl = built
        ? built.urls.directory
        : `${mountBaseOf(request)}${directoryPath(safeDirectory(request))}/directory`;
      appendLink(reply, `<${directoryUrl}>;rel="index"`);
      return payload;
    });

    for (const prefix of ["/acme", "/roles/:role/acme"]) {
      registerDirectoryRoutes(scope, prefix, acmeFor, scopeOf);
    }
  });
}

function safeDirectory(request: FastifyRequest): string {
  try {
    return directoryOf(request);
  } catch {
    return "";
  }
}

function registerDirectoryRoutes(
  app: FastifyInstance,
  prefix: string,
  acmeFor: (request: FastifyRequest) => AcmeService,
  scopeOf: (request: FastifyRequest) => Promise<AcmeScope>,
) {
  const config = PUBLIC;

  app.get(`${prefix}/directory`, {
    config,
    schema: { tags: TAGS, summary: "ACME directory (RFC 8555 section 7.1.1)." },
    handler: async (request, reply) =>
      send(reply, await acmeFor(request).directory(await scopeOf(request))),
  });

  const nonce = (status: number) => async (request: FastifyRequest, reply: FastifyReply) => {
    await scopeOf(request);
    return reply.code(status).send();
  };
  app.head(`${prefix}/new-nonce`, {
    config,
    schema: { tags: TAGS, summary: "ACME newNonce: a fresh nonce in Replay-Nonce (200)." },
    handler: nonce(200),
  });
  app.get(`${prefix}/new-nonce`, {
    config,
    exposeHeadRoute: false,
    schema: { tags: TAGS, summary: "ACME newNonce: a fresh nonce in Replay-Nonce (204)." },
    handler: nonce(204),
  });

  app.get<{ Params: { certid: string } }>(`${prefix}/renewal-info/:certid`, {
    config,
    schema: { tags: TAGS, summary: "ACME renewal information (RFC 9773) of a certificate." },
    handler: async (request, reply) =>
      send(
        reply,
        await acmeFor(request).renewalInfo(await scopeOf(request), request.params.certid),
      ),
  });

  const signed = (
    path: string,
    summary: string,
    operationOf: (params: Record<string, string>) => AcmeOperation,
  ) => {
    app.post(`${prefix}${path}`, {
      config,
      schema: { tags: TAGS, summary },
      handler: async (request, reply) => {
        const contentType = String(request.headers["content-type"] ?? "")
          .split(";")[0]!
          .trim();
        if (contentType.toLowerCase() !== JOSE_JSON) {
          throw new AcmeProblem("malformed", `ACME requests must have Content-Type ${JOSE_JSON}`, {
            status: 415,
          });
        }
        const acmeScope = await scopeOf(request);
        const operation = operationOf(request.params as Record<string, string>);
        return send(reply, await acmeFor(request).post(acmeScope, operation, request.body));
      },
    });
  };

  signed("/new-account", "ACME newAccount.", () => ({ kind: "newAccount" }));
  signed("/account/:id", "ACME account: read, update contacts or deactivate.", (p) => ({
    kind: "account",
    id: p.id!,
  }));
  signed("/account/:id/orders", "ACME account's orders list.", (p) => ({
    kind: "accountOrders",
    id: p.id!,
  }));
  signed("/key-change", "ACME keyChange (account key rollover).", () => ({ kind: "keyChange" }));
  signed("/new-order", "ACME newOrder.", () => ({ kind: "newOrder" }));
  signed("/order/:id", "ACME order (POST-as-GET).", (p) => ({ kind: "order", id: p.id! }));
  signed("/order/:id/finalize", "ACME finalize: submit the CSR of a ready order.", (p) => ({
    kind: "finalize",
    id: p.id!,
  }));
  signed("/authorization/:id", "ACME authorization: read or deactivate.", (p) => ({
    kind: "authorization",
    id: p.id!,
  }));
  signed("/challenge/:id/:type", "ACME challenge: read, or start validation with {}.", (p) => ({
    kind: "challenge",
    authorizationId: p.id!,
    type: p.type!,
  }));
  signed("/certificate/:serial", "ACME certificate download (PEM chain).", (p) => ({
    kind: "certificate",
    serialHex: p.serial!,
  }));
  signed("/revoke-cert", "ACME revokeCert.", () => ({ kind: "revokeCert" }));
}
