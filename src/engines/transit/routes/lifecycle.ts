import type { FastifyInstance } from "fastify";
import { KeywardError } from "../../../errors.ts";
import { MAX_DELETION_WINDOW_DAYS, MIN_DELETION_WINDOW_DAYS } from "../mount-config.ts";
import { TARGET_KEY_STATES } from "../types.ts";
import { sendData, sendOutcome } from "./reply.ts";
import type { ServiceResolver } from "./resolver.ts";
import { defaultEmptyBody, nameParams, TAGS, WRITE_METHODS } from "./schemas.ts";

interface NameParams {
  name: string;
}

const deletionWindow = {
  type: "integer",
  minimum: MIN_DELETION_WINDOW_DAYS,
  maximum: MAX_DELETION_WINDOW_DAYS,
  description: `Days before the deletion runs (${MIN_DELETION_WINDOW_DAYS} to ${MAX_DELETION_WINDOW_DAYS}). Default: the mount's \`deletion_window\`, 30 days unless configured.`,
} as const;

/** Keyward's lifecycle routes: key states, scheduled deletion and the mount's key settings. */
export async function registerLifecycleRoutes(app: FastifyInstance, serviceFor: ServiceResolver) {
  app.route<{
    Params: NameParams;
    Body: { deletion_window?: number };
    Querystring: { deletion_window?: number };
  }>({
    method: "DELETE",
    url: "/keys/:name",
    preValidation: defaultEmptyBody,
    schema: {
      tags: TAGS,
      summary: "Schedule a key's deletion.",
      description:
        "Keyward deviates from Vault here. Vault deletes the key at once; Keyward schedules the deletion after a waiting period of `deletion_window` days (body or query, 7 to 30, default 30 or the mount's `deletion_window`) and returns 200 with `deletion_date`. Until then the key rejects every operation and `POST keys/:name/cancel-deletion` restores it. The key must allow deletion (`deletion_allowed` in its config), as in Vault.",
      params: nameParams,
      querystring: {
        type: "object",
        properties: { deletion_window: deletionWindow },
      },
      body: {
        type: "object",
        additionalProperties: false,
        properties: { deletion_window: deletionWindow },
      },
    },
    handler: async (request, reply) => {
      const fromBody = request.body?.deletion_window;
      const fromQuery = request.query.deletion_window;
      if (fromBody !== undefined && fromQuery !== undefined && fromBody !== fromQuery) {
        throw new KeywardError(
          "invalid_request",
          "deletion_window is set in both the body and the query with different values; set it once",
          { field: "deletion_window" },
        );
      }
      const outcome = await serviceFor(request).scheduleDeletion(request.params.name, {
        deletionWindowDays: fromBody ?? fromQuery,
      });
      return sendOutcome(request, reply, outcome);
    },
  });

  app.route<{ Params: NameParams; Body: { state: string } }>({
    method: WRITE_METHODS,
    preValidation: defaultEmptyBody,
    url: "/keys/:name/state",
    schema: {
      tags: TAGS,
      summary: "Change a key's lifecycle state (Keyward extension).",
      description:
        "Moves the key to a NIST SP 800-57 state: `active` (every operation), `suspended` (none until reactivated), `deactivated` (decrypt and verify only), `compromised` (decrypt and verify only, every use flagged with a warning) or `destroyed` (key material erased, metadata kept). A transition the lifecycle forbids returns 409 `invalid_state`.",
      params: nameParams,
      body: {
        type: "object",
        additionalProperties: false,
        required: ["state"],
        properties: { state: { type: "string", enum: [...TARGET_KEY_STATES] } },
      },
    },
    handler: async (request, reply) =>
      sendOutcome(
        request,
        reply,
        await serviceFor(request).setKeyState(request.params.name, request.body.state),
      ),
  });

  app.route<{ Params: NameParams }>({
    method: WRITE_METHODS,
    preValidation: defaultEmptyBody,
    url: "/keys/:name/cancel-deletion",
    schema: {
      tags: TAGS,
      summary: "Cancel a key's scheduled deletion (Keyward extension).",
      description:
        "Removes the scheduled deletion so the key is usable again. Returns the key; a key with no scheduled deletion is returned unchanged with a warning.",
      params: nameParams,
      body: { type: "object", additionalProperties: false, properties: {} },
    },
    handler: async (request, reply) =>
      sendOutcome(request, reply, await serviceFor(request).cancelDeletion(request.params.name)),
  });

  const configDescription =
    "`disable_upsert` (Vault): when true, encrypting with a missing key fails instead of creating it. `deletion_window` (Keyward extension): the default number of days a scheduled key deletion waits.";

  app.route({
    method: "GET",
    url: "/config/keys",
    schema: {
      tags: TAGS,
      summary: "Read the mount's key settings.",
      description: configDescription,
    },
    handler: async (request, reply) => {
      const config = await serviceFor(request).readMountConfig();
      return sendData(request, reply, {
        disableUpsert: config.disableUpsert,
        deletionWindow: config.deletionWindowDays,
      });
    },
  });

  app.route<{ Body: { disable_upsert?: boolean; deletion_window?: number } }>({
    method: WRITE_METHODS,
    preValidation: defaultEmptyBody,
    url: "/config/keys",
    schema: {
      tags: TAGS,
      summary: "Change the mount's key settings.",
      description: configDescription,
      body: {
        type: "object",
        additionalProperties: false,
        properties: { disable_upsert: { type: "boolean" }, deletion_window: deletionWindow },
      },
    },
    handler: async (request, reply) => {
      const body = request.body ?? {};
      const changes: { disableUpsert?: boolean; deletionWindowDays?: number } = {};
      if (body.disable_upsert !== undefined) changes.disableUpsert = body.disable_upsert;
      if (body.deletion_window !== undefined) changes.deletionWindowDays = body.deletion_window;
      const config = await serviceFor(request).writeMountConfig(changes);
      return sendData(request, reply, {
        disableUpsert: config.disableUpsert,
        deletionWindow: config.deletionWindowDays,
      });
    },
  });
}
