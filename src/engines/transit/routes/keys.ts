import type { FastifyInstance, FastifyReply, FastifyRequest, HTTPMethods } from "fastify";
import { KeywardError } from "../../../errors.ts";
import type { KeyType } from "../../../keys/types.ts";
import { sendData, sendNoContent, sendOutcome } from "./reply.ts";
import type { ServiceResolver } from "./resolver.ts";
import {
  defaultEmptyBody,
  keyType,
  MAX_KEY_VERSION,
  nameParams,
  TAGS,
  WRITE_METHODS,
} from "./schemas.ts";

interface NameParams {
  name: string;
}

const duration = {
  type: ["integer", "string"],
  maxLength: 64,
  minimum: 0,
  description:
    'Seconds, or a duration string such as "24h" or "1h30m". 0 disables automatic rotation; otherwise at least 1h and at most 100 years.',
} as const;

const versionNumber = (description: string) =>
  ({ type: "integer", minimum: 0, maximum: MAX_KEY_VERSION, description }) as const;

interface CreateBody {
  type?: KeyType;
  derived?: boolean;
  convergent_encryption?: boolean;
  exportable?: boolean;
  allow_plaintext_backup?: boolean;
  auto_rotate_period?: number | string;
  key_size?: number;
  activation_date?: string;
}

interface ConfigBody {
  min_decryption_version?: number;
  min_encryption_version?: number;
  deletion_allowed?: boolean;
  exportable?: boolean;
  allow_plaintext_backup?: boolean;
  auto_rotate_period?: number | string;
}

const LIFECYCLE_NOTE =
  "Keyward adds `state`, `activation_date`, `deletion_date` and `compromised_at` to Vault's fields.";

/**
 * Boolean strings as Go's `strconv.ParseBool` reads them, which Vault uses
 * for `list`. node-vault, for one, sends `list=1`.
 */
const TRUE_STRINGS = ["1", "t", "T", "TRUE", "true", "True"] as const;
const FALSE_STRINGS = ["0", "f", "F", "FALSE", "false", "False"] as const;

