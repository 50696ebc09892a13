import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { constrainToEngine } from "../../../api/engine-constraint.ts";
import { toKeywardError } from "../../../api/error-handler.ts";
import { LoginRateLimiter, rateLimitSource } from "../../../auth/rate-limiter.ts";
import { KeywardError } from "../../../errors.ts";
import { encodeBase64Body, multipartMixed } from "../est/encoding.ts";
import { type BasicCredentials, type EstClient, EstService } from "../est/service.ts";
import { arrivedOverTls, peerCertificateDer } from "../est/tls.ts";
import type { PkiService } from "../service.ts";
import { registerEstConfigRoutes } from "./est-config.ts";
import { PUBLIC, TAGS } from "./shared.ts";

/** The parts of Keyward that the EST routes use: the seal state and the PKI mounts. `Keyward` itself fits. */
export interface PkiMountLookup {
  readonly sealed: boolean;
  /** True when the server runs in dev mode, where EST over plain HTTP is allowed. */
  /** True for a `--dev` server, which allows EST over plain HTTP. */
  readonly devMode?: boolean;
  mounts(): readonly { path: string; type: string }[];
  pki(path: string): PkiService | undefined;
}

const PKCS7_CERTS_ONLY = "application/pkcs7-mime; smime-type=certs-only";
const PKCS8 = "application/pkcs8";
const CSR_ATTRIBUTES = "application/csrattrs";
const PKCS10 = "application/pkcs10";

/** The realm sent in the HTTP Basic challenge of a 401. */
const BASIC_CHALLENGE = 'Basic realm="EST", charset="UTF-8"';
const INTERNAL_MESSAGE = "internal error; the server log has details under this request id";

type LabelParams = { label?: string };
type CsrBody = { csr: string };

/** Reads HTTP Basic credentials; returns undefined when there are none and throws `authentication_required` when malformed. */
function basicCredentials(request: FastifyRequest): BasicCredentials | undefined {
  const header = request.headers.authorization;
  if (header === undefined) return undefined;
  const match = /^Basic\s+([A-Za-z0-9+/]+={0,2})\s*$/i.exec(header);
  const decoded = match ? Buffer.from(match[1]!, "base64").toString("utf8") : "";
  const colon = decoded.indexOf(":");
  if (colon <= 0) {
    throw new KeywardError(
      "authentication_required",
      "the Authorization header is not valid HTTP Basic; send device-id:secret",
      { details: { reason: "malformed_basic" } },
    );
  }
  return { deviceId: decoded.slice(0, colon), secret: decoded.slice(colon + 1) };
}

