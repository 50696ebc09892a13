import type { FastifyInstance } from "fastify";
import { envelope } from "../../../api/envelope.ts";
import { parseDuration } from "../../../auth/duration.ts";
import { KeywardError } from "../../../errors.ts";
import { DEFAULT_ACME_ACCOUNT_SAFETY_BUFFER_SECONDS } from "../acme/tidy.ts";
import type { PkiService } from "../service.ts";
import { duration, type PkiServiceResolver, sendData, TAGS, WRITE_METHODS } from "./shared.ts";

/** Tidy on demand (`tidy`, `tidy-status`) and on the scheduler (`config/auto-tidy`). */
export function registerTidyRoutes(app: FastifyInstance, serviceFor: PkiServiceResolver) {
  const tidyProperties = {
    tidy_cert_store: {
      type: "boolean",
      description: "Remove expired certificates from the inventory.",
    },
    tidy_revoked_certs: {
      type: "boolean",
      description: "Remove expired revoked certificates from the CRL and inventory.",
    },
    safety_buffer: duration("Keep certificates until this long after they expire. Default 72h."),
    tidy_acme: {
      type: "boolean",
      description:
        "Remove ACME orders, authorizations and certificate records a safety buffer after they end, and old deactivated accounts.",
    },
    acme_account_safety_buffer: duration(
      "Keep deactivated or revoked ACME accounts this long. Default 720h.",
    ),
  } as const;

  app.route<{
    Body: {
      tidy_cert_store?: boolean;
      tidy_revoked_certs?: boolean;
      safety_buffer?: string | number;
      tidy_acme?: boolean;
      acme_account_safety_buffer?: string | number;
    };
  }>({
    method: WRITE_METHODS,
    url: "/tidy",
    schema: {
      tags: TAGS,
      summary: "Remove expired certificates and revocation entries now.",
      body: { type: "object", additionalProperties: false, properties: tidyProperties },
    },
    handler: async (request, reply) => {
      const body = request.body;
      const result = await serviceFor(request).revocation.tidy.tidy({
        tidyCertStore: body.tidy_cert_store ?? false,
        tidyRevokedCerts: body.tidy_revoked_certs ?? false,
        safetyBufferSeconds: parseDuration(body.safety_buffer ?? "72h", "safety_buffer"),
        tidyAcme: body.tidy_acme ?? false,
        acmeAccountSafetyBufferSeconds: optionalDuration(
          body.acme_account_safety_buffer,
          "acme_account_safety_buffer",
        ),
      });
      // Vault returns 202 because its tidy runs in the background. Keyward's tidy has finished here.
      return reply.code(202).send(
        envelope(tidyWire(result), {
          requestId: request.id,
          warnings: ["Tidy operation finished; see tidy-status."],
        }),
      );
    },
  });

  app.get("/tidy-status", {
    schema: { tags: TAGS, summary: "The result of the last tidy run." },
    handler: async (request, reply) => {
      const last = serviceFor(request).revocation.tidy.lastTidy;
      return sendData(request, reply, last ? tidyWire(last) : { state: "Inactive" });
    },
  });

  app.get("/config/auto-tidy", {
    schema: { tags: TAGS, summary: "Read the scheduled tidy settings." },
    handler: async (request, reply) =>
      sendData(request, reply, autoTidyWire(await serviceFor(request).config.tidy())),
  });

  app.route<{
    Body: {
      enabled?: boolean;
      interval_duration?: string | number;
      tidy_cert_store?: boolean;
      tidy_revoked_certs?: boolean;
      safety_buffer?: string | number;
      tidy_acme?: boolean;
      acme_account_safety_buffer?: string | number;
    };
  }>({
    method: WRITE_METHODS,
    url: "/config/auto-tidy",
    schema: {
      tags: TAGS,
      summary: "Set the scheduled tidy settings.",
      body: {
        type: "object",
        additionalProperties: false,
        properties: {
          ...tidyProperties,
          enabled: { type: "boolean", description: "Run tidy on a schedule." },
          interval_duration: duration("Time between runs. Default 12h."),
        },
      },
    },
    handler: async (request, reply) => {
      const body = request.body;
      const interval =
        body.interval_duration === undefined
          ? undefined
          : parseDuration(body.interval_duration, "interval_duration");
      if (interval === 0)
        throw new KeywardError("invalid_field", '"interval_duration" must be longer than 0', {
          field: "interval_duration",
        });
      const config = await serviceFor(request).config.setTidy({
        enabled: body.enabled,
        intervalSeconds: interval,
        tidyCertStore: body.tidy_cert_store,
        tidyRevokedCerts: body.tidy_revoked_certs,
        safetyBufferSeconds:
          body.safety_buffer === undefined
            ? undefined
            : parseDuration(body.safety_buffer, "safety_buffer"),
        tidyAcme: body.tidy_acme,
        acmeAccountSafetyBufferSeconds: optionalDuration(
          body.acme_account_safety_buffer,
          "acme_account_safety_buffer",
        ),
      });
      return sendData(request, reply, autoTidyWire(config));
    },
  });
}

function tidyWire(result: NonNullable<PkiService["revocation"]["tidy"]["lastTidy"]>) {
  return {
    state: result.state,
    time_started: result.timeStarted,
    time_finished: result.timeFinished,
    cert_store_deleted_count: result.certStoreDeletedCount,
    revoked_cert_deleted_count: result.revokedCertDeletedCount,
    ...(result.acme
      ? {
          acme_account_deleted_count: result.acme.accountsDeleted,
          acme_orders_deleted_count: result.acme.ordersDeleted,
          acme_authorizations_deleted_count: result.acme.authorizationsDeleted,
          acme_certificates_deleted_count: result.acme.certificatesDeleted,
        }
      : {}),
    ...(result.error ? { error: result.error } : {}),
  };
}

function autoTidyWire(config: Awaited<ReturnType<PkiService["config"]["tidy"]>>) {
  return {
    enabled: config.enabled,
    interval_duration: config.intervalSeconds,
    tidy_cert_store: config.tidyCertStore,
    tidy_revoked_certs: config.tidyRevokedCerts,
    safety_buffer: config.safetyBufferSeconds,
    tidy_acme: config.tidyAcme ?? false,
    acme_account_safety_buffer:
      config.acmeAccountSafetyBufferSeconds ?? DEFAULT_ACME_ACCOUNT_SAFETY_BUFFER_SECONDS,
  };
}

function optionalDuration(value: string | number | undefined, field: string): number | undefined {
  return value === undefined ? undefined : parseDuration(value, field);
}
