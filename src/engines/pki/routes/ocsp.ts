import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { KeywardError } from "../../../errors.ts";
import { registerOcspResponderRoutes } from "./ocsp-responders.ts";
import { type PkiServiceResolver, PUBLIC, sendRaw, TAGS } from "./shared.ts";

const OCSP_RESPONSE = "application/ocsp-response";

/** Longest GET OCSP request accepted, in characters of its URL-encoded base64. */
const MAX_OCSP_GET_LENGTH = 4096;

/** The OCSP responder (RFC 6960) over POST and GET, without a token as in Vault, and its delegated responder settings. */
export function registerOcspRoutes(app: FastifyInstance, serviceFor: PkiServiceResolver) {
  registerOcspResponderRoutes(app, serviceFor);
  // OCSP requests arrive as DER (RFC 6960 appendix A.1); the body becomes a
  // JSON-like object so the audit log records it as base64.
  app.addContentTypeParser(
    "application/ocsp-request",
    { parseAs: "buffer" },
    (_request, body, done) => {
      done(null, { ocsp_request: (body as Buffer).toString("base64") });
    },
  );

  const answer = async (request: FastifyRequest, reply: FastifyReply, der: Buffer) => {
    const response = await serviceFor(request).revocation.ocsp(der);
    return sendRaw(reply, OCSP_RESPONSE, response);
  };

  app.post<{ Body: { ocsp_request: string } }>("/ocsp", {
    config: PUBLIC,
    schema: {
      tags: TAGS,
      summary: "OCSP responder (RFC 6960), POST with a DER application/ocsp-request body.",
      body: {
        type: "object",
        additionalProperties: false,
        required: ["ocsp_request"],
        properties: {
          ocsp_request: {
            type: "string",
            maxLength: 65536,
            description: "The request, base64 (set from a DER body).",
          },
        },
      },
    },
    handler: async (request, reply) =>
      answer(request, reply, Buffer.from(request.body.ocsp_request, "base64")),
  });

  app.get<{ Params: { "*": string } }>("/ocsp/*", {
    config: PUBLIC,
    schema: {
      tags: TAGS,
      summary: "OCSP responder (RFC 6960), GET with the URL-encoded base64 request in the path.",
    },
    handler: async (request, reply) => {
      const encoded = request.params["*"];
      if (encoded.length > MAX_OCSP_GET_LENGTH) {
        throw new KeywardError(
          "invalid_request",
          `the OCSP request is longer than ${MAX_OCSP_GET_LENGTH} characters`,
        );
      }
      let text: string;
      try {
        text = decodeURIComponent(encoded);
      } catch {
        text = encoded;
      }
      return answer(request, reply, Buffer.from(text, "base64"));
    },
  });
}
