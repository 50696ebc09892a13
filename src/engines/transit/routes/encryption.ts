import type { FastifyInstance } from "fastify";
import type { KeyType } from "../../../keys/types.ts";
import { DATA_KEY_BITS } from "../operations/encryption.ts";
import { DATA_KEY_KINDS, type DataKeyKind } from "../types.ts";
import { sendBatch, sendOutcome } from "./reply.ts";
import type { ServiceResolver } from "./resolver.ts";
import {
  base64Data,
  base64Parameter,
  batchInput,
  defaultEmptyBody,
  keyType,
  keyVersion,
  nameParams,
  partialFailureResponseCode,
  reference,
  TAGS,
  WRITE_METHODS,
} from "./schemas.ts";

interface NameParams {
  name: string;
}

interface EncryptFields {
  plaintext?: string;
  context?: string;
  nonce?: string;
  associated_data?: string;
  key_version?: number;
  reference?: string;
}

interface DecryptFields {
  ciphertext?: string;
  context?: string;
  nonce?: string;
  associated_data?: string;
  reference?: string;
}

interface RewrapFields {
  ciphertext?: string;
  context?: string;
  nonce?: string;
  key_version?: number;
  reference?: string;
}

const plaintext = base64Data("Base64 plaintext.");
const ciphertext = base64Data("Ciphertext from encrypt, such as `keyward:v1:...`.");
const context = base64Parameter("Base64 key derivation context; required for derived keys.");
const nonce = base64Parameter(
  "Base64 96-bit nonce. Used only for convergent encryption keys that take a caller's nonce; never reuse one for the same context.",
);
const associatedData = base64Parameter(
  "Base64 associated data (AAD), authenticated but not encrypted.",
);

const encryptItemSchema = {
  type: "object",
  additionalProperties: false,
  properties: {
    plaintext,
    context,
    nonce,
    associated_data: associatedData,
    key_version: keyVersion,
    reference,
  },
} as const;

const decryptItemSchema = {
  type: "object",
  additionalProperties: false,
  properties: { ciphertext, context, nonce, associated_data: associatedData, reference },
} as const;

const rewrapItemSchema = {
  type: "object",
  additionalProperties: false,
  properties: { ciphertext, context, nonce, key_version: keyVersion, reference },
} as const;

const BATCH_STATUS_NOTE =
  "With `batch_input`, the response status follows Vault: 400 when any item failed through its input, 500 when items failed only internally, else 200; every item's result or `error` and `code` is in `batch_results`.";

function toEncryptItem(fields: EncryptFields) {
  return {
    plaintext: fields.plaintext,
    context: fields.context,
    nonce: fields.nonce,
    associatedData: fields.associated_data,
    keyVersion: fields.key_version,
    reference: fields.reference,
  };
}

function toDecryptItem(fields: DecryptFields) {
  return {
    ciphertext: fields.ciphertext,
    context: fields.context,
    nonce: fields.nonce,
    associatedData: fields.associated_data,
    reference: fields.reference,
  };
}

function toRewrapItem(fields: RewrapFields) {
  return {
    ciphertext: fields.ciphertext,
    context: fields.context,
    nonce: fields.nonce,
    keyVersion: fields.key_version,
    reference: fields.reference,
  };
}

