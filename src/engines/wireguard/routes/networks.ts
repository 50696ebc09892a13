import type { FastifyInstance } from "fastify";
import { KeywardError } from "../../../errors.ts";
import { TOPOLOGIES } from "../types.ts";
import {
  defaultEmptyBody,
  listQuery,
  type NetworkParams,
  networkParams,
  requireList,
  sendData,
  sendNoContent,
  stringList,
  TAGS,
  toWire,
  type WireguardServiceResolver,
  WRITE_METHODS,
} from "./shared.ts";

interface NetworkBody {
  address_ranges?: string[] | string;
  listen_port?: number;
  dns?: string[] | string;
  mtu?: number;
  persistent_keepalive?: number;
  topology?: string;
  hub?: string;
  rotation_period?: number | string;
  rotation_notice?: number | string;
}

const networkBody = {
  type: "object",
  additionalProperties: false,
  properties: {
    address_ranges: stringList(
      'One IPv4 and/or one IPv6 CIDR block, host bits zero, such as ["10.20.0.0/24", "fd00:20::/64"]. Required at creation; fixed while the network has peers.',
    ),
    listen_port: { type: "integer", description: "UDP listen port of every peer. Default 51820." },
    dns: stringList("DNS servers and search domains for wg-quick's DNS line."),
    mtu: { type: "integer", description: "Interface MTU, 576 to 9000; 0 removes it." },
    persistent_keepalive: {
      type: "integer",
      description: "Seconds between keepalive packets to each peer; 0 (default) turns them off.",
    },
    topology: {
      type: "string",
      enum: [...TOPOLOGIES],
      description:
        "full-mesh (default): every peer reaches every other. hub-and-spoke: spokes reach the hub only.",
    },
    hub: {
      type: "string",
      maxLength: 64,
      description:
        "The hub peer's name; required for hub-and-spoke. The peer may be created later.",
    },
    rotation_period: {
      type: ["integer", "string"],
      minimum: 0,
      maxLength: 64,
      description:
        'How long a peer key lives before its status shows rotation due: seconds or a duration such as "720h"; 0 (default) sets no schedule.',
    },
    rotation_notice: {
      type: ["integer", "string"],
      minimum: 0,
      maxLength: 64,
      description:
        'How long before its activation a new key of a peer that has one is announced: seconds or a duration such as "1h", at most 30 days; 0 (default) activates new keys at once.',
    },
  },
} as const;

/** Network management: create or update, read, list and delete. */
export async function registerNetworkRoutes(
  app: FastifyInstance,
  serviceFor: WireguardServiceResolver,
) {
  app.route({
    method: "GET",
    url: "/networks",
    schema: {
      tags: TAGS,
      summary: "List networks (GET with list=true).",
      description:
        "Returns network names in ascending order; 404 when there are none, as in Vault.",
      querystring: listQuery,
    },
    handler: async (request, reply) => {
      requireList(request);
      const keys = await serviceFor(request).listNetworks();
      if (keys.length === 0) throw new KeywardError("not_found", "no WireGuard networks found");
      return sendData(request, reply, { keys });
    },
  });

  app.route<{ Params: NetworkParams; Body: NetworkBody }>({
    method: WRITE_METHODS,
    url: "/networks/:network",
    schema: {
      tags: TAGS,
      summary: "Create or update a network.",
      description:
        "Creates the network, or updates it: omitted fields keep their values. Address ranges may not overlap another network's.",
      params: networkParams,
      body: networkBody,
    },
    preValidation: defaultEmptyBody,
    handler: async (request, reply) => {
      const body = request.body ?? {};
      const network = await serviceFor(request).writeNetwork(request.params.network, {
        addressRanges: body.address_ranges,
        listenPort: body.listen_port,
        dns: body.dns,
        mtu: body.mtu,
        persistentKeepalive: body.persistent_keepalive,
        topology: body.topology,
        hub: body.hub,
        rotationPeriod: body.rotation_period,
        rotationNotice: body.rotation_notice,
      });
      return sendData(request, reply, toWire(network));
    },
  });

  app.route<{ Params: NetworkParams }>({
    method: "GET",
    url: "/networks/:network",
    schema: { tags: TAGS, summary: "Read a network.", params: networkParams },
    handler: async (request, reply) => {
      const network = await serviceFor(request).readNetwork(request.params.network);
      return sendData(request, reply, toWire(network));
    },
  });

  app.route<{ Params: NetworkParams }>({
    method: "DELETE",
    url: "/networks/:network",
    schema: {
      tags: TAGS,
      summary: "Delete a network and all its peers.",
      params: networkParams,
    },
    handler: async (request, reply) => {
      await serviceFor(request).deleteNetwork(request.params.network);
      return sendNoContent(reply);
    },
  });
}
