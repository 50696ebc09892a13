import type { FastifyInstance } from "fastify";
import { KeywardError } from "../../../errors.ts";
import { EXPORT_KINDS } from "../../../keys/index.ts";
import { sendData, sendNoContent, sendOutcome } from "./reply.ts";
import type { ServiceResolver } from "./resolver.ts";
import { defaultEmptyBody, MAX_DATA_LENGTH, nameParams, TAGS, WRITE_METHODS } from "./schemas.ts";

interface ExportParams {
  type: string;
  name: string;
  version?: string;
}

/** Export, backup and restore of key material. */
export async function registerExportRoutes(app: FastifyInstance, serviceFor: ServiceResolver) {
  for (const url of ["/export/:type/:name", "/export/:type/:name/:version"]) {
    app.route<{ Params: ExportParams }>({
      method: "GET",
      url,
      schema: {
        tags: TAGS,
        summary: "Export key material.",
        description:
          "Returns the key material of an exportable key, per version: `encryption-key`, `signing-key`, `hmac-key`, or `public-key` (which needs no export permission). `version` is a version number or `latest`; without it every available version is returned.",
        params: {
          type: "object",
          required: ["type", "name"],
          properties: {
            ...nameParams.properties,
            type: { type: "string", enum: [...EXPORT_KINDS] },
            version: { type: "string", minLength: 1, maxLength: 16 },
          },
        },
      },
      handler: async (request, reply) => {
        const { type, name, version } = request.params;
        return sendOutcome(
          request,
          reply,
          await serviceFor(request).exportKey(name, type, version),
        );
      },
    });
  }

  app.route<{ Params: { name: string } }>({
    method: "GET",
    url: "/backup/:name",
    schema: {
      tags: TAGS,
      summary: "Back up a key.",
      description:
        "Returns a plaintext backup of every version of the key, for `restore`. The key must allow plaintext backup. Anyone holding the backup holds the key.",
      params: nameParams,
    },
    handler: async (request, reply) =>
      sendData(request, reply, {
        backup: await serviceFor(request).backupKey(request.params.name),
      }),
  });

  for (const url of ["/restore", "/restore/:name"]) {
    app.route<{
      Params: { name?: string };
      Body: { backup: string; name?: string; force?: boolean };
    }>({
      method: WRITE_METHODS,
      preValidation: defaultEmptyBody,
      url,
      schema: {
        tags: TAGS,
        summary: "Restore a key from a backup.",
        description:
          "Restores a backup made by `backup`, under the name in the URL or body, or else the backed-up name. An existing key is replaced only with `force`. A deletion scheduled in the backup is dropped.",
        params: { type: "object", properties: nameParams.properties },
        body: {
          type: "object",
          additionalProperties: false,
          required: ["backup"],
          properties: {
            backup: { type: "string", minLength: 1, maxLength: MAX_DATA_LENGTH },
            name: nameParams.properties.name,
            force: { type: "boolean" },
          },
        },
      },
      handler: async (request, reply) => {
        const fromUrl = request.params.name;
        const fromBody = request.body.name;
        if (fromUrl !== undefined && fromBody !== undefined && fromUrl !== fromBody) {
          throw new KeywardError(
            "invalid_request",
            "the key name in the URL and in the body differ; give it once",
            { field: "name" },
          );
        }
        await serviceFor(request).restoreKey({
          backup: request.body.backup,
          name: fromUrl ?? fromBody,
          force: request.body.force,
        });
        return sendNoContent(reply);
      },
    });
  }
}
