import type { FastifyInstance } from "fastify";
import { HASH_ALGORITHMS } from "../../../keys/index.ts";
import { MARSHALING_ALGORITHMS, SIGNATURE_ALGORITHMS } from "../operations/signing.ts";
import type { SignatureOptions } from "../types.ts";
import { sendBatch, sendOutcome } from "./reply.ts";
import type { ServiceResolver } from "./resolver.ts";
import {
  base64Data,
  base64Parameter,
  batchInput,
  defaultEmptyBody,
  keyVersion,
  nameAndParams,
  nameParams,
  reference,
  TAGS,
  WRITE_METHODS,
} from "./schemas.ts";

interface SignatureFields {
  hash_algorithm?: string;
  /** Vault's older name for `hash_algorithm`. */
  algorithm?: string;
  prehashed?: boolean;
  signature_algorithm?: string;
  marshaling_algorithm?: string;
  salt_length?: string | number;
}

interface SignFields {
  input?: string;
  context?: string;
  reference?: string;
}

interface VerifyFields extends SignFields {
  signature?: string;
  hmac?: string;
}

interface HmacFields {
  input?: string;
  reference?: string;
}

type AlgorithmParams = { name: string; hash_algorithm?: string; algorithm?: string };

const input = base64Data("Base64 input data.");
const context = base64Parameter(
  "Base64 key derivation context; required for derived ed25519 keys.",
);
const signature = base64Data("Signature from the sign endpoint, such as `keyward:v1:...`.");
const hmacValue = base64Data("HMAC from the hmac endpoint, such as `keyward:v1:...`.");
const hashAlgorithm = {
  type: "string",
  enum: [...HASH_ALGORITHMS],
  description:
    "Hash algorithm. Default `sha2-256`; ignored by ed25519, which hashes with SHA-512 itself.",
} as const;

const signatureOptionFields = {
  hash_algorithm: hashAlgorithm,
  algorithm: { ...hashAlgorithm, description: "Vault's older name for `hash_algorithm`." },
  prehashed: {
    type: "boolean",
    description: "The input is already a digest made with `hash_algorithm`.",
  },
  signature_algorithm: {
    type: "string",
    enum: [...SIGNATURE_ALGORITHMS],
    description: "RSA signature scheme. Default `pss`.",
  },
  marshaling_algorithm: {
    type: "string",
    enum: [...MARSHALING_ALGORITHMS],
    description: "ECDSA signature encoding: `asn1` (default, DER) or `jws` (r||s, base64url).",
  },
  salt_length: {
    type: ["string", "integer"],
    maxLength: 8,
    minimum: 0,
    maximum: 1024,
    description: 'RSA-PSS salt length: "auto" (default), "hash" or a number of bytes.',
  },
} as const;

const signItemSchema = {
  type: "object",
  additionalProperties: false,
  properties: { input, context, reference },
} as const;

const verifyItemSchema = {
  type: "object",
  additionalProperties: false,
  properties: { input, context, signature, hmac: hmacValue, reference },
} as const;

const hmacItemSchema = {
  type: "object",
  additionalProperties: false,
  properties: { input, reference },
} as const;

const BATCH_NOTE =
  "With `batch_input`, the response is 200 even when items fail, as in Vault; each failed item has `error` and `code` in `batch_results`.";

function signatureOptions(params: AlgorithmParams, body: SignatureFields): SignatureOptions {
  return {
    hashAlgorithm: params.hash_algorithm ?? body.hash_algorithm ?? body.algorithm,
    prehashed: body.prehashed,
    signatureAlgorithm: body.signature_algorithm,
    marshalingAlgorithm: body.marshaling_algorithm,
    saltLength: body.salt_length,
  };
}

function toSignItem(fields: SignFields) {
  return { input: fields.input, context: fields.context, reference: fields.reference };
}

function toVerifyItem(fields: VerifyFields) {
  return {
    input: fields.input,
    context: fields.context,
    signature: fields.signature,
    hmac: fields.hmac,
    reference: fields.reference,
  };
}

