import type { FastifyInstance } from "fastify";
import type { KeyType } from "../../../keys/types.ts";
import { OAEP_HASH_FUNCTIONS } from "../operations/import.ts";
import { sendData, sendOutcome } from "./reply.ts";
import type { ServiceResolver } from "./resolver.ts";
import { keyType, nameParams, TAGS, WRITE_METHODS } from "./schemas.ts";

interface NameParams {
  name: string;
}

interface ImportVersionBody {
  ciphertext: string;
  hash_function?: string;
}

interface ImportBody extends ImportVersionBody {
  type?: KeyType;
  allow_rotation?: boolean;
  derived?: boolean;
  convergent_encryption?: boolean;
  exportable?: boolean;
  allow_plaintext_backup?: boolean;
  auto_rotate_period?: number | string;
}

/**
 * Maximum length of `ciphertext` in base64 characters: room for the
 * 512-byte RSA-OAEP part and the AES-KWP wrap of an RSA-4096 PKCS#8 key
 * (about 2,400 bytes) with a wide margin.
 */
const MAX_IMPORT_CIPHERTEXT_LENGTH = 16 * 1024;

const wrappedKeyProperties = {
  ciphertext: {
    type: "string",
    minLength: 1,
    maxLength: MAX_IMPORT_CIPHERTEXT_LENGTH,
    description:
      "Base64 of the ephemeral AES-256 key encrypted with RSA-OAEP under the mount's wrapping key, followed by the target key wrapped with AES-KWP (RFC 5649) under the ephemeral key. The target key is raw bytes for AEAD and hmac keys, PKCS#8 DER for asymmetric keys.",
  },
  hash_function: {
    type: "string",
    enum: [
      ...Object.keys(OAEP_HASH_FUNCTIONS),
      ...Object.keys(OAEP_HASH_FUNCTIONS).map((name) => name.toLowerCase()),
    ],
    description:
      "The hash RSA-OAEP used for its label and for MGF1: SHA1, SHA224, SHA256 (default), SHA384 or SHA512.",
  },
} as const;

/** Key import (bring your own key): the wrapping key, `import` and `import_version`. */
export async function registerImportRoutes(app: FastifyInstance, serviceFor: ServiceResolver) {
  app.route({
    method: "GET",
    url: "/wrapping_key",
    schema: {
      tags: TAGS,
      summary: "Read the wrapping key for key import.",
      description:
        "Returns the public half (SPKI PEM) of the mount's RSA-4096 wrapping key. Import requests encrypt their ephemeral AES-256 key with it. The key is generated on the first read and deleted with the mount.",
    },
    handler: async (request, reply) =>
      sendData(request, reply, await serviceFor(request).readWrappingKey()),
  });

  app.route<{ Params: NameParams; Body: ImportBody }>({
    method: WRITE_METHODS,
    url: "/keys/:name/import",
    schema: {
      tags: TAGS,
      summary: "Import a key.",
      description:
        "Creates key `name` from a wrapped key, marked imported. Fails with `already_exists` when the key exists. `convergent_encryption` is rejected, as imported keys cannot use it.",
      params: nameParams,
      body: {
        type: "object",
        additionalProperties: false,
        required: ["ciphertext"],
        properties: {
          ...wrappedKeyProperties,
          type: keyType,
          allow_rotation: {
            type: "boolean",
            description:
              "Allow rotate (and auto_rotate_period) to add versions that Keyward generates. Default false.",
          },
          derived: {
            type: "boolean",
            description: "Derive a key per `context` for every operation.",
          },
          convergent_encryption: {
            type: "boolean",
            description: "Not supported for imported keys; true is rejected.",
          },
          exportable: {
            type: "boolean",
            description: "Allow export of the key material. Cannot be undone.",
          },
          allow_plaintext_backup: {
            type: "boolean",
            description: "Allow plaintext backups of the key. Cannot be undone.",
          },
          auto_rotate_period: {
            type: ["integer", "string"],
            maxLength: 64,
            minimum: 0,
            description:
              'Seconds, or a duration string such as "24h". 0 disables automatic rotation; otherwise at least 1h, and only with allow_rotation.',
          },
        },
      },
    },
    handler: async (request, reply) => {
      const body = request.body;
      const outcome = await serviceFor(request).importKey(request.params.name, {
        ciphertext: body.ciphertext,
        hashFunction: body.hash_function,
        type: body.type,
        allowRotation: body.allow_rotation,
        derived: body.derived,
        convergentEncryption: body.convergent_encryption,
        exportable: body.exportable,
        allowPlaintextBackup: body.allow_plaintext_backup,
        autoRotatePeriod: body.auto_rotate_period,
      });
      return sendOutcome(request, reply, outcome);
    },
  });

  app.route<{ Params: NameParams; Body: ImportVersionBody }>({
    method: WRITE_METHODS,
    url: "/keys/:name/import_version",
    schema: {
      tags: TAGS,
      summary: "Import a new version of an imported key.",
      description:
        "Adds a wrapped key as the next version of an imported key. The unwrapped key must be of the key's type. Works whatever `allow_rotation` is.",
      params: nameParams,
      body: {
        type: "object",
        additionalProperties: false,
        required: ["ciphertext"],
        properties: wrappedKeyProperties,
      },
    },
    handler: async (request, reply) => {
      const outcome = await serviceFor(request).importKeyVersion(request.params.name, {
        ciphertext: request.body.ciphertext,
        hashFunction: request.body.hash_function,
      });
      return sendOutcome(request, reply, outcome);
    },
  });
}
