import type { FastifyRequest } from "fastify";
import { KEY_TYPES } from "../../../keys/types.ts";
import { MAX_BATCH_ITEMS } from "../batch.ts";
import { MAX_KEY_NAME_LENGTH } from "../store.ts";

/**
 * Maximum length of a base64 data field: the base64 length of 32 MiB, Vault's
 * default maximum request size. The server's body limit usually applies first.
 */
export const MAX_DATA_LENGTH = Math.ceil((32 * 1024 * 1024) / 3) * 4;
/** Maximum length of a base64 context, nonce or associated data field (64 KiB of text). */
export const MAX_PARAMETER_LENGTH = 64 * 1024;
/** Maximum length of a batch item's `reference`. */
export const MAX_REFERENCE_LENGTH = 4096;
/** Maximum key version number accepted: 2^31 - 1, the largest Go `int` on 32-bit builds of Vault. */
export const MAX_KEY_VERSION = 2 ** 31 - 1;

export const TAGS = ["transit"];

export const base64Data = (description: string) =>
  ({ type: "string", maxLength: MAX_DATA_LENGTH, description }) as const;

export const base64Parameter = (description: string) =>
  ({ type: "string", maxLength: MAX_PARAMETER_LENGTH, description }) as const;

export const reference = {
  type: "string",
  maxLength: MAX_REFERENCE_LENGTH,
  description: "Copied to this item's entry in `batch_results`, to match results to inputs.",
} as const;

export const keyVersion = {
  type: "integer",
  minimum: 0,
  maximum: MAX_KEY_VERSION,
  description: "Key version to use; 0 (the default) means the latest allowed version.",
} as const;

export const keyType = {
  type: "string",
  enum: [...KEY_TYPES],
  description: "Key type. Default `aes256-gcm96`.",
} as const;

/**
 * Statuses a caller may ask for: a success with a body (so the good items'
 * results reach the caller) or a client error. Vault takes any value up to
 * 599, but a 5xx would let a caller fake a server failure, and 204 or 304
 * would drop the results.
 */
export const partialFailureResponseCode = {
  type: "integer",
  anyOf: [
    { minimum: 200, maximum: 203 },
    { minimum: 206, maximum: 299 },
    { minimum: 400, maximum: 499 },
  ],
  description:
    "HTTP status to return when some batch items fail and others succeed, instead of 400 (Vault's `partial_failure_response_code`): 200-203, 206-299 or 400-499.",
} as const;

export const batchInput = (item: object) =>
  ({
    type: "array",
    minItems: 1,
    maxItems: MAX_BATCH_ITEMS,
    items: item,
    description: `Items to process in one request (1 to ${MAX_BATCH_ITEMS}); the other data fields are then ignored. Results come back in order in \`batch_results\`, each with its own \`error\` and \`code\` when it failed.`,
  }) as const;

export const nameParams = {
  type: "object",
  required: ["name"],
  properties: {
    name: {
      type: "string",
      minLength: 1,
      maxLength: MAX_KEY_NAME_LENGTH,
      description: `Key name: 1 to ${MAX_KEY_NAME_LENGTH} letters, digits, "_", "." or "-", starting and ending with a letter, digit or "_".`,
    },
  },
} as const;

/** Params of a route with the key name and an optional trailing segment such as a hash algorithm. */
export const nameAndParams = (extra: string, description: string) =>
  ({
    type: "object",
    required: ["name", extra],
    properties: {
      ...nameParams.properties,
      [extra]: { type: "string", minLength: 1, maxLength: 64, description },
    },
  }) as const;

/** Accepts both POST and PUT, as Vault does for every write. */
export const WRITE_METHODS: ["POST", "PUT"] = ["POST", "PUT"];

/**
 * Treats a write without a body as one with `{}`. Some Vault clients send
 * writes such as `keys/:name/rotate` with no body at all, and Fastify would
 * otherwise reject the missing body against the body schema.
 */
export async function defaultEmptyBody(request: FastifyRequest): Promise<void> {
  if (request.body === undefined || request.body === null) request.body = {};
}