/** Sign, verify (signatures and HMACs) and HMAC. */
export async function registerSigningRoutes(app: FastifyInstance, serviceFor: ServiceResolver) {
  const hashParams = nameAndParams(
    "hash_algorithm",
    "Hash algorithm; overrides the body's `hash_algorithm`.",
  );

  for (const url of ["/sign/:name", "/sign/:name/:hash_algorithm"]) {
    app.route<{
      Params: AlgorithmParams;
      Body: SignatureFields &
        Omit<SignFields, "reference"> & { key_version?: number; batch_input?: SignFields[] };
    }>({
      method: WRITE_METHODS,
      preValidation: defaultEmptyBody,
      url,
      schema: {
        tags: TAGS,
        summary: "Sign data.",
        description: `Signs base64 \`input\` with the named asymmetric key. ${BATCH_NOTE}`,
        params: url.endsWith(":hash_algorithm") ? hashParams : nameParams,
        body: {
          type: "object",
          additionalProperties: false,
          properties: {
            input,
            context,
            key_version: keyVersion,
            batch_input: batchInput(signItemSchema),
            ...signatureOptionFields,
          },
        },
      },
      handler: async (request, reply) => {
        const body = request.body ?? {};
        const options = { ...signatureOptions(request.params, body), keyVersion: body.key_version };
        if (body.batch_input !== undefined) {
          const outcome = await serviceFor(request).signBatch(
            request.params.name,
            body.batch_input.map(toSignItem),
            options,
          );
          return sendBatch(request, reply, outcome);
        }
        return sendOutcome(
          request,
          reply,
          await serviceFor(request).sign(request.params.name, toSignItem(body), options),
        );
      },
    });
  }

  for (const url of ["/verify/:name", "/verify/:name/:hash_algorithm"]) {
    app.route<{
      Params: AlgorithmParams;
      Body: SignatureFields & Omit<VerifyFields, "reference"> & { batch_input?: VerifyFields[] };
    }>({
      method: WRITE_METHODS,
      preValidation: defaultEmptyBody,
      url,
      schema: {
        tags: TAGS,
        summary: "Verify a signature or an HMAC.",
        description: `Verifies \`signature\` (from sign) or \`hmac\` (from hmac) over base64 \`input\` and returns \`valid\`. In a batch, every item must carry the same one of the two. ${BATCH_NOTE}`,
        params: url.endsWith(":hash_algorithm") ? hashParams : nameParams,
        body: {
          type: "object",
          additionalProperties: false,
          properties: {
            input,
            context,
            signature,
            hmac: hmacValue,
            batch_input: batchInput(verifyItemSchema),
            ...signatureOptionFields,
          },
        },
      },
      handler: async (request, reply) => {
        const body = request.body ?? {};
        const options = signatureOptions(request.params, body);
        if (body.batch_input !== undefined) {
          const outcome = await serviceFor(request).verifyBatch(
            request.params.name,
            body.batch_input.map(toVerifyItem),
            options,
          );
          return sendBatch(request, reply, outcome);
        }
        return sendOutcome(
          request,
          reply,
          await serviceFor(request).verify(request.params.name, toVerifyItem(body), options),
        );
      },
    });
  }

  const algorithmParams = nameAndParams(
    "algorithm",
    "Hash algorithm; overrides the body's `algorithm`.",
  );
  for (const url of ["/hmac/:name", "/hmac/:name/:algorithm"]) {
    app.route<{
      Params: AlgorithmParams;
      Body: {
        input?: string;
        algorithm?: string;
        key_version?: number;
        batch_input?: HmacFields[];
      };
    }>({
      method: WRITE_METHODS,
      preValidation: defaultEmptyBody,
      url,
      schema: {
        tags: TAGS,
        summary: "Compute an HMAC.",
        description: `Computes the HMAC of base64 \`input\` with the named key's HMAC key (every key type has one). ${BATCH_NOTE}`,
        params: url.endsWith(":algorithm") ? algorithmParams : nameParams,
        body: {
          type: "object",
          additionalProperties: false,
          properties: {
            input,
            algorithm: hashAlgorithm,
            key_version: keyVersion,
            batch_input: batchInput(hmacItemSchema),
          },
        },
      },
      handler: async (request, reply) => {
        const body = request.body ?? {};
        const options = {
          algorithm: request.params.algorithm ?? body.algorithm,
          keyVersion: body.key_version,
        };
        if (body.batch_input !== undefined) {
          const items = body.batch_input.map((item) => ({
            input: item.input,
            reference: item.reference,
          }));
          return sendBatch(
            request,
            reply,
            await serviceFor(request).hmacBatch(request.params.name, items, options),
          );
        }
        return sendOutcome(
          request,
          reply,
          await serviceFor(request).hmac(request.params.name, { input: body.input }, options),
        );
      },
    });
  }
}
