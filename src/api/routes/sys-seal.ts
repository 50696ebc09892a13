import type { FastifyInstance, FastifyReply } from "fastify";
import type { Keyward } from "../../core/keyward.ts";
import { invalidField, KeywardError, missingField } from "../../errors.ts";
import type {
  InitRequest,
  RekeyStatus,
  RekeyVerificationStatus,
  SealManager,
  SealStatus,
} from "../../seal/types.ts";
import { envelope } from "../envelope.ts";

const WRITE = ["POST", "PUT"] as const;
const PUBLIC = { public: true };
const EMPTY_BODY = { type: "object", additionalProperties: false, properties: {} } as const;

const sharesBody = {
  type: "object",
  additionalProperties: false,
  required: ["secret_shares", "secret_threshold"],
  properties: {
    secret_shares: {
      type: "integer",
      minimum: 1,
      maximum: 255,
      description: "How many unseal key shares to issue.",
    },
    secret_threshold: {
      type: "integer",
      minimum: 1,
      maximum: 255,
      description: "How many shares are needed to rebuild the root key.",
    },
  },
} as const;

const rekeyInitBody = {
  ...sharesBody,
  properties: {
    ...sharesBody.properties,
    require_verification: {
      type: "boolean",
      description:
        "Keep the current shares in force until a threshold of the new shares is submitted to sys/rekey/verify.",
    },
  },
} as const;

/** A share submitted to a rekey or its verification, with the nonce of that attempt. */
const shareWithNonceBody = {
  type: "object",
  additionalProperties: false,
  required: ["key", "nonce"],
  properties: {
    key: {
      type: "string",
      minLength: 1,
      maxLength: 1024,
      description: "One share, hex or base64.",
    },
    nonce: { type: "string", minLength: 1, maxLength: 128 },
  },
} as const;

/** Share counts are checked in the handler, because which fields are required depends on the seal type. */
const initBody = {
  type: "object",
  additionalProperties: false,
  properties: {
    ...sharesBody.properties,
    recovery_shares: {
      type: "integer",
      minimum: 1,
      maximum: 255,
      description: "With a PKCS#11 seal: how many recovery key shares to issue.",
    },
    recovery_threshold: {
      type: "integer",
      minimum: 1,
      maximum: 255,
      description: "With a PKCS#11 seal: how many recovery key shares authorise an operation.",
    },
    root_token: {
      type: "string",
      minLength: 1,
      maxLength: 512,
      description: "Keyward extension: use this root token instead of generating one.",
    },
  },
} as const;

/** Vault's seal-status shape. With a PKCS#11 seal, `t` and `n` count recovery key shares. */
export function sealStatusBody(
  status: SealStatus,
  seal: Pick<SealManager, "type">,
  version: string,
) {
  const recoverySeal = seal.type !== "shamir";
  return {
    type: seal.type,
    initialized: status.initialized,
    sealed: status.sealed,
    t: status.threshold,
    n: status.shares,
    progress: status.progress,
    nonce: status.nonce,
    version,
    build_date: "",
    migration: false,
    recovery_seal: recoverySeal,
    ...(recoverySeal ? { recovery_seal_type: "shamir" } : {}),
    storage_type: status.storageType,
  };
}

interface InitBody {
  secret_shares?: number;
  secret_threshold?: number;
  recovery_shares?: number;
  recovery_threshold?: number;
  root_token?: string;
}

/**
 * Reads the share counts of `sys/init`. A Shamir seal needs
 * `secret_shares` and `secret_threshold` and rejects recovery counts. A
 * PKCS#11 seal needs `recovery_shares` and `recovery_threshold`, and
 * ignores the secret counts as Vault does with an auto-unseal seal.
 */
function initRequest(seal: SealManager, body: InitBody): InitRequest {
  if (seal.type === "shamir") {
    for (const field of ["recovery_shares", "recovery_threshold"] as const) {
      if (body[field] !== undefined) {
        throw invalidField(
          field,
          `${field} applies only to a PKCS#11 seal; this server has a Shamir seal, so use secret_shares and secret_threshold`,
        );
      }
    }
    if (body.secret_shares === undefined) throw missingField("secret_shares");
    if (body.secret_threshold === undefined) throw missingField("secret_threshold");
    return { shares: body.secret_shares, threshold: body.secret_threshold };
  }
  if (body.recovery_shares === undefined) throw missingField("recovery_shares");
  if (body.recovery_threshold === undefined) throw missingField("recovery_threshold");
  return { shares: body.recovery_shares, threshold: body.recovery_threshold };
}

function rekeyBody(status: RekeyStatus) {
  const body: Record<string, unknown> = {
    nonce: status.nonce,
    started: status.started,
    t: status.threshold,
    n: status.shares,
    progress: status.progress,
    required: status.required,
    pgp_fingerprints: null,
    backup: false,
    verification_required: status.verificationRequired,
  };
  if (status.verificationNonce !== "") body.verification_nonce = status.verificationNonce;
  if (status.complete) {
    body.complete = true;
    body.keys = status.complete.keysHex;
    body.keys_base64 = status.complete.keysBase64;
  }
  return body;
}

