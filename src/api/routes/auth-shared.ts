import type { FastifyInstance, FastifyReply, FastifyRequest, HTTPMethods } from "fastify";
import type { Identity } from "../../auth/token-store.ts";
import { KeywardError } from "../../errors.ts";
import { envelope, sendData, TRUE_STRINGS } from "../envelope.ts";

export { sendData };

export const WRITE_METHODS: HTTPMethods[] = ["POST", "PUT"];

/** A JSON object schema that rejects fields it does not list. */
export const objectBody = (properties: object, required: string[] = []) =>
  ({ type: "object", additionalProperties: false, required, properties }) as const;

/** A duration field: whole seconds or a string such as "1h30m". */
export const durationSchema = (description: string) =>
  ({ type: ["integer", "string"], minimum: 0, maxLength: 64, description }) as const;

/** A list of CIDR blocks: an array or a comma-separated string, as Vault accepts. */
export const cidrListSchema = (description: string) =>
  ({
    type: "array",
    maxItems: 64,
    items: { type: "string", maxLength: 4096 },
    description: `${description} An array or a comma-separated string.`,
  }) as const;

/** Boolean strings as Go's `strconv.ParseBool` reads them, which Vault uses for `list`. */
const FALSE_STRINGS = ["0", "f", "F", "FALSE", "false", "False"];

const listQuery = {
  type: "object",
  properties: {
    list: {
      type: "string",
      enum: [...TRUE_STRINGS, ...FALSE_STRINGS],
      description: "Set to true (or 1) to list.",
    },
  },
} as const;

/** Returns the caller's identity, set by the authentication hook. Throws `missing_token` without one. */
export function requireIdentity(request: FastifyRequest): Identity {
  const identity = request.identity;
  if (identity === undefined) {
    throw new KeywardError(
      "missing_token",
      "missing client token; send it in the X-Vault-Token or Authorization: Bearer header",
    );
  }
  return identity;
}

/** Sends an `auth` block in Vault's envelope, as logins and token creation do. */
export function sendAuth(
  request: FastifyRequest,
  reply: FastifyReply,
  auth: object,
  warnings: string[] = [],
) {
  return reply.code(200).send(envelope(null, { requestId: request.id, auth, warnings }));
}

/**
 * Registers a list route at `url`: GET with `list=true`, and Vault's LIST
 * method where the HTTP server can receive it (Node's parser cannot, so in
 * practice GET is the way). Like Vault, an empty list is a 404.
 */
export function registerListRoute(
  app: FastifyInstance,
  url: string,
  tags: string[],
  summary: string,
  list: (request: FastifyRequest) => Promise<string[]>,
) {
  const handler = async (request: FastifyRequest, reply: FastifyReply) => {
    const keys = await list(request);
    if (keys.length === 0) throw new KeywardError("not_found", "no entries found");
    return sendData(request, reply, { keys });
  };
  if (app.supportedMethods.includes("LIST")) {
    app.route({ method: "LIST" as HTTPMethods, url, schema: { tags, summary }, handler });
  }
  app.route<{ Querystring: { list?: string } }>({
    method: "GET",
    url,
    schema: { tags, summary: `${summary} (GET with list=true)`, querystring: listQuery },
    handler: async (request, reply) => {
      const flag = request.query.list;
      if (flag === undefined || !TRUE_STRINGS.includes(flag)) {
        throw new KeywardError("method_not_allowed", "this path needs GET with list=true");
      }
      return handler(request, reply);
    },
  });
}
