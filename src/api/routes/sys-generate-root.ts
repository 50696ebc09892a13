import type { FastifyInstance } from "fastify";
import type { RootGenerationStatus, RootTokenGenerator } from "../../auth/root-generation.ts";
import { invalidField } from "../../errors.ts";
import { WRITE_METHODS } from "./auth-shared.ts";

const TAGS = ["sys"];
/** Unauthenticated, as in Vault, because an operator who has lost every root token has no token to send. */
const PUBLIC = { public: true };

/** Vault's generate-root status shape. `otp` is non-empty only in the response that starts an attempt. */
function statusBody(status: RootGenerationStatus) {
  return {
    started: status.started,
    nonce: status.nonce,
    progress: status.progress,
    required: status.required,
    encoded_token: status.encodedToken,
    encoded_root_token: status.encodedToken,
    pgp_fingerprint: "",
    otp: status.otp ?? "",
    otp_length: status.otpLength,
    complete: status.complete,
  };
}

/**
 * `sys/generate-root`: create a new root token from a quorum of unseal
 * shares, with Vault's OTP flow (`vault operator generate-root -init`,
 * then one call per share, then `-decode` with the OTP).
 */
export async function registerGenerateRootRoutes(
  app: FastifyInstance,
  generator: RootTokenGenerator,
) {
  app.get("/v1/sys/generate-root/attempt", {
    config: PUBLIC,
    schema: { tags: TAGS, summary: "Report the progress of a root token generation." },
    handler: async () => statusBody(await generator.status()),
  });

  app.route<{ Body: { otp?: string; pgp_key?: string } }>({
    method: WRITE_METHODS,
    url: "/v1/sys/generate-root/attempt",
    config: PUBLIC,
    schema: {
      tags: TAGS,
      summary: "Start a root token generation; the response carries the OTP, once.",
      body: {
        type: "object",
        additionalProperties: false,
        properties: {
          otp: {
            type: "string",
            maxLength: 1024,
            description: "Not supported (Vault's legacy flow); leave empty.",
          },
          pgp_key: { type: "string", maxLength: 65536, description: "Not supported; leave empty." },
        },
      },
    },
    handler: async (request) => {
      if (request.body.pgp_key !== undefined && request.body.pgp_key !== "") {
        throw invalidField(
          "pgp_key",
          "PGP encryption of the root token is not supported; start without pgp_key and use the returned otp",
        );
      }
      if (request.body.otp !== undefined && request.body.otp !== "") {
        throw invalidField(
          "otp",
          "a caller-chosen OTP (Vault's legacy flow) is not supported; start without one and use the returned otp",
        );
      }
      return statusBody(await generator.start());
    },
  });

  app.delete("/v1/sys/generate-root/attempt", {
    config: PUBLIC,
    schema: { tags: TAGS, summary: "Cancel the root token generation in progress." },
    handler: async (_request, reply) => {
      await generator.cancel();
      return reply.code(204).send();
    },
  });

  app.route<{ Body: { key: string; nonce: string } }>({
    method: WRITE_METHODS,
    url: "/v1/sys/generate-root/update",
    config: PUBLIC,
    schema: {
      tags: TAGS,
      summary: "Submit one unseal share towards a root token generation.",
      body: {
        type: "object",
        additionalProperties: false,
        required: ["key", "nonce"],
        properties: {
          key: {
            type: "string",
            minLength: 1,
            maxLength: 1024,
            description: "One unseal share, hex or base64.",
          },
          nonce: {
            type: "string",
            minLength: 1,
            maxLength: 128,
            description: "The attempt's nonce.",
          },
        },
      },
    },
    handler: async (request) =>
      statusBody(await generator.update(request.body.key, request.body.nonce)),
  });
}