/** Vault's shape of `sys/rekey/verify`: the progress, or only the nonce and `complete` at the end. */
function rekeyVerifyBody(status: RekeyVerificationStatus) {
  if (status.complete) return { nonce: status.nonce, complete: true };
  return {
    nonce: status.nonce,
    started: status.started,
    t: status.threshold,
    n: status.shares,
    progress: status.progress,
  };
}

function healthStatusCode(status: SealStatus, query: Record<string, string | undefined>): number {
  const code = (name: string, fallback: number) => {
    const value = query[name];
    if (value === undefined) return fallback;
    // Three decimal digits only: Number() would also take "0x1f4", " 200" and "2e2".
    const parsed = /^[0-9]{3}$/.test(value) ? Number(value) : Number.NaN;
    // A 1xx is not a final response: the client would wait for another one.
    if (!(parsed >= 200 && parsed <= 599)) {
      throw new KeywardError(
        "invalid_field",
        `query parameter "${name}" must be an HTTP status code from 200 to 599`,
        {
          field: name,
        },
      );
    }
    return parsed;
  };
  if (!status.initialized) return code("uninitcode", 501);
  if (status.sealed) return code("sealedcode", 503);
  return code("activecode", 200);
}

/** Routes of `sys/` that govern the seal: init, seal status, unseal, seal, health, rotate, rekey. */
export async function registerSealRoutes(app: FastifyInstance, keyward: Keyward, version: string) {
  const seal = keyward.seal;
  const statusBody = async () => sealStatusBody(await seal.status(), seal, version);

  app.get("/v1/sys/init", {
    config: PUBLIC,
    schema: { tags: ["sys"], summary: "Report whether Keyward is initialised." },
    handler: async () => ({ initialized: (await seal.status()).initialized }),
  });

  app.route({
    method: [...WRITE],
    url: "/v1/sys/init",
    config: PUBLIC,
    schema: {
      tags: ["sys"],
      summary: "Initialise Keyward: create the root key, its unseal shares and the root token.",
      description:
        "The shares and the root token are returned once and never stored. With a PKCS#11 seal the root key is wrapped by the HSM, the response carries recovery key shares, and the server unseals itself.",
      body: initBody,
    },
    handler: async (request) => {
      const body = request.body as InitBody;
      const result = await keyward.init(initRequest(seal, body), body.root_token);
      if (seal.autoUnseal === undefined) {
        return {
          keys: result.keysHex,
          keys_base64: result.keysBase64,
          root_token: result.rootToken,
        };
      }
      try {
        await seal.autoUnseal();
      } catch (error) {
        // The shares and the root token exist only in this response, so it must still be sent.
        request.log.error(
          { err: error },
          "failed to unseal with the HSM after initialisation; the server stays sealed until it restarts or is unsealed with recovery key shares",
        );
      }
      return {
        keys: [],
        keys_base64: [],
        recovery_keys: result.keysHex,
        recovery_keys_base64: result.keysBase64,
        root_token: result.rootToken,
      };
    },
  });

  app.get("/v1/sys/seal-status", {
    config: PUBLIC,
    schema: { tags: ["sys"], summary: "Report the seal state and unseal progress." },
    handler: statusBody,
  });

  app.route({
    method: [...WRITE],
    url: "/v1/sys/unseal",
    config: PUBLIC,
    schema: {
      tags: ["sys"],
      summary:
        "Submit one unseal key share (a recovery key share with a PKCS#11 seal), or reset the progress.",
      body: {
        type: "object",
        additionalProperties: false,
        properties: {
          key: {
            type: "string",
            minLength: 1,
            maxLength: 1024,
            description: "One share, hex or base64.",
          },
          reset: { type: "boolean", description: "Discard the shares submitted so far." },
          migrate: {
            type: "boolean",
            description: "Accepted for Vault compatibility; must be false.",
          },
        },
      },
    },
    handler: async (request) => {
      const body = request.body as { key?: string; reset?: boolean; migrate?: boolean };
      if (body.migrate === true) {
        throw new KeywardError("invalid_field", "seal migration is not supported", {
          field: "migrate",
        });
      }
      if (body.reset === true) {
        await seal.resetUnseal();
        return statusBody();
      }
      if (body.key === undefined) throw missingField("key");
      await seal.submitUnsealShare(body.key);
      return statusBody();
    },
  });

  app.route({
    method: [...WRITE],
    url: "/v1/sys/seal",
    schema: {
      tags: ["sys"],
      summary: "Seal Keyward: drop the root key from memory.",
      body: EMPTY_BODY,
    },
    handler: async (_request, reply: FastifyReply) => {
      await seal.seal();
      return reply.code(204).send();
    },
  });

  app.route({
    method: ["GET", "HEAD"],
    url: "/v1/sys/health",
    config: PUBLIC,
    schema: {
      tags: ["sys"],
      summary: "Health check for load balancers: 200 unsealed, 501 not initialised, 503 sealed.",
      querystring: {
        type: "object",
        properties: {
          standbyok: { type: "string" },
          perfstandbyok: { type: "string" },
          activecode: { type: "string" },
          standbycode: { type: "string" },
          sealedcode: { type: "string" },
          uninitcode: { type: "string" },
        },
      },
    },
    handler: async (request, reply) => {
      const status = await seal.status();
      const code = healthStatusCode(status, request.query as Record<string, string | undefined>);
      return reply.code(code).send({
        initialized: status.initialized,
        sealed: status.sealed,
        standby: false,
        performance_standby: false,
        replication_performance_mode: "disabled",
        replication_dr_mode: "disabled",
        server_time_utc: Math.floor(Date.now() / 1000),
        version,
        storage_type: status.storageType,
        // Keyward's additions: every node serves requests (none is a
        // standby); the leader also runs the scheduled jobs.
        ha_enabled: keyward.cluster.haEnabled,
        node_id: keyward.cluster.nodeId,
        leader: keyward.cluster.isLeader,
      });
    },
  });

  app.get("/v1/sys/key-status", {
    schema: { tags: ["sys"], summary: "Report the active barrier key's term." },
    handler: async (request) => {
      const status = await seal.keyStatus();
      const data = {
        term: status.term,
        install_time: status.installTime,
        encryptions: status.encryptions,
      };
      return { ...data, ...envelope(data, { requestId: request.id }) };
    },
  });

  app.route({
    method: [...WRITE],
    url: "/v1/sys/rotate",
    schema: {
      tags: ["sys"],
      summary: "Add a new barrier key; new writes use it and older data stays readable.",
      body: EMPTY_BODY,
    },
    handler: async (_request, reply) => {
      await seal.rotate();
      return reply.code(204).send();
    },
  });

  app.get("/v1/sys/rekey/init", {
    config: PUBLIC,
    schema: { tags: ["sys"], summary: "Report the progress of a rekey." },
    handler: async () => rekeyBody(await seal.rekeyStatus()),
  });

  app.route({
    method: [...WRITE],
    url: "/v1/sys/rekey/init",
    config: PUBLIC,
    schema: {
      tags: ["sys"],
      summary: "Start a rekey: issue new unseal shares once the current ones are submitted.",
      body: rekeyInitBody,
    },
    handler: async (request) => {
      const body = request.body as {
        secret_shares: number;
        secret_threshold: number;
        require_verification?: boolean;
      };
      return rekeyBody(
        await seal.rekeyInit({
          shares: body.secret_shares,
          threshold: body.secret_threshold,
          requireVerification: body.require_verification === true,
        }),
      );
    },
  });

  app.delete("/v1/sys/rekey/init", {
    config: PUBLIC,
    schema: {
      tags: ["sys"],
      summary: "Cancel a rekey in progress, with any new shares that wait for verification.",
    },
    handler: async (_request, reply) => {
      await seal.rekeyCancel();
      return reply.code(204).send();
    },
  });

  app.route({
    method: [...WRITE],
    url: "/v1/sys/rekey/update",
    config: PUBLIC,
    schema: {
      tags: ["sys"],
      summary: "Submit one current unseal share towards a rekey.",
      body: shareWithNonceBody,
    },
    handler: async (request) => {
      const body = request.body as { key: string; nonce: string };
      return rekeyBody(await seal.rekeyUpdate(body.key, body.nonce));
    },
  });

  // Verification of a rekey's new shares. Public like sys/rekey/update,
  // because the shares themselves are the authorisation.
  app.get("/v1/sys/rekey/verify", {
    config: PUBLIC,
    schema: {
      tags: ["sys"],
      summary: "Report the progress of verifying a rekey's new shares.",
    },
    handler: async () => rekeyVerifyBody(await seal.rekeyVerifyStatus()),
  });

  app.route({
    method: [...WRITE],
    url: "/v1/sys/rekey/verify",
    config: PUBLIC,
    schema: {
      tags: ["sys"],
      summary: "Submit one new share of a rekey that requires verification.",
      description:
        "When a threshold of the new shares is submitted, they replace the current shares, which no longer work.",
      body: shareWithNonceBody,
    },
    handler: async (request) => {
      const body = request.body as { key: string; nonce: string };
      return rekeyVerifyBody(await seal.rekeyVerifyUpdate(body.key, body.nonce));
    },
  });

  app.delete("/v1/sys/rekey/verify", {
    config: PUBLIC,
    schema: {
      tags: ["sys"],
      summary:
        "Restart the verification with a new nonce; the new shares stay issued and the rekey stays in progress.",
    },
    handler: async () => rekeyVerifyBody(await seal.rekeyVerifyReset()),
  });
}
