import type { FastifyInstance, FastifyRequest } from "fastify";
import { invalidField } from "../../../errors.ts";
import {
  defaultEmptyBody,
  MAX_PUBLIC_KEY_LENGTH,
  PUBLIC,
  type SshServiceResolver,
  sendData,
  sendRaw,
  TAGS,
  toWire,
  WRITE_METHODS,
} from "./shared.ts";

interface RevokeBody {
  serial_number?: string;
  key_id?: string;
  public_key?: string;
}

/**
 * Rejects a JSON number in `serial_number` before schema coercion turns it
 * into a string. The field is hex, so the number 12 would revoke serial
 * 0x12, and `ssh-keygen -L` prints serials in decimal.
 */
async function rejectNumericSerial(request: FastifyRequest): Promise<void> {
  const body = request.body as { serial_number?: unknown } | undefined;
  if (typeof body?.serial_number === "number") {
    throw invalidField(
      "serial_number",
      '"serial_number" must be a string of hex digits as sign returns it, such as "0x1f"; a JSON number is ambiguous',
    );
  }
}

/** Revocation and the KRL. */
export async function registerRevocationRoutes(
  app: FastifyInstance,
  serviceFor: SshServiceResolver,
) {
  app.route<{ Body: RevokeBody }>({
    method: WRITE_METHODS,
    url: "/revoke",
    preValidation: [defaultEmptyBody, rejectNumericSerial],
    schema: {
      tags: TAGS,
      summary: "Revoke certificates or a public key.",
      description:
        "Revokes by exactly one of `serial_number` (hex, as sign returns it), `key_id` (every certificate with that key ID, from any CA) or `public_key` (a plain key, which also revokes every certificate for it, or a certificate line, revoked by its serial). Rebuilds the KRL (Keyward extension).",
      body: {
        type: "object",
        additionalProperties: false,
        properties: {
          serial_number: {
            type: "string",
            maxLength: 64,
            description:
              'Certificate serial: 1 to 16 hex digits, optionally after "0x", and not 0 (a KRL cannot list serial 0).',
          },
          key_id: {
            type: "string",
            minLength: 1,
            maxLength: 1024,
            description: "Certificate key ID.",
          },
          public_key: {
            type: "string",
            maxLength: MAX_PUBLIC_KEY_LENGTH,
            description: "A public key or certificate, as one OpenSSH line.",
          },
        },
      },
    },
    handler: async (request, reply) => {
      const body = request.body ?? {};
      const outcome = await serviceFor(request).revoke({
        serialNumber: body.serial_number,
        keyId: body.key_id,
        publicKey: body.public_key,
      });
      return sendData(request, reply, toWire(outcome.value), outcome.warnings);
    },
  });

  app.route({
    method: "GET",
    url: "/krl",
    config: PUBLIC,
    schema: {
      tags: TAGS,
      summary: "Download the KRL.",
      description:
        "Returns the Key Revocation List in OpenSSH's binary KRL format, for sshd's RevokedKeys and `ssh-keygen -Q`. Rebuilt on every revocation. Needs no token (Keyward extension).",
    },
    handler: async (request, reply) => {
      const krl = await serviceFor(request).krl();
      return sendRaw(reply, "application/octet-stream", krl);
    },
  });
}
