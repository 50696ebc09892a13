import type { FastifyInstance, FastifyRequest } from "fastify";
import { parseDuration } from "../../auth/duration.ts";
import type { Keyward } from "../../core/keyward.ts";
import { DEFAULT_BOOTSTRAP_TTL_SECONDS } from "../../devices/bootstrap-tokens.ts";
import type { DeviceInput, DevicesConfigInput } from "../../devices/registry.ts";
import type { SharedSecretInput } from "../../devices/secrets.ts";
import { secretMetadata } from "../../devices/secrets.ts";
import type { DeviceService } from "../../devices/service.ts";
import { configView, deviceView } from "../../devices/views.ts";
import { notFound } from "../../errors.ts";
import type { Operation } from "../../policy/index.ts";
import { rejectWrongJsonTypes } from "../../util/json-types.ts";
import { registerListRoute, sendData, WRITE_METHODS } from "./auth-shared.ts";
import { registerDeviceSelfRoutes } from "./devices-self.ts";
import { configBody, deviceBody, nameParams, secretBody, TAGS, tokenBody } from "./devices-wire.ts";

type NameRequest<Body = unknown> = { Params: { name: string }; Body: Body };

/** Returns `create` when `exists` resolves false, else `update`, for the policy check. */
function createOrUpdate(exists: (request: FastifyRequest) => Promise<boolean>) {
  return async (request: FastifyRequest): Promise<Operation> =>
    (await exists(request).catch(() => true)) ? "update" : "create";
}

/**
 * Registers the device registry under `/v1/devices/`: the admin API (token
 * and policy, like every other route) and the device API (public routes
 * that authenticate the device by its TLS client certificate). It also
 * sets `app.deviceService`, which `authenticateDevice` reads, so it must
 * be registered before any other device API route is called.
 */
export async function registerDeviceRoutes(app: FastifyInstance, keyward: Keyward) {
  const devices = (): DeviceService => keyward.devices;
  app.decorate("deviceService", devices);
  const prefix = "/v1/devices";
  // Every device route, here and in the files registered after this one,
  // rejects JSON values that the app's type coercion would otherwise change.
  app.addHook("onRoute", (route) => {
    if (!route.url.startsWith(`${prefix}/`)) return;
    const existing = route.preValidation;
    route.preValidation = [
      ...(existing === undefined ? [] : Array.isArray(existing) ? existing : [existing]),
      rejectWrongJsonTypes,
    ];
  });
  const nameOf = (request: FastifyRequest) => (request.params as { name: string }).name;

  app.get(`${prefix}/config`, {
    schema: { tags: TAGS, summary: "Read the device registry's settings." },
    handler: async (request, reply) => {
      const config = await devices().registry.readConfig();
      if (!config) throw notFound("device registry configuration");
      return sendData(request, reply, configView(config));
    },
  });

  app.route<{ Body: DevicesConfigInput }>({
    method: WRITE_METHODS,
    url: `${prefix}/config`,
    config: {
      operation: createOrUpdate(async () => (await devices().registry.readConfig()) !== undefined),
    },
    schema: {
      tags: TAGS,
      summary: "Set the PKI mount and role that sign identity certificates.",
      body: configBody,
    },
    handler: async (request, reply) =>
      sendData(request, reply, configView(await devices().registry.writeConfig(request.body))),
  });

  registerListRoute(app, `${prefix}/registry`, TAGS, "List devices.", () =>
    devices().registry.list(),
  );

  app.route<NameRequest<DeviceInput>>({
    method: WRITE_METHODS,
    url: `${prefix}/registry/:name`,
    config: {
      operation: createOrUpdate(
        async (request) => (await devices().registry.read(nameOf(request))) !== undefined,
      ),
    },
    schema: {
      tags: TAGS,
      summary: "Register a device or update its tags and groups.",
      params: nameParams,
      body: deviceBody,
    },
    handler: async (request, reply) => {
      const device = await devices().registry.write(request.params.name, request.body);
      return sendData(request, reply, deviceView(device));
    },
  });

  app.get<NameRequest>(`${prefix}/registry/:name`, {
    schema: { tags: TAGS, summary: "Read a device.", params: nameParams },
    handler: async (request, reply) =>
      sendData(request, reply, deviceView(await devices().registry.require(request.params.name))),
  });

  app.delete<NameRequest>(`${prefix}/registry/:name`, {
    schema: {
      tags: TAGS,
      summary: "Delete a device, revoking it first when it is enrolled.",
      params: nameParams,
    },
    handler: async (request, reply) => {
      await devices().registry.delete(request.params.name);
      return reply.code(204).send();
    },
  });

  app.route<NameRequest<{ ttl?: number | string; num_uses?: number }>>({
    method: WRITE_METHODS,
    url: `${prefix}/registry/:name/bootstrap-token`,
    schema: {
      tags: TAGS,
      summary: "Create a bootstrap token with which the device enrols.",
      description: "The token is in this response only; the server stores its SHA-256.",
      params: nameParams,
      body: tokenBody,
    },
    handler: async (request, reply) => {
      const ttlSeconds =
        request.body.ttl === undefined
          ? DEFAULT_BOOTSTRAP_TTL_SECONDS
          : parseDuration(request.body.ttl, "ttl");
      const { token, record } = await devices().registry.createBootstrapToken(
        request.params.name,
        ttlSeconds,
        request.body.num_uses ?? 1,
      );
      return sendData(request, reply, {
        bootstrap_token: token,
        expiration: record.expiresAt,
        num_uses: record.numUses,
      });
    },
  });

  app.route<NameRequest>({
    method: WRITE_METHODS,
    url: `${prefix}/registry/:name/revoke`,
    schema: {
      tags: TAGS,
      summary: "Revoke a device and every identity certificate it holds.",
      description:
        "Shared secrets the device received are rotated, and engines such as WireGuard remove it. Revoking again retries every step.",
      params: nameParams,
      body: { type: "object", additionalProperties: false, properties: {} },
    },
    handler: async (request, reply) =>
      sendData(request, reply, deviceView(await devices().registry.revoke(request.params.name))),
  });

  app.get<NameRequest>(`${prefix}/registry/:name/status`, {
    schema: {
      tags: TAGS,
      summary: "Read a device's artifacts and the versions its agent applied.",
      params: nameParams,
    },
    handler: async (request, reply) =>
      sendData(request, reply, await devices().status(request.params.name)),
  });

  app.get(`${prefix}/rollout`, {
    schema: {
      tags: TAGS,
      summary: "Read which enrolled devices applied the current version of each artifact.",
    },
    handler: async (request, reply) => sendData(request, reply, await devices().rollout()),
  });

  registerSecretRoutes(app, devices, nameOf);
  await registerDeviceSelfRoutes(app, devices);
}

