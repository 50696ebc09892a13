import type { FastifyReply, FastifyRequest } from "fastify";

import { MAX_ROLE_NAME_LENGTH } from "../roles.ts";
import type { SshService } from "../service.ts";
import type { RequesterIdentity } from "../types.ts";

// The reply helpers every route module uses; shared with the rest of the API.
export { requireList, sendData, sendRaw } from "../../../api/envelope.ts";

/**
 * Returns the SSH service that serves a request. Routes call it on every
 * request, so one set of routes can serve several mounts and services
 * rebuilt at each unseal. It may throw a `KeywardError` such as `sealed`.
 */
export type SshServiceResolver = (request: FastifyRequest) => SshService;

export const TAGS = ["ssh"];

/** Accepts both POST and PUT, as Vault does for every write. */
export const WRITE_METHODS: ["POST", "PUT"] = ["POST", "PUT"];

/** Config of routes that need no token: the CA public keys, known_hosts lines and the KRL, as in Vault. */
export const PUBLIC = { public: true } as const;

/** Maximum length of a public key line, in characters: an RSA 16384-bit key in base64 fits with room to spare. */
export const MAX_PUBLIC_KEY_LENGTH = 16 * 1024;
/** Maximum length of a private key to import, in characters. */
export const MAX_PRIVATE_KEY_LENGTH = 64 * 1024;

/** A Vault list field: an array of strings, or one comma-separated string. */
export const stringList = (description: string) =>
  ({
    anyOf: [
      { type: "array", items: { type: "string", maxLength: 1024 }, maxItems: 1000 },
      { type: "string", maxLength: 65_536 },
    ],
    description,
  }) as const;

/** A map of option or extension names to string values. */
export const optionMap = (description: string) =>
  ({
    type: "object",
    maxProperties: 64,
    additionalProperties: { type: "string", maxLength: 4096 },
    description,
  }) as const;

/** A duration: whole seconds, or a string such as "1h" or "30m". */
export const duration = (description: string) =>
  ({ type: ["integer", "string"], minimum: 0, maxLength: 64, description }) as const;

export const roleParams = {
  type: "object",
  required: ["role"],
  properties: {
    role: {
      type: "string",
      minLength: 1,
      maxLength: MAX_ROLE_NAME_LENGTH,
      description: "Role name.",
    },
  },
} as const;

export const listQuery = {
  type: "object",
  properties: {
    list: { type: "string", maxLength: 8, description: "Set to true (or 1) to list." },
  },
} as const;

/** Replies 204 with no body, as Vault does for writes that return no data. */
export function sendNoContent(reply: FastifyReply) {
  return reply.code(204).send();
}

/** Treats a write without a body as one with `{}`, as Vault clients send some writes. */
export async function defaultEmptyBody(request: FastifyRequest): Promise<void> {
  if (request.body === undefined || request.body === null) request.body = {};
}

/** Returns the caller's identity for templates; anonymous on an app without authentication. */
export function requesterOf(request: FastifyRequest): RequesterIdentity {
  const identity = request.identity;
  if (!identity) return { displayName: "", metadata: {} };
  return { displayName: identity.displayName, metadata: identity.record?.meta ?? {} };
}

/** Renames an object's own fields from camelCase to Vault's snake_case (shallow). */
export function toWire(value: object): Record<string, unknown> {
  const wire: Record<string, unknown> = {};
  for (const [name, field] of Object.entries(value)) {
    wire[name.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`)] = field;
  }
  return wire;
}
