import type { FastifyInstance } from "fastify";
import { KeywardError } from "../../../errors.ts";
import {
  HASH_ENDPOINT_ALGORITHMS,
  MAX_RANDOM_BYTES,
  OUTPUT_FORMATS,
  RANDOM_SOURCES,
} from "../operations/utility.ts";
import { sendData } from "./reply.ts";
import type { ServiceResolver } from "./resolver.ts";
import { base64Data, defaultEmptyBody, TAGS, WRITE_METHODS } from "./schemas.ts";

interface RandomParams {
  /** `/random/:first` is a source name or a byte count, as in Vault. */
  first?: string;
  source?: string;
  bytes?: string;
}

const segment = { type: "string", minLength: 1, maxLength: 16 } as const;

/** Parses a byte count from the URL; digits only, so `/random/abc` is read as a source instead. */
function parseUrlBytes(value: string): number {
  const bytes = Number(value);
  if (!/^\d{1,7}$/.test(value) || bytes < 1 || bytes > MAX_RANDOM_BYTES) {
    throw new KeywardError(
      "invalid_field",
      `"bytes" must be a whole number from 1 to ${MAX_RANDOM_BYTES}`,
      {
        field: "bytes",
      },
    );
  }
  return bytes;
}

/** Random bytes and hashing; neither needs a key. */
export async function registerUtilityRoutes(app: FastifyInstance, serviceFor: ServiceResolver) {
  const randomDescription = `Returns \`bytes\` random bytes (default 32, at most ${MAX_RANDOM_BYTES}) from the operating system's CSPRNG, as base64 (default) or hex. The count and the source may also be given in the URL, as \`random/:source/:bytes\`, \`random/:bytes\` or \`random/:source\`; the URL wins over the body. Sources: \`platform\` (default) and \`all\`, which Keyward accepts for compatibility and serves from the same CSPRNG.`;

  for (const url of ["/random", "/random/:first", "/random/:source/:bytes"]) {
    app.route<{ Params: RandomParams; Body: { bytes?: number; format?: string; source?: string } }>(
      {
        method: WRITE_METHODS,
        preValidation: defaultEmptyBody,
        url,
        schema: {
          tags: TAGS,
          summary: "Generate random bytes.",
          description: randomDescription,
          params: {
            type: "object",
            properties: { first: segment, source: segment, bytes: segment },
          },
          body: {
            type: "object",
            additionalProperties: false,
            properties: {
              bytes: { type: "integer", minimum: 1, maximum: MAX_RANDOM_BYTES },
              format: { type: "string", enum: [...OUTPUT_FORMATS] },
              source: { type: "string", enum: [...RANDOM_SOURCES] },
            },
          },
        },
        handler: async (request, reply) => {
          const body = request.body ?? {};
          const { first, source, bytes } = request.params;
          let urlSource = source;
          let urlBytes = bytes === undefined ? undefined : parseUrlBytes(bytes);
          if (first !== undefined) {
            if (/^\d+$/.test(first)) urlBytes = parseUrlBytes(first);
            else urlSource = first;
          }
          const randomBytes = serviceFor(request).randomBytes({
            bytes: urlBytes ?? body.bytes,
            format: body.format,
            source: urlSource ?? body.source,
          });
          return sendData(request, reply, { randomBytes });
        },
      },
    );
  }

  for (const url of ["/hash", "/hash/:algorithm"]) {
    app.route<{
      Params: { algorithm?: string };
      Body: { input?: string; algorithm?: string; format?: string };
    }>({
      method: WRITE_METHODS,
      preValidation: defaultEmptyBody,
      url,
      schema: {
        tags: TAGS,
        summary: "Hash data.",
        description:
          "Returns the digest of base64 `input` as `sum`, hex (default) or base64. The algorithm (default `sha2-256`) may be given in the URL, which wins over the body.",
        params: {
          type: "object",
          properties: { algorithm: { type: "string", minLength: 1, maxLength: 16 } },
        },
        body: {
          type: "object",
          additionalProperties: false,
          properties: {
            input: base64Data("Base64 input data."),
            algorithm: { type: "string", enum: [...HASH_ENDPOINT_ALGORITHMS] },
            format: { type: "string", enum: [...OUTPUT_FORMATS] },
          },
        },
      },
      handler: async (request, reply) => {
        const body = request.body ?? {};
        const sum = serviceFor(request).hash({
          input: body.input,
          algorithm: request.params.algorithm ?? body.algorithm,
          format: body.format,
        });
        return sendData(request, reply, { sum });
      },
    });
  }
}
