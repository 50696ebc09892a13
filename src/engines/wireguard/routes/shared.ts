import type { FastifyReply, FastifyRequest } from "fastify";
import type { WireguardService } from "../service.ts";

export { requireList, sendData } from "../../../api/envelope.ts";

/**
 * Returns the WireGuard service that serves a request. Routes call it on
 * every request, so one set of routes serves every mount and the services
 * rebuilt at each unseal. It may throw a `KeywardError` such as `sealed`.
 */
export type WireguardServiceResolver = (request: FastifyRequest) => WireguardService;

export const TAGS = ["wireguard"];

/** Accepts both POST and PUT, as Vault does for every write. */
export const WRITE_METHODS: ["POST", "PUT"] = ["POST", "PUT"];

const NAME_SCHEMA = { type: "string", minLength: 1, maxLength: 64 } as const;

export const networkParams = {
  type: "object",
  required: ["network"],
  properties: { network: { ...NAME_SCHEMA, description: "Network name." } },
} as const;

export const peerParams = {
  type: "object",
  required: ["network", "peer"],
  properties: {
    network: { ...NAME_SCHEMA, description: "Network name." },
    peer: { ...NAME_SCHEMA, description: "Peer name." },
  },
} as const;

export const listQuery = {
  type: "object",
  properties: {
    list: { type: "string", maxLength: 8, description: "Set to true (or 1) to list." },
  },
} as const;

/** A list field: an array of strings, or one comma-separated string. */
export const stringList = (description: string) =>
  ({
    anyOf: [
      { type: "array", items: { type: "string", maxLength: 256 }, maxItems: 64 },
      { type: "string", maxLength: 16_384 },
    ],
    description,
  }) as const;

export interface NetworkParams {
  network: string;
}

export interface PeerParams extends NetworkParams {
  peer: string;
}

/** Replies 204 with no body, as Vault does for writes that return no data. */
export function sendNoContent(reply: FastifyReply) {
  return reply.code(204).send();
}

/** Treats a write without a body as one with `{}`. */
export async function defaultEmptyBody(request: FastifyRequest): Promise<void> {
  if (request.body === undefined || request.body === null) request.body = {};
}

/** Renames an object's own fields from camelCase to snake_case (shallow). */
export function toWire(value: object): Record<string, unknown> {
  const wire: Record<string, unknown> = {};
  for (const [name, field] of Object.entries(value)) {
    wire[name.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`)] = field;
  }
  return wire;
}