function requirePkcs10(request: FastifyRequest): void {
  const mediaType = (request.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
  if (mediaType !== PKCS10) {
    throw new KeywardError(
      "unsupported_media_type",
      `send the CSR as base64 DER with Content-Type ${PKCS10}, not "${mediaType || "none"}"`,
    );
  }
}

/**
 * Sends an error as EST clients expect it: a plain HTTP status with a text
 * message (RFC 7030 section 4.2.3), a Basic challenge with a 401 and
 * Retry-After with a 429. A 5xx sends a fixed message and logs the cause.
 */
function sendEstError(error: unknown, request: FastifyRequest, reply: FastifyReply) {
  const keywardError = toKeywardError(error);
  const status = keywardError.status;
  const fields = { code: keywardError.code, details: keywardError.details };
  if (status >= 500 && status !== 503) {
    request.log.error({ ...fields, err: keywardError.cause ?? keywardError }, "EST request failed");
  } else {
    request.log.info(fields, keywardError.message);
  }
  if (status === 401) reply.header("www-authenticate", BASIC_CHALLENGE);
  const retryAfter = keywardError.details?.retryAfterSeconds;
  if (status === 429 && typeof retryAfter === "number") reply.header("retry-after", retryAfter);
  const message = status < 500 || status === 503 ? keywardError.message : INTERNAL_MESSAGE;
  return reply.status(status).type("text/plain; charset=utf-8").send(`${message}\n`);
}

/**
 * Rejects an EST request that arrived over plain HTTP with 403, unless the
 * server runs in dev mode or the mount's `config/est` sets
 * `allow_insecure_http`. RFC 7030 section 3.3 runs EST over TLS only, and
 * HTTP Basic would send the enrolment secret in clear text.
 */
async function requireTls(
  request: FastifyRequest,
  est: EstService,
  lookup: PkiMountLookup,
): Promise<EstService> {
  if (arrivedOverTls(request) || lookup.devMode === true) return est;
  const config = await est.config.read();
  // A mount without EST returns 404 from the operation itself.
  if (!config.enabled || config.allow_insecure_http) return est;
  throw new KeywardError(
    "permission_denied",
    `EST on mount "${est.mount}" needs HTTPS; send the request over TLS, or set allow_insecure_http in config/est for testing`,
    { details: { reason: "plain_http" } },
  );
}

/**
 * Registers the five EST operations in `scope` under `base` and
 * `base/:label`. The routes need no token, because EST clients
 * authenticate by HTTP Basic or a TLS client certificate. Failed Basic
 * attempts are rate-limited per source address. Every operation first
 * checks that the request came over TLS (see `requireTls`).
 */
function registerProtocolRoutes(
  scope: FastifyInstance,
  base: string,
  resolveService: (request: FastifyRequest) => Promise<EstService>,
  failures: LoginRateLimiter,
  lookup: PkiMountLookup,
) {
  const resolve = async (request: FastifyRequest) =>
    requireTls(request, await resolveService(request), lookup);
  // EST bodies are base64 text whatever their media type, and the handlers
  // check the type. The body becomes a JSON-like object, so the audit log
  // records it.
  scope.removeAllContentTypeParsers();
  scope.addContentTypeParser("*", { parseAs: "string" }, (_request, body, done) => {
    done(null, { csr: body as string });
  });
  scope.setErrorHandler(sendEstError);

  const clientOf = (request: FastifyRequest): EstClient => {
    const basic = basicCredentials(request);
    if (basic) failures.check(`est:${rateLimitSource(request.ip)}`);
    const certificateDer = peerCertificateDer(request);
    return { ...(basic ? { basic } : {}), ...(certificateDer ? { certificateDer } : {}) };
  };
  // Counts a failed Basic attempt against the source address, then rethrows.
  const countFailure = (request: FastifyRequest, error: unknown): never => {
    const reason = (error as KeywardError).details?.reason;
    if (
      error instanceof KeywardError &&
      error.code === "authentication_required" &&
      reason !== "missing"
    ) {
      failures.fail(`est:${rateLimitSource(request.ip)}`);
    }
    throw error;
  };

  for (const prefix of [base, `${base}/:label`]) {
    scope.get<{ Params: LabelParams }>(`${prefix}/cacerts`, {
      config: PUBLIC,
      schema: { tags: TAGS, summary: "EST cacerts: the CA certificates (RFC 7030 section 4.1)." },
      handler: async (request, reply) => {
        const der = await (await resolve(request)).caCertificates(request.params.label);
        return reply.type(PKCS7_CERTS_ONLY).send(encodeBase64Body(der));
      },
    });

    scope.get<{ Params: LabelParams }>(`${prefix}/csrattrs`, {
      config: PUBLIC,
      schema: {
        tags: TAGS,
        summary: "EST csrattrs: what CSRs should contain (RFC 7030 section 4.5).",
      },
      handler: async (request, reply) => {
        const der = await (await resolve(request)).csrAttributes(request.params.label);
        if (der === undefined) return reply.code(204).send();
        return reply.type(CSR_ATTRIBUTES).send(encodeBase64Body(der));
      },
    });

    scope.post<{ Params: LabelParams; Body: CsrBody }>(`${prefix}/simpleenroll`, {
      config: PUBLIC,
      schema: {
        tags: TAGS,
        summary: "EST simpleenroll: a certificate for a base64 PKCS#10 CSR (RFC 7030 section 4.2).",
        description: "Authenticated by HTTP Basic with a device id and its single-use secret.",
      },
      handler: async (request, reply) => {
        const est = await resolve(request);
        const client = clientOf(request);
        requirePkcs10(request);
        const der = await est
          .simpleEnroll(request.params.label, request.body.csr, client)
          .catch((error: unknown) => countFailure(request, error));
        return reply.type(PKCS7_CERTS_ONLY).send(encodeBase64Body(der));
      },
    });

    scope.post<{ Params: LabelParams; Body: CsrBody }>(`${prefix}/simplereenroll`, {
      config: PUBLIC,
      schema: {
        tags: TAGS,
        summary: "EST simplereenroll: renew a certificate (RFC 7030 section 4.2.2).",
        description:
          "Authenticated by the TLS client certificate being renewed; the CSR must repeat its subject and SANs.",
      },
      handler: async (request, reply) => {
        const est = await resolve(request);
        const client = clientOf(request);
        requirePkcs10(request);
        const der = await est.simpleReenroll(request.params.label, request.body.csr, client);
        return reply.type(PKCS7_CERTS_ONLY).send(encodeBase64Body(der));
      },
    });

    scope.post<{ Params: LabelParams; Body: CsrBody }>(`${prefix}/serverkeygen`, {
      config: PUBLIC,
      schema: {
        tags: TAGS,
        summary: "EST serverkeygen: a new key pair and its certificate (RFC 7030 section 4.4).",
        description:
          "Authenticated by HTTP Basic (an enrolment secret) or a TLS client certificate. The response is multipart/mixed with the PKCS#8 key and the certificate.",
      },
      handler: async (request, reply) => {
        const est = await resolve(request);
        const client = clientOf(request);
        requirePkcs10(request);
        const generated = await est
          .serverKeygen(request.params.label, request.body.csr, client)
          .catch((error: unknown) => countFailure(request, error));
        const { contentType, body } = multipartMixed([
          { contentType: PKCS8, der: generated.pkcs8 },
          { contentType: PKCS7_CERTS_ONLY, der: generated.pkcs7 },
        ]);
        return reply.header("cache-control", "no-store").type(contentType).send(body);
      },
    });
  }
}

/** Returns the EST service of the mount whose EST configuration sets `default_mount`. */
async function defaultMountService(lookup: PkiMountLookup): Promise<EstService> {
  if (lookup.sealed) throw new KeywardError("sealed", "Keyward is sealed");
  for (const entry of lookup.mounts()) {
    if (entry.type !== "pki") continue;
    const pki = lookup.pki(entry.path);
    if (!pki) continue;
    const est = new EstService(pki);
    const config = await est.config.read();
    if (config.enabled && config.default_mount) return est;
  }
  throw new KeywardError(
    "not_found",
    "no PKI mount serves /.well-known/est/; enable EST with default_mount on one mount's config/est",
  );
}

/**
 * Registers EST: the management routes (`config/est`, enrolment secrets)
 * and the protocol routes under `/v1/<mount>/est/` for every PKI mount,
 * and the protocol routes under `/.well-known/est/` for the default mount.
 * Call it on the root instance after the engine constraint is added.
 */
export async function registerEstRoutes(app: FastifyInstance, lookup: PkiMountLookup) {
  const failures = new LoginRateLimiter({});
  const pkiFor = (request: FastifyRequest): PkiService => {
    const { mount } = request.params as { mount: string };
    if (lookup.sealed) throw new KeywardError("sealed", "Keyward is sealed");
    const pki = lookup.pki(mount);
    if (!pki) throw new KeywardError("route_not_found", `no PKI engine is mounted at "${mount}/"`);
    return pki;
  };
  const estFor = (request: FastifyRequest) => new EstService(pkiFor(request));
  const otherDefaultMount = async (mount: string) => {
    for (const entry of lookup.mounts()) {
      const pki = entry.type === "pki" && entry.path !== mount ? lookup.pki(entry.path) : undefined;
      if (!pki) continue;
      const config = await new EstService(pki).config.read();
      if (config.default_mount) return entry.path;
    }
    return undefined;
  };

  await app.register(
    async (mountScope) => {
      constrainToEngine(mountScope, "pki");
      registerEstConfigRoutes(mountScope, estFor, otherDefaultMount);
      await mountScope.register(async (protocolScope) => {
        registerProtocolRoutes(
          protocolScope,
          "/est",
          async (request) => estFor(request),
          failures,
          lookup,
        );
      });
    },
    { prefix: "/v1/:mount" },
  );

  await app.register(
    async (wellKnownScope) => {
      registerProtocolRoutes(
        wellKnownScope,
        "",
        () => defaultMountService(lookup),
        failures,
        lookup,
      );
    },
    { prefix: "/.well-known/est" },
  );
}
