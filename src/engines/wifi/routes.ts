import type { FastifyInstance, FastifyRequest } from "fastify";
import { requireList, sendData } from "../../api/envelope.ts";
import { KeywardError } from "../../errors.ts";
import { rejectWrongJsonTypes } from "../../util/json-types.ts";
import { defaultEmptyBody, toWire } from "../wireguard/routes/shared.ts";
import type { CaChainLoader } from "./enterprise.ts";
import type { WifiService } from "./service.ts";

/** Returns the Wi-Fi service that serves a request. Throws a `KeywardError` such as `sealed` when there is none. */
export type WifiServiceResolver = (request: FastifyRequest) => WifiService;

const TAGS = ["wifi"];
const WRITE_METHODS: ["POST", "PUT"] = ["POST", "PUT"];
const NAME = { type: "string", minLength: 1, maxLength: 64 } as const;
const networkParams = {
  type: "object",
  required: ["network"],
  properties: { network: NAME },
} as const;
const keyParams = {
  type: "object",
  required: ["network", "key"],
  properties: { network: NAME, key: NAME },
} as const;
const listQuery = {
  type: "object",
  properties: { list: { type: "string", maxLength: 8 } },
} as const;
const onboardingQuery = {
  type: "object",
  additionalProperties: false,
  properties: { format: { type: "string", enum: ["json", "png"] } },
} as const;
const names = {
  anyOf: [
    { type: "array", items: { type: "string", maxLength: 64 }, maxItems: 64 },
    { type: "string", maxLength: 4096 },
  ],
} as const;

const networkBody = {
  type: "object",
  additionalProperties: false,
  properties: {
    ssid: { type: "string", maxLength: 128, description: "SSID as UTF-8 text, 1-32 bytes." },
    ssid_hex: { type: "string", maxLength: 64, description: "SSID bytes as hex, 1-32 bytes." },
    security: { type: "string", maxLength: 32 },
    hidden: { type: "boolean" },
    vlans: { type: "array", items: { type: "integer" }, maxItems: 64 },
    passphrase: { type: "string", maxLength: 128 },
    generate_passphrase: { type: "boolean" },
    passphrase_policy: { type: "object" },
    rotation_period: { type: ["integer", "string"], minimum: 0, maxLength: 64 },
    grace_window: { type: ["integer", "string"], minimum: 0, maxLength: 64 },
    access_point_devices: names,
    access_point_groups: names,
    pki_mount: { type: ["string", "null"], maxLength: 128 },
    pki_issuer: { type: ["string", "null"], maxLength: 128 },
  },
} as const;

const PATH = { type: "string", minLength: 1, maxLength: 1024 } as const;
const freeradiusQuery = {
  type: "object",
  additionalProperties: false,
  required: ["certificate_file", "private_key_file", "ca_file"],
  properties: {
    certificate_file: PATH,
    private_key_file: PATH,
    ca_file: PATH,
    ca_path: PATH,
    check_crl: { type: "string", enum: ["true", "false"] },
    ca_path_reload_interval: { type: "integer", minimum: 1, maximum: 86400 },
  },
} as const;

interface FreeradiusQuery {
  certificate_file: string;
  private_key_file: string;
  ca_file: string;
  ca_path?: string;
  check_crl?: "true" | "false";
  ca_path_reload_interval?: number;
}

/** Body of the rotate routes, which take no fields: an empty object, or no body. */
const rotateBody = {
  type: "object",
  additionalProperties: false,
  properties: {},
} as const;

const keyBody = {
  type: "object",
  additionalProperties: false,
  properties: {
    mac: { type: "string", maxLength: 64 },
    key_id: { type: "string", maxLength: 64 },
    vlan: { type: ["integer", "null"] },
    sae_password_id: { type: ["string", "null"], maxLength: 64 },
    device_id: { type: ["string", "null"], maxLength: 128 },
  },
} as const;