/** Key management: create, read, list, configure, rotate and trim. */
export async function registerKeyRoutes(app: FastifyInstance, serviceFor: ServiceResolver) {
  const listKeys = async (request: FastifyRequest, reply: FastifyReply) => {
    const keys = await serviceFor(request).listKeys();
    // Vault returns 404 for an empty list.
    if (keys.length === 0) throw new KeywardError("not_found", "no keys found");
    return sendData(request, reply, { keys });
  };

  // NOTE: Node's HTTP parser (llhttp, Node 20) rejects a LIST request with 400
  // before Fastify receives it, and Fastify cannot register the method, so
  // this route exists only on servers that can. Clients that send LIST get
  // that 400; GET with list=true works everywhere.
  if (app.supportedMethods.includes("LIST")) {
    app.route({
      method: "LIST" as HTTPMethods,
      url: "/keys",
      schema: {
        tags: TAGS,
        summary: "List key names.",
        description:
          "Returns the names of all keys in ascending order. Like Vault, returns 404 when there are none.",
      },
      handler: listKeys,
    });
  }

  app.route<{ Querystring: { list?: string } }>({
    method: "GET",
    url: "/keys",
    schema: {
      tags: TAGS,
      summary: "List key names (GET with list=true).",
      description:
        "Returns the names of all keys in ascending order, as Vault's `LIST /keys` does. Like Vault, returns 404 when there are none.",
      querystring: {
        type: "object",
        properties: {
          list: {
            type: "string",
            enum: [...TRUE_STRINGS, ...FALSE_STRINGS],
            description: "Set to true (or 1) to list.",
          },
        },
      },
    },
    handler: async (request, reply) => {
      const list = request.query.list;
      if (list === undefined || !(TRUE_STRINGS as readonly string[]).includes(list)) {
        throw new KeywardError(
          "method_not_allowed",
          "listing keys needs LIST or GET with list=true",
        );
      }
      return listKeys(request, reply);
    },
  });

  app.route<{ Params: NameParams; Body: CreateBody }>({
    method: WRITE_METHODS,
    preValidation: defaultEmptyBody,
    url: "/keys/:name",
    // Policies distinguish creating a key from writing to an existing one.
    config: {
      operation: async (request) => {
        const { name } = request.params as NameParams;
        const exists = await serviceFor(request)
          .readKey(name)
          .then(
            () => true,
            () => false,
          );
        return exists ? "update" : "create";
      },
    },
    schema: {
      tags: TAGS,
      summary: "Create a key.",
      description:
        "Creates a named key of the given type. Creating a key that exists changes nothing and returns it with a warning, as Vault does. Set `activation_date` to create a `pre-active` key that becomes active at that time (Keyward extension).",
      params: nameParams,
      body: {
        type: "object",
        additionalProperties: false,
        properties: {
          type: keyType,
          derived: {
            type: "boolean",
            description: "Derive a key per `context` for every operation.",
          },
          convergent_encryption: {
            type: "boolean",
            description:
              "The same plaintext and context give the same ciphertext. Needs `derived`.",
          },
          exportable: {
            type: "boolean",
            description: "Allow export of the key material. Cannot be undone.",
          },
          allow_plaintext_backup: {
            type: "boolean",
            description: "Allow plaintext backups of the key. Cannot be undone.",
          },
          auto_rotate_period: duration,
          key_size: {
            type: "integer",
            minimum: 1,
            maximum: 4096,
            description: "Key size in bytes for `hmac` keys.",
          },
          activation_date: {
            type: "string",
            maxLength: 64,
            description: "ISO 8601 time when the key becomes active (Keyward extension).",
          },
        },
      },
    },
    handler: async (request, reply) => {
      const body = request.body ?? {};
      const outcome = await serviceFor(request).createKey(request.params.name, {
        type: body.type,
        derived: body.derived,
        convergentEncryption: body.convergent_encryption,
        exportable: body.exportable,
        allowPlaintextBackup: body.allow_plaintext_backup,
        autoRotatePeriod: body.auto_rotate_period,
        keySize: body.key_size,
        activationDate: body.activation_date,
      });
      return sendOutcome(request, reply, outcome);
    },
  });

  app.route<{ Params: NameParams }>({
    method: "GET",
    url: "/keys/:name",
    schema: {
      tags: TAGS,
      summary: "Read a key.",
      description: `Returns the key's settings and, per version, its creation time or public key; never secret material. ${LIFECYCLE_NOTE}`,
      params: nameParams,
    },
    handler: async (request, reply) =>
      sendData(request, reply, await serviceFor(request).readKey(request.params.name)),
  });

  app.route<{ Params: NameParams; Body: ConfigBody }>({
    method: WRITE_METHODS,
    preValidation: defaultEmptyBody,
    url: "/keys/:name/config",
    schema: {
      tags: TAGS,
      summary: "Configure a key.",
      description:
        "Changes the key's tunable settings; fields left out keep their values. Turning `deletion_allowed` off also cancels a scheduled deletion (Keyward extension).",
      params: nameParams,
      body: {
        type: "object",
        additionalProperties: false,
        properties: {
          min_decryption_version: versionNumber(
            "Oldest version allowed to decrypt, verify signatures and verify HMACs.",
          ),
          min_encryption_version: versionNumber(
            "Oldest version allowed to encrypt, sign and compute HMACs; 0 means the latest.",
          ),
          deletion_allowed: { type: "boolean", description: "Allow the key to be deleted." },
          exportable: {
            type: "boolean",
            description: "Allow export of the key material. Cannot be undone.",
          },
          allow_plaintext_backup: {
            type: "boolean",
            description: "Allow plaintext backups of the key. Cannot be undone.",
          },
          auto_rotate_period: duration,
        },
      },
    },
    handler: async (request, reply) => {
      const body = request.body ?? {};
      const outcome = await serviceFor(request).configureKey(request.params.name, {
        minDecryptionVersion: body.min_decryption_version,
        minEncryptionVersion: body.min_encryption_version,
        deletionAllowed: body.deletion_allowed,
        exportable: body.exportable,
        allowPlaintextBackup: body.allow_plaintext_backup,
        autoRotatePeriod: body.auto_rotate_period,
      });
      return sendOutcome(request, reply, outcome);
    },
  });

  app.route<{ Params: NameParams }>({
    method: WRITE_METHODS,
    preValidation: defaultEmptyBody,
    url: "/keys/:name/rotate",
    schema: {
      tags: TAGS,
      summary: "Rotate a key.",
      description:
        "Adds a new key version; encryption, signing and HMAC use it from now on. Returns the key.",
      params: nameParams,
      body: { type: "object", additionalProperties: false, properties: {} },
    },
    handler: async (request, reply) =>
      sendOutcome(request, reply, await serviceFor(request).rotateKey(request.params.name)),
  });

  app.route<{ Params: NameParams; Body: { min_available_version: number } }>({
    method: WRITE_METHODS,
    preValidation: defaultEmptyBody,
    url: "/keys/:name/trim",
    schema: {
      tags: TAGS,
      summary: "Trim old key versions.",
      description:
        "Permanently deletes the versions below `min_available_version`, which may be at most the smaller of `min_decryption_version` and `min_encryption_version`.",
      params: nameParams,
      body: {
        type: "object",
        additionalProperties: false,
        required: ["min_available_version"],
        properties: {
          min_available_version: {
            type: "integer",
            minimum: 1,
            maximum: MAX_KEY_VERSION,
            description: "The oldest version to keep.",
          },
        },
      },
    },
    handler: async (request, reply) => {
      await serviceFor(request).trimKey(request.params.name, request.body.min_available_version);
      return sendNoContent(reply);
    },
  });
}