function registerSecretRoutes(
  app: FastifyInstance,
  devices: () => DeviceService,
  nameOf: (request: FastifyRequest) => string,
) {
  const prefix = "/v1/devices/secrets";

  registerListRoute(app, prefix, TAGS, "List shared secrets.", () => devices().secrets.list());

  app.route<NameRequest<SharedSecretInput>>({
    method: WRITE_METHODS,
    url: `${prefix}/:name`,
    config: {
      operation: createOrUpdate(
        async (request) => (await devices().secrets.read(nameOf(request))) !== undefined,
      ),
    },
    schema: {
      tags: TAGS,
      summary: "Create a shared secret or update its audience.",
      description:
        "A new secret gets version 1 and a random value. Devices that leave the audience keep the value they had; rotate the secret when they must lose it.",
      params: nameParams,
      body: secretBody,
    },
    handler: async (request, reply) =>
      sendData(
        request,
        reply,
        secretMetadata(await devices().secrets.write(request.params.name, request.body)),
      ),
  });

  app.route<NameRequest>({
    method: WRITE_METHODS,
    url: `${prefix}/:name/rotate`,
    schema: {
      tags: TAGS,
      summary: "Draw a new value for a shared secret and raise its version.",
      params: nameParams,
      body: { type: "object", additionalProperties: false, properties: {} },
    },
    handler: async (request, reply) =>
      sendData(request, reply, secretMetadata(await devices().secrets.rotate(request.params.name))),
  });

  app.get<NameRequest>(`${prefix}/:name`, {
    schema: {
      tags: TAGS,
      summary: "Read a shared secret's metadata. The value is never returned.",
      params: nameParams,
    },
    handler: async (request, reply) => {
      const record = await devices().secrets.read(request.params.name);
      if (!record) throw notFound(`shared secret "${request.params.name}"`);
      return sendData(request, reply, secretMetadata(record));
    },
  });

  app.delete<NameRequest>(`${prefix}/:name`, {
    schema: { tags: TAGS, summary: "Delete a shared secret.", params: nameParams },
    handler: async (request, reply) => {
      await devices().secrets.delete(request.params.name);
      return reply.code(204).send();
    },
  });
}
