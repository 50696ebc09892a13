import type { FastifyInstance } from "fastify";
import { KeywardError } from "../../../errors.ts";
import type { PeerWriteResult } from "../types.ts";
import { CONFIG_FORMATS, type ConfigFormat } from "../types.ts";
import {
  defaultEmptyBody,
  listQuery,
  type NetworkParams,
  networkParams,
  type PeerParams,
  peerParams,
  requireList,
  sendData,
  sendNoContent,
  stringList,
  TAGS,
  toWire,
  type WireguardServiceResolver,
  WRITE_METHODS,
} from "./shared.ts";

interface PeerBody {
  public_key?: string;
  generate_key?: boolean;
  device_id?: string;
  endpoint?: string;
  allowed_ips?: string[] | string;
  addresses?: string[] | string;
  listen_port?: number;
}

/** Key text is checked by the service, which names the exact problem; the schema only bounds it. */
const publicKey = {
  type: "string",
  maxLength: 256,
  description:
    "The peer's X25519 public key as `wg pubkey` prints it (44 characters of base64), made by its endpoint.",
} as const;

const generateKey = {
  type: "boolean",
  description:
    "Generate the key pair on the server, for a peer without an agent. The private key is in this response only.",
} as const;

const peerBody = {
  type: "object",
  additionalProperties: false,
  properties: {
    public_key: publicKey,
    generate_key: generateKey,
    device_id: {
      type: "string",
      maxLength: 256,
      description: "The device whose agent maintains this peer.",
    },
    endpoint: {
      type: "string",
      maxLength: 300,
      description: 'Where other peers reach this one, as host:port, such as "203.0.113.7:51820".',
    },
    allowed_ips: stringList(
      "Extra CIDR blocks routed to this peer besides its tunnel addresses, outside the network's ranges.",
    ),
    addresses: stringList(
      "Tunnel addresses, one per range of the network; default: the lowest free ones. Fixed after creation.",
    ),
    listen_port: {
      type: "integer",
      description: "This peer's listen port, when it differs from the network's; 0 removes it.",
    },
  },
} as const;

const rotateBody = {
  type: "object",
  additionalProperties: false,
  properties: { public_key: publicKey, generate_key: generateKey },
} as const;

const configQuery = {
  type: "object",
  additionalProperties: false,
  properties: {
    format: {
      type: "string",
      maxLength: 16,
      description: "wg-quick (default), or wg for the subset `wg setconf` reads.",
    },
  },
} as const;

function resultToWire(result: PeerWriteResult): Record<string, unknown> {
  const wire = toWire(result.peer);
  if (result.privateKey !== undefined) wire.private_key = result.privateKey;
  return wire;
}

