import type { FastifyInstance } from "fastify";
import { type OcspResponderRequest, requireResponder, responderInfo } from "../ocsp-delegation.ts";
import {
  duration,
  issuerRefParams,
  type PkiServiceResolver,
  sendData,
  shortString,
  TAGS,
  WRITE_METHODS,
} from "./shared.ts";

/** Registers the routes that create (or replace), read and delete an issuer's delegated OCSP responder. */
export function registerOcspResponderRoutes(app: FastifyInstance, serviceFor: PkiServiceResolver) {
  app.route<{ Params: { issuer_ref: string }; Body: OcspResponderRequest }>({
    method: WRITE_METHODS,
    url: "/issuer/:issuer_ref/ocsp-responder",
    schema: {
      tags: TAGS,
      summary: "Create or replace an issuer's delegated OCSP responder.",
      description:
        "Generates a key pair and a certificate signed by the issuer with id-kp-OCSPSigning and ocsp-nocheck. OCSP responses about the issuer's certificates are then signed by it until it expires. The private key is never returned.",
      params: issuerRefParams,
      body: {
        type: "object",
        additionalProperties: false,
        properties: {
          key_type: shortString("rsa, ec (default) or ed25519."),
          key_bits: { type: "integer", minimum: 0, maximum: 8192, description: "Key size." },
          ttl: duration("Lifetime of the responder certificate; default 720h."),
        },
      },
    },
    handler: async (request, reply) => {
      const service = serviceFor(request);
      const issuer = await service.issuers.resolve(request.params.issuer_ref);
      const record = await service.revocation.responders.create(issuer, request.body ?? {});
      return sendData(request, reply, responderInfo(record));
    },
  });

  app.get<{ Params: { issuer_ref: string } }>("/issuer/:issuer_ref/ocsp-responder", {
    schema: {
      tags: TAGS,
      summary: "Read an issuer's delegated OCSP responder.",
      params: issuerRefParams,
    },
    handler: async (request, reply) => {
      const service = serviceFor(request);
      const issuer = await service.issuers.resolve(request.params.issuer_ref);
      const record = requireResponder(await service.revocation.responders.read(issuer), issuer);
      return sendData(request, reply, responderInfo(record));
    },
  });

  app.delete<{ Params: { issuer_ref: string } }>("/issuer/:issuer_ref/ocsp-responder", {
    schema: {
      tags: TAGS,
      summary: "Delete an issuer's delegated OCSP responder; the issuer signs OCSP again.",
      params: issuerRefParams,
    },
    handler: async (request, reply) => {
      const service = serviceFor(request);
      const issuer = await service.issuers.resolve(request.params.issuer_ref);
      await service.revocation.responders.delete(issuer);
      return reply.code(204).send();
    },
  });
}