/** Encrypt, decrypt, rewrap and data keys. */
export async function registerEncryptionRoutes(app: FastifyInstance, serviceFor: ServiceResolver) {
  app.route<{
    Params: NameParams;
    Body: Omit<EncryptFields, "reference"> & {
      batch_input?: EncryptFields[];
      type?: KeyType;
      convergent_encryption?: boolean;
      partial_failure_response_code?: number;
    };
  }>({
    method: WRITE_METHODS,
    preValidation: defaultEmptyBody,
    url: "/encrypt/:name",
    schema: {
      tags: TAGS,
      summary: "Encrypt data.",
      description: `Encrypts base64 \`plaintext\` with the named key. When the key does not exist and the mount allows upserts, it is created with \`type\` (default \`aes256-gcm96\`), derived when a context is given, as Vault does. ${BATCH_STATUS_NOTE}`,
      params: nameParams,
      body: {
        type: "object",
        additionalProperties: false,
        properties: {
          plaintext,
          context,
          nonce,
          associated_data: associatedData,
          key_version: keyVersion,
          batch_input: batchInput(encryptItemSchema),
          type: keyType,
          convergent_encryption: {
            type: "boolean",
            description: "For a key created by this request: enable convergent encryption.",
          },
          partial_failure_response_code: partialFailureResponseCode,
        },
      },
    },
    handler: async (request, reply) => {
      const body = request.body ?? {};
      const options = {
        type: body.type,
        convergentEncryption: body.convergent_encryption,
        partialFailureResponseCode: body.partial_failure_response_code,
      };
      if (body.batch_input !== undefined) {
        const items = body.batch_input.map(toEncryptItem);
        return sendBatch(
          request,
          reply,
          await serviceFor(request).encryptBatch(request.params.name, items, options),
        );
      }
      return sendOutcome(
        request,
        reply,
        await serviceFor(request).encrypt(request.params.name, toEncryptItem(body), options),
      );
    },
  });

  app.route<{
    Params: NameParams;
    Body: Omit<DecryptFields, "reference"> & {
      batch_input?: DecryptFields[];
      partial_failure_response_code?: number;
    };
  }>({
    method: WRITE_METHODS,
    preValidation: defaultEmptyBody,
    url: "/decrypt/:name",
    schema: {
      tags: TAGS,
      summary: "Decrypt data.",
      description: `Decrypts \`ciphertext\` with the named key and returns base64 \`plaintext\`. Every failed decryption gives the same \`decryption_failed\` error. ${BATCH_STATUS_NOTE}`,
      params: nameParams,
      body: {
        type: "object",
        additionalProperties: false,
        properties: {
          ciphertext,
          context,
          nonce,
          associated_data: associatedData,
          batch_input: batchInput(decryptItemSchema),
          partial_failure_response_code: partialFailureResponseCode,
        },
      },
    },
    handler: async (request, reply) => {
      const body = request.body ?? {};
      if (body.batch_input !== undefined) {
        const outcome = await serviceFor(request).decryptBatch(
          request.params.name,
          body.batch_input.map(toDecryptItem),
          {
            partialFailureResponseCode: body.partial_failure_response_code,
          },
        );
        return sendBatch(request, reply, outcome);
      }
      return sendOutcome(
        request,
        reply,
        await serviceFor(request).decrypt(request.params.name, toDecryptItem(body)),
      );
    },
  });

  app.route<{
    Params: NameParams;
    Body: Omit<RewrapFields, "reference"> & {
      batch_input?: RewrapFields[];
      partial_failure_response_code?: number;
    };
  }>({
    method: WRITE_METHODS,
    preValidation: defaultEmptyBody,
    url: "/rewrap/:name",
    schema: {
      tags: TAGS,
      summary: "Rewrap ciphertext with the latest key version.",
      description: `Decrypts \`ciphertext\` and encrypts it again with the latest (or \`key_version\`) key version, without returning the plaintext. ${BATCH_STATUS_NOTE}`,
      params: nameParams,
      body: {
        type: "object",
        additionalProperties: false,
        properties: {
          ciphertext,
          context,
          nonce,
          key_version: keyVersion,
          batch_input: batchInput(rewrapItemSchema),
          partial_failure_response_code: partialFailureResponseCode,
        },
      },
    },
    handler: async (request, reply) => {
      const body = request.body ?? {};
      if (body.batch_input !== undefined) {
        const outcome = await serviceFor(request).rewrapBatch(
          request.params.name,
          body.batch_input.map(toRewrapItem),
          {
            partialFailureResponseCode: body.partial_failure_response_code,
          },
        );
        return sendBatch(request, reply, outcome);
      }
      return sendOutcome(
        request,
        reply,
        await serviceFor(request).rewrap(request.params.name, toRewrapItem(body)),
      );
    },
  });

  app.route<{
    Params: NameParams & { kind: DataKeyKind };
    Body: { bits?: number; context?: string; nonce?: string; key_version?: number };
  }>({
    method: WRITE_METHODS,
    preValidation: defaultEmptyBody,
    url: "/datakey/:kind/:name",
    schema: {
      tags: TAGS,
      summary: "Generate a data key.",
      description:
        "Generates a random data key of `bits` bits (128, 256 or 512; default 256) and returns it encrypted with the named key. The `plaintext` kind also returns the key itself in base64; `wrapped` returns only the ciphertext.",
      params: {
        type: "object",
        required: ["kind", "name"],
        properties: {
          ...nameParams.properties,
          kind: { type: "string", enum: [...DATA_KEY_KINDS] },
        },
      },
      body: {
        type: "object",
        additionalProperties: false,
        properties: {
          bits: { type: "integer", enum: [...DATA_KEY_BITS] },
          context,
          nonce,
          key_version: keyVersion,
        },
      },
    },
    handler: async (request, reply) => {
      const body = request.body ?? {};
      const outcome = await serviceFor(request).generateDataKey(request.params.name, {
        kind: request.params.kind,
        bits: body.bits,
        context: body.context,
        nonce: body.nonce,
        keyVersion: body.key_version,
      });
      return sendOutcome(request, reply, outcome);
    },
  });
}