interface NetworkParams {
  network: string;
}
interface KeyParams extends NetworkParams {
  key: string;
}

/**
 * Registers the Wi-Fi engine's routes relative to the mount's prefix. Reads
 * never return a passphrase, except the `onboarding` routes. `loadChain`
 * reads the CA chain of an enterprise network's PKI mount.
 */
export async function registerWifiRoutes(
  app: FastifyInstance,
  serviceFor: WifiServiceResolver,
  loadChain: CaChainLoader,
) {
  app.addHook("preValidation", rejectWrongJsonTypes);

  app.get(
    "/networks",
    { schema: { tags: TAGS, querystring: listQuery } },
    async (request, reply) => {
      requireList(request);
      const keys = await serviceFor(request).listNetworks();
      if (keys.length === 0) throw new KeywardError("not_found", "no Wi-Fi networks found");
      return sendData(request, reply, { keys });
    },
  );

  app.route<{ Params: NetworkParams; Body: Record<string, unknown> }>({
    method: WRITE_METHODS,
    url: "/networks/:network",
    schema: {
      tags: TAGS,
      summary: "Create or update a Wi-Fi network.",
      params: networkParams,
      body: networkBody,
    },
    preValidation: defaultEmptyBody,
    handler: async (request, reply) => {
      const body = request.body ?? {};
      const view = await serviceFor(request).writeNetwork(request.params.network, {
        ssid: body.ssid,
        ssidHex: body.ssid_hex,
        security: body.security,
        hidden: body.hidden,
        vlans: body.vlans,
        passphrase: body.passphrase,
        generatePassphrase: body.generate_passphrase,
        passphrasePolicy: body.passphrase_policy,
        rotationPeriod: body.rotation_period,
        graceWindow: body.grace_window,
        accessPointDevices: body.access_point_devices,
        accessPointGroups: body.access_point_groups,
        pkiMount: body.pki_mount,
        pkiIssuer: body.pki_issuer,
      });
      return sendData(request, reply, wire(view));
    },
  });

  app.get<{ Params: NetworkParams }>(
    "/networks/:network",
    { schema: { tags: TAGS, params: networkParams } },
    async (request, reply) =>
      sendData(request, reply, wire(await serviceFor(request).readNetwork(request.params.network))),
  );

  app.delete<{ Params: NetworkParams }>(
    "/networks/:network",
    { schema: { tags: TAGS, params: networkParams } },
    async (request, reply) => {
      await serviceFor(request).deleteNetwork(request.params.network);
      return reply.code(204).send();
    },
  );

  app.route<{ Params: NetworkParams }>({
    method: WRITE_METHODS,
    url: "/networks/:network/rotate",
    schema: {
      tags: TAGS,
      summary: "Replace the shared passphrase.",
      params: networkParams,
      body: rotateBody,
    },
    preValidation: defaultEmptyBody,
    handler: async (request, reply) => {
      const view = await serviceFor(request).rotateNetworkPassphrase(request.params.network);
      return sendData(request, reply, wire(view));
    },
  });

  app.get<{ Params: NetworkParams; Querystring: { format?: string } }>(
    "/networks/:network/onboarding",
    { schema: { tags: TAGS, params: networkParams, querystring: onboardingQuery } },
    async (request, reply) => {
      const onboarding = await serviceFor(request).onboarding(request.params.network, undefined);
      return sendOnboarding(request, reply, onboarding, request.query.format);
    },
  );

  app.get<{ Params: NetworkParams; Querystring: FreeradiusQuery }>(
    "/networks/:network/freeradius",
    {
      schema: {
        tags: TAGS,
        summary: "Render the FreeRADIUS EAP-TLS module of an enterprise network.",
        params: networkParams,
        querystring: freeradiusQuery,
      },
    },
    async (request, reply) => {
      const query = request.query;
      const text = await serviceFor(request).renderFreeradius(
        request.params.network,
        {
          certificateFile: query.certificate_file,
          privateKeyFile: query.private_key_file,
          caFile: query.ca_file,
          caPath: query.ca_path,
          checkCrl: query.check_crl === undefined ? undefined : query.check_crl === "true",
          caPathReloadInterval: query.ca_path_reload_interval,
        },
        loadChain,
      );
      return reply.type("text/plain; charset=utf-8").send(text);
    },
  );

  app.get<{ Params: NetworkParams }>(
    "/networks/:network/keys",
    { schema: { tags: TAGS, params: networkParams, querystring: listQuery } },
    async (request, reply) => {
      requireList(request);
      const keys = await serviceFor(request).listKeys(request.params.network);
      if (keys.length === 0) throw new KeywardError("not_found", "no keys found");
      return sendData(request, reply, { keys });
    },
  );

  app.route<{ Params: KeyParams; Body: Record<string, unknown> }>({
    method: WRITE_METHODS,
    url: "/networks/:network/keys/:key",
    schema: {
      tags: TAGS,
      summary: "Create or update a per-device key.",
      params: keyParams,
      body: keyBody,
    },
    preValidation: defaultEmptyBody,
    handler: async (request, reply) => {
      const body = request.body ?? {};
      const view = await serviceFor(request).writeKey(request.params.network, request.params.key, {
        mac: body.mac,
        keyId: body.key_id,
        vlan: body.vlan,
        saePasswordId: body.sae_password_id,
        deviceId: body.device_id,
      });
      return sendData(request, reply, wire(view));
    },
  });

  app.get<{ Params: KeyParams }>(
    "/networks/:network/keys/:key",
    { schema: { tags: TAGS, params: keyParams } },
    async (request, reply) => {
      const { network, key } = request.params;
      return sendData(request, reply, wire(await serviceFor(request).readKey(network, key)));
    },
  );

  app.delete<{ Params: KeyParams }>(
    "/networks/:network/keys/:key",
    { schema: { tags: TAGS, params: keyParams } },
    async (request, reply) => {
      await serviceFor(request).deleteKey(request.params.network, request.params.key);
      return reply.code(204).send();
    },
  );

  app.route<{ Params: KeyParams }>({
    method: WRITE_METHODS,
    url: "/networks/:network/keys/:key/rotate",
    schema: {
      tags: TAGS,
      summary: "Give a key a new passphrase.",
      params: keyParams,
      body: rotateBody,
    },
    preValidation: defaultEmptyBody,
    handler: async (request, reply) => {
      const { network, key } = request.params;
      return sendData(request, reply, wire(await serviceFor(request).rotateKey(network, key)));
    },
  });

  app.get<{ Params: KeyParams; Querystring: { format?: string } }>(
    "/networks/:network/keys/:key/onboarding",
    { schema: { tags: TAGS, params: keyParams, querystring: onboardingQuery } },
    async (request, reply) => {
      const { network, key } = request.params;
      const onboarding = await serviceFor(request).onboarding(network, key);
      return sendOnboarding(request, reply, onboarding, request.query.format);
    },
  );
}

/** Renames a view's fields to snake_case, nested objects included. */
function wire(view: object): Record<string, unknown> {
  const result = toWire(view);
  for (const [name, value] of Object.entries(result)) {
    if (value !== null && typeof value === "object" && !Array.isArray(value)) {
      result[name] = toWire(value);
    }
  }
  return result;
}

function sendOnboarding(
  request: FastifyRequest,
  reply: import("fastify").FastifyReply,
  onboarding: Awaited<ReturnType<WifiService["onboarding"]>>,
  format: string | undefined,
) {
  reply.header("cache-control", "no-store");
  if (format === "png") return reply.type("image/png").send(onboarding.qrCodePng);
  return sendData(request, reply, {
    ssid: onboarding.ssid,
    passphrase: onboarding.passphrase,
    wifi_uri: onboarding.wifiUri,
    qr_code_png: onboarding.qrCodePng.toString("base64"),
  });
}