/** Peer management, key rotation and rendered configurations. */
export async function registerPeerRoutes(
  app: FastifyInstance,
  serviceFor: WireguardServiceResolver,
) {
  app.route<{ Params: NetworkParams }>({
    method: "GET",
    url: "/networks/:network/peers",
    schema: {
      tags: TAGS,
      summary: "List a network's peers (GET with list=true).",
      description: "Returns peer names in ascending order; 404 when there are none, as in Vault.",
      params: networkParams,
      querystring: listQuery,
    },
    handler: async (request, reply) => {
      requireList(request);
      const keys = await serviceFor(request).listPeers(request.params.network);
      if (keys.length === 0) throw new KeywardError("not_found", "no peers found");
      return sendData(request, reply, { keys });
    },
  });

  app.route<{ Params: PeerParams; Body: PeerBody }>({
    method: WRITE_METHODS,
    url: "/networks/:network/peers/:peer",
    schema: {
      tags: TAGS,
      summary: "Create or update a peer.",
      description:
        "Creates the peer with its endpoint's public key, a server-generated key (`generate_key`) or none yet, and allocates its addresses. On an existing peer, updates endpoint, routes, device and listen port; keys change only through rotate.",
      params: peerParams,
      body: peerBody,
    },
    preValidation: defaultEmptyBody,
    handler: async (request, reply) => {
      const body = request.body ?? {};
      const result = await serviceFor(request).writePeer(
        request.params.network,
        request.params.peer,
        {
          publicKey: body.public_key,
          generateKey: body.generate_key,
          deviceId: body.device_id,
          endpoint: body.endpoint,
          allowedIps: body.allowed_ips,
          addresses: body.addresses,
          listenPort: body.listen_port,
        },
      );
      return sendData(request, reply, resultToWire(result));
    },
  });

  app.route<{ Params: PeerParams }>({
    method: "GET",
    url: "/networks/:network/peers/:peer",
    schema: {
      tags: TAGS,
      summary: "Read a peer and its status.",
      description:
        "Returns the peer's public key, addresses, configuration version and whether its key is due for rotation. No secret is returned.",
      params: peerParams,
    },
    handler: async (request, reply) => {
      const peer = await serviceFor(request).readPeer(request.params.network, request.params.peer);
      return sendData(request, reply, toWire(peer));
    },
  });

  app.route<{ Params: PeerParams }>({
    method: "DELETE",
    url: "/networks/:network/peers/:peer",
    schema: {
      tags: TAGS,
      summary: "Delete a peer.",
      description: "The peer disappears from every configuration and its addresses become free.",
      params: peerParams,
    },
    handler: async (request, reply) => {
      await serviceFor(request).deletePeer(request.params.network, request.params.peer);
      return sendNoContent(reply);
    },
  });

  app.route<{ Params: PeerParams; Body: { public_key?: string; generate_key?: boolean } }>({
    method: WRITE_METHODS,
    url: "/networks/:network/peers/:peer/rotate",
    schema: {
      tags: TAGS,
      summary: "Rotate a peer's key.",
      description:
        "Registers the endpoint's new public key, or generates a pair for a server-keyed peer (the private key is in this response only). Every preshared key of the peer changes with it. In a network with a rotation notice, a peer that has a key gets the new one staged: next_key shows it until next_key_activate_at.",
      params: peerParams,
      body: rotateBody,
    },
    preValidation: defaultEmptyBody,
    handler: async (request, reply) => {
      const body = request.body ?? {};
      const result = await serviceFor(request).rotatePeer(
        request.params.network,
        request.params.peer,
        {
          publicKey: body.public_key,
          generateKey: body.generate_key,
        },
      );
      return sendData(request, reply, resultToWire(result));
    },
  });

  app.route<{ Params: PeerParams }>({
    method: WRITE_METHODS,
    url: "/networks/:network/peers/:peer/request-rotation",
    schema: {
      tags: TAGS,
      summary: "Ask a peer's agent for a new key.",
      description:
        "Sets rotation_requested: the agent of the peer's device sees rotate_key and registers a new key, which clears it. Rejected with invalid_state for a peer without device_id or with a server-made key.",
      params: peerParams,
      body: { type: "object", additionalProperties: false, properties: {} },
    },
    preValidation: defaultEmptyBody,
    handler: async (request, reply) => {
      const peer = await serviceFor(request).requestRotation(
        request.params.network,
        request.params.peer,
      );
      return sendData(request, reply, toWire(peer));
    },
  });

  app.route<{ Params: PeerParams; Querystring: { format?: string } }>({
    method: "GET",
    url: "/networks/:network/peers/:peer/config",
    schema: {
      tags: TAGS,
      summary: "Render a peer's configuration.",
      description:
        "Returns the peer's configuration in `config_text` with its version. Its PrivateKey line is a placeholder the endpoint fills with its own key. The text contains preshared keys.",
      params: peerParams,
      querystring: configQuery,
    },
    handler: async (request, reply) => {
      const format = request.query.format ?? "wg-quick";
      if (!CONFIG_FORMATS.includes(format as ConfigFormat)) {
        throw new KeywardError(
          "invalid_field",
          `"format" must be one of ${CONFIG_FORMATS.join(", ")}`,
          {
            field: "format",
          },
        );
      }
      const rendered = await serviceFor(request).renderConfig(
        request.params.network,
        request.params.peer,
        format as ConfigFormat,
      );
      return sendData(request, reply, {
        network: rendered.network,
        peer: rendered.peer,
        format: rendered.format,
        config_version: rendered.configVersion,
        addresses: rendered.addresses,
        config_text: rendered.config,
      });
    },
  });
}
