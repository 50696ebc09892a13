import type { FastifyInstance } from "fastify";
import { KeywardError } from "../../../errors.ts";
import { MAX_ROLE_NAME_LENGTH } from "../roles.ts";
import {
  listQuery,
  MAX_PUBLIC_KEY_LENGTH,
  requireList,
  type SshServiceResolver,
  sendData,
  sendNoContent,
  sendRaw,
  TAGS,
  toWire,
  WRITE_METHODS,
} from "./shared.ts";

interface NameParams {
  name: string;
}

const nameParams = {
  type: "object",
  required: ["name"],
  properties: {
    name: {
      type: "string",
      minLength: 1,
      maxLength: MAX_ROLE_NAME_LENGTH,
      description: "Name of the registered key.",
    },
  },
} as const;

/** Registers the routes of the plain (legacy) public key inventory and its authorized_keys rendering. */
export async function registerLegacyKeyRoutes(
  app: FastifyInstance,
  serviceFor: SshServiceResolver,
) {
  app.route({
    method: "GET",
    url: "/legacy_keys",
    schema: {
      tags: TAGS,
      summary: "List registered public keys (GET with list=true).",
      description:
        "Returns the names of registered plain public keys; 404 when there are none (Keyward extension).",
      querystring: listQuery,
    },
    handler: async (request, reply) => {
      requireList(request);
      const keys = await serviceFor(request).listLegacyKeys();
      if (keys.length === 0) throw new KeywardError("not_found", "no legacy keys found");
      return sendData(request, reply, { keys });
    },
  });

  app.route<{ Params: NameParams; Body: { public_key: string; comment?: string } }>({
    method: WRITE_METHODS,
    url: "/legacy_keys/:name",
    schema: {
      tags: TAGS,
      summary: "Register a plain public key.",
      description:
        "Registers an authorized_keys line under a name and returns its SHA-256 fingerprint, size and whether it is weak (DSA, or RSA under 2048 bits). Replaces a key of the same name (Keyward extension).",
      params: nameParams,
      body: {
        type: "object",
        additionalProperties: false,
        required: ["public_key"],
        properties: {
          public_key: {
            type: "string",
            maxLength: MAX_PUBLIC_KEY_LENGTH,
            description: "The key, as one authorized_keys line.",
          },
          comment: {
            type: "string",
            maxLength: 1024,
            description: "Comment for the authorized_keys line; default: the key line's own.",
          },
        },
      },
    },
    handler: async (request, reply) => {
      const info = await serviceFor(request).registerLegacyKey(
        request.params.name,
        request.body.public_key,
        request.body.comment,
      );
      return sendData(request, reply, toWire(info));
    },
  });

  app.route<{ Params: NameParams }>({
    method: "GET",
    url: "/legacy_keys/:name",
    schema: { tags: TAGS, summary: "Read a registered public key.", params: nameParams },
    handler: async (request, reply) => {
      const info = await serviceFor(request).readLegacyKey(request.params.name);
      return sendData(request, reply, toWire(info));
    },
  });

  app.route<{ Params: NameParams }>({
    method: "DELETE",
    url: "/legacy_keys/:name",
    schema: { tags: TAGS, summary: "Remove a registered public key.", params: nameParams },
    handler: async (request, reply) => {
      await serviceFor(request).deleteLegacyKey(request.params.name);
      return sendNoContent(reply);
    },
  });

  app.route({
    method: "GET",
    url: "/authorized_keys",
    schema: {
      tags: TAGS,
      summary: "Render an authorized_keys file.",
      description: "Returns one line per registered key that is not revoked (Keyward extension).",
    },
    handler: async (request, reply) => {
      const text = await serviceFor(request).authorizedKeys();
      return sendRaw(reply, "text/plain; charset=utf-8", text);
    },
  });
}
