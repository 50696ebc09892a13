import type { FastifyInstance, FastifyRequest } from "fastify";
import {
  type AuthenticatedDevice,
  authenticateDeviceRequest,
} from "../../devices/authentication.ts";
import type { EnrolmentRequest, RenewalRequest } from "../../devices/enrolment.ts";
import type { DeviceService } from "../../devices/service.ts";
import { KeywardError } from "../../errors.ts";
import { sendData, WRITE_METHODS } from "./auth-shared.ts";
import { appliedBody, enrolBody, renewBody, stateQuery, TAGS } from "./devices-wire.ts";

const PUBLIC = { public: true };

const MUTUAL_TLS =
  "Mutual TLS with the device's identity certificate; no token. Without a valid certificate the response is 401 `device_authentication_failed`.";

/**
 * Registers enrolment and the device API. Every route is public, because
 * devices send no token. Enrolment proves itself with a bootstrap token.
 * The other routes authenticate the device by its TLS client certificate
 * before schema validation, so a caller that is no device learns nothing
 * about their fields from a 400.
 */
export async function registerDeviceSelfRoutes(app: FastifyInstance, devices: () => DeviceService) {
  const authenticated = new WeakMap<FastifyRequest, AuthenticatedDevice>();
  const authenticate = async (request: FastifyRequest) => {
    authenticated.set(request, await authenticateDeviceRequest(request));
  };
  const deviceOf = (request: FastifyRequest): AuthenticatedDevice => {
    const device = authenticated.get(request);
    if (!device) {
      throw new KeywardError("internal", "internal error", {
        details: { reason: "device route ran without an authenticated device" },
      });
    }
    return device;
  };

  app.route<{ Body: EnrolmentRequest }>({
    method: WRITE_METHODS,
    url: "/v1/devices/enroll",
    config: PUBLIC,
    schema: {
      tags: TAGS,
      summary: "Enrol a device with a bootstrap token and receive its identity certificate.",
      description:
        "No token. Failed token checks count against a limit per source address (10 per minute); beyond it the response is 429 `rate_limited`. Enrolling again keeps the device's id and revokes its earlier identity certificates.",
      body: enrolBody,
    },
    handler: async (request, reply) =>
      sendData(request, reply, await devices().enrolment.enrol(request.body, request.ip)),
  });

  app.route<{ Body: RenewalRequest }>({
    method: WRITE_METHODS,
    url: "/v1/devices/self/renew",
    config: PUBLIC,
    preValidation: authenticate,
    schema: {
      tags: TAGS,
      summary: "Renew the device's identity certificate, optionally with a new encryption key.",
      description: `${MUTUAL_TLS} The current certificate stays valid until it expires.`,
      body: renewBody,
    },
    handler: async (request, reply) =>
      sendData(
        request,
        reply,
        await devices().enrolment.renew(deviceOf(request).ref, request.body),
      ),
  });

  app.get<{ Querystring: { since?: string; wait: number } }>("/v1/devices/self/state", {
    config: PUBLIC,
    preValidation: authenticate,
    schema: {
      tags: TAGS,
      summary: "Read the artifacts the device must hold, waiting for a change when asked.",
      description: `${MUTUAL_TLS} With \`since\` equal to the current etag, the response is 304 with no body after \`wait\` seconds, or 200 as soon as the state changes.`,
      querystring: stateQuery,
    },
    handler: async (request, reply) => {
      // A client that disconnects ends its wait. The response's "close" event
      // marks that, because the request's own "close" fires once its body is read.
      const disconnected = new AbortController();
      const onClose = () => disconnected.abort();
      reply.raw.once("close", onClose);
      try {
        const state = await devices().state(
          deviceOf(request),
          request.query.since,
          request.query.wait,
          disconnected.signal,
        );
        if (state === undefined) return reply.code(304).send();
        return sendData(request, reply, state);
      } finally {
        reply.raw.off("close", onClose);
      }
    },
  });

  app.route<{ Body: { artifacts: { id: string; version: number }[] } }>({
    method: WRITE_METHODS,
    url: "/v1/devices/self/applied",
    config: PUBLIC,
    preValidation: authenticate,
    schema: {
      tags: TAGS,
      summary: "Report the artifact versions the agent installed.",
      description: `${MUTUAL_TLS} A version above the one the server offers is 400 \`invalid_field\`.`,
      body: appliedBody,
    },
    handler: async (request, reply) => {
      await devices().recordApplied(deviceOf(request), request.body.artifacts);
      return reply.code(204).send();
    },
  });
}
