import type { FastifyInstance, FastifyRequest } from "fastify";
import { parseDuration } from "../../../auth/duration.ts";
import { KeywardError } from "../../../errors.ts";
import { type EstConfig, type EstConfigInput, validateLabel } from "../est/config.ts";
import {
  DEFAULT_SECRET_TTL_SECONDS,
  type EnrollmentSecretRecord,
} from "../est/enrollment-secrets.ts";
import type { EstService } from "../est/service.ts";
import {
  duration,
  listQuery,
  requireList,
  sendData,
  shortString,
  TAGS,
  WRITE_METHODS,
} from "./shared.ts";

/** Returns the EST service of the request's mount. */
export type EstServiceResolver = (request: FastifyRequest) => EstService;

/** Returns the other mount that is EST's default mount, if any, so a second one is rejected. */
export type OtherDefaultMount = (mount: string) => Promise<string | undefined>;

const configBody = {
  type: "object",
  additionalProperties: false,
  properties: {
    enabled: { type: "boolean", description: "Serve EST on this mount. Default false." },
    default_mount: {
      type: "boolean",
      description: "Serve this mount at /.well-known/est/. At most one mount may set it.",
    },
    default_path_policy: shortString(
      "Role for requests without a label, as role:<name>. Empty disables unlabelled requests.",
    ),
    label_to_path_policy: {
      type: "object",
      maxProperties: 256,
      additionalProperties: { type: "string", maxLength: 256 },
      description: "Role of each label, as role:<name>. Replaces the whole map when sent.",
    },
    allow_insecure_http: {
      type: "boolean",
      description:
        "Serve EST over plain HTTP, where secrets cross in clear text. Default false; dev servers allow it anyway.",
    },
  },
} as const;

const deviceParams = {
  type: "object",
  required: ["device_id"],
  properties: {
    device_id: {
      type: "string",
      minLength: 1,
      maxLength: 128,
      description: "Device id: the HTTP Basic user name.",
    },
  },
} as const;

const secretBody = {
  type: "object",
  additionalProperties: false,
  properties: {
    ttl: duration("How long the secret stays valid. Default 72h."),
    label: {
      type: "string",
      maxLength: 64,
      description:
        "Bind the secret to this configured EST label, so it enrols only at /.well-known/est/<label>/. Empty or absent: any path.",
    },
  },
} as const;

/** Checks that `label` is one of the mount's configured EST labels. */
async function requireConfiguredLabel(est: EstService, label: string): Promise<void> {
  validateLabel(label, "label");
  const config = await est.config.read();
  if (!Object.hasOwn(config.label_to_path_policy, label)) {
    throw new KeywardError(
      "invalid_field",
      `EST label "${label}" is not configured; add it to label_to_path_policy in config/est first`,
      { field: "label" },
    );
  }
}

/** Enrolment secret metadata as the API returns it; never the secret or its hash. */
function secretData(record: EnrollmentSecretRecord) {
  return {
    device_id: record.deviceId,
    created_time: record.createdAt,
    expiration_time: record.expiresAt,
    ...(record.label !== undefined ? { label: record.label } : {}),
    used: record.usedAt !== undefined,
    ...(record.usedAt !== undefined ? { used_time: record.usedAt } : {}),
    ...(record.issuedSerial !== undefined ? { issued_serial_number: record.issuedSerial } : {}),
  };
}

/**
 * Registers the EST management routes, which need a token like every other
 * API path: the mount's `config/est` and the per-device enrolment secrets
 * under `est/enrollment-secrets/`.
 */
export function registerEstConfigRoutes(
  app: FastifyInstance,
  estFor: EstServiceResolver,
  otherDefaultMount: OtherDefaultMount,
) {
  app.get("/config/est", {
    schema: { tags: TAGS, summary: "Read the EST configuration." },
    handler: async (request, reply) =>
      sendData(request, reply, await estFor(request).config.read()),
  });

  app.route<{ Body: EstConfigInput }>({
    method: WRITE_METHODS,
    url: "/config/est",
    schema: {
      tags: TAGS,
      summary: "Set the EST configuration; fields not sent keep their value.",
      body: configBody,
    },
    handler: async (request, reply) => {
      const est = estFor(request);
      if (request.body.default_mount === true) {
        const other = await otherDefaultMount(est.mount);
        if (other !== undefined) {
          throw new KeywardError(
            "invalid_field",
            `mount "${other}" is already EST's default mount; set default_mount false there first`,
            { field: "default_mount" },
          );
        }
      }
      const config: EstConfig = await est.config.write(request.body);
      return sendData(request, reply, config);
    },
  });

  app.get("/est/enrollment-secrets", {
    schema: {
      tags: TAGS,
      summary: "List the device ids that have enrolment secrets (GET with list=true).",
      querystring: listQuery,
    },
    handler: async (request, reply) => {
      requireList(request);
      const keys = await estFor(request).secrets.list();
      if (keys.length === 0) throw new KeywardError("not_found", "no enrolment secrets found");
      return sendData(request, reply, { keys });
    },
  });

  app.route<{ Params: { device_id: string }; Body: { ttl?: number | string; label?: string } }>({
    method: WRITE_METHODS,
    url: "/est/enrollment-secrets/:device_id",
    schema: {
      tags: TAGS,
      summary: "Create a single-use enrolment secret for a device, replacing any earlier one.",
      description: "The secret is returned once; only its SHA-256 hash is stored.",
      params: deviceParams,
      body: secretBody,
    },
    handler: async (request, reply) => {
      const ttl =
        request.body.ttl === undefined
          ? DEFAULT_SECRET_TTL_SECONDS
          : parseDuration(request.body.ttl, "ttl");
      const est = estFor(request);
      const label = request.body.label || undefined;
      if (label !== undefined) await requireConfiguredLabel(est, label);
      const { record, secret } = await est.secrets.create(request.params.device_id, ttl, label);
      return sendData(request, reply, { ...secretData(record), secret });
    },
  });

  app.get<{ Params: { device_id: string } }>("/est/enrollment-secrets/:device_id", {
    schema: {
      tags: TAGS,
      summary: "Read an enrolment secret's metadata (never the secret).",
      params: deviceParams,
    },
    handler: async (request, reply) => {
      const record = await estFor(request).secrets.read(request.params.device_id);
      if (!record) {
        throw new KeywardError(
          "not_found",
          `no enrolment secret for device "${request.params.device_id}"`,
        );
      }
      return sendData(request, reply, secretData(record));
    },
  });

  app.delete<{ Params: { device_id: string } }>("/est/enrollment-secrets/:device_id", {
    schema: { tags: TAGS, summary: "Delete a device's enrolment secret.", params: deviceParams },
    handler: async (request, reply) => {
      await estFor(request).secrets.delete(request.params.device_id);
      return reply.code(204).send();
    },
  });
}
