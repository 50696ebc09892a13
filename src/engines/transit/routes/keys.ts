import type { FastifyInstance, FastifyReply, FastifyRequest, HTTPMethods } from "fastify";
import { KeywardError } from "../../../errors.ts";
import type { KeyType } from "../../../keys/types.ts";
import { type KeySearchQuery, type KeySearchResult, MAX_LIST_LIMIT } from "../key-search.ts";
import { MAX_KEY_NAME_LENGTH } from "../store.ts";
import { sendData, sendNoContent, sendOutcome, toWire } from "./reply.ts";
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
  hsm?: boolean;
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
  "Keyward adds `state`, `activation_date`, `deletion_date`, `compromised_at`, `deactivated_at` and `destroyed_at` to Vault's fields.";

/**
 * Boolean strings as Go's `strconv.ParseBool` reads them, which Vault uses
 * for `list`. node-vault, for one, sends `list=1`.
 */
const TRUE_STRINGS = ["1", "t", "T", "TRUE", "true", "True"] as const;
const FALSE_STRINGS = ["0", "f", "F", "FALSE", "false", "False"] as const;

/** The list endpoint's query parameters (Keyward adds every one but `list`). */
interface ListQuery {
  list?: string;
  after?: string;
  prefix?: string;
  limit?: number;
  expires_after?: string;
  expires_before?: string;
  rotates_after?: string;
  rotates_before?: string;
}

const timeParameter = (description: string) =>
  ({ type: "string", minLength: 1, maxLength: 64, description }) as const;

/** The query parameters of both list routes. Unknown parameters are ignored, as Vault ignores them. */
const listQueryProperties = {
  after: {
    type: "string",
    minLength: 1,
    maxLength: 2 * MAX_KEY_NAME_LENGTH,
    description:
      "Start after this key name; for a time window, pass the `next_after` of the previous page.",
  },
  prefix: {
    type: "string",
    minLength: 1,
    maxLength: MAX_KEY_NAME_LENGTH,
    description: "Only keys whose name starts with this.",
  },
  limit: {
    type: "integer",
    minimum: 1,
    maximum: MAX_LIST_LIMIT,
    description: `At most this many keys (1 to ${MAX_LIST_LIMIT}); \`next_after\` is set when more follow. Without it, every match is returned.`,
  },
  expires_after: timeParameter(
    "Keys whose scheduled deletion is at or after this ISO 8601 time, in time order.",
  ),
  expires_before: timeParameter("Keys whose scheduled deletion is before this ISO 8601 time."),
  rotates_after: timeParameter(
    "Keys whose automatic rotation falls due at or after this ISO 8601 time, in time order.",
  ),
  rotates_before: timeParameter(
    "Keys whose automatic rotation falls due before this ISO 8601 time.",
  ),
} as const;

const LIST_DESCRIPTION =
  "Without other parameters, returns the names of all keys in ascending order and, like Vault, 404 when there are none. " +
  "With `after`, `prefix`, `limit` or a time window (Keyward extensions), returns one page with status 200 even when it is empty, " +
  "`next_after` when more keys follow, and for a time window `key_info` with each key's `deletion_date` or `next_rotation_date`. " +
  "`prefix` cannot be combined with a time window, nor an expiry window with a rotation window.";

/** Converts the query parameters to a search, or returns undefined for a plain Vault list. */
function searchOf(query: ListQuery): KeySearchQuery | undefined {
  const search: KeySearchQuery = {
    after: query.after,
    prefix: query.prefix,
    limit: query.limit,
    expiresAfter: query.expires_after,
    expiresBefore: query.expires_before,
    rotatesAfter: query.rotates_after,
    rotatesBefore: query.rotates_before,
  };
  return Object.values(search).some((value) => value !== undefined) ? search : undefined;
}

/** The search result as the wire sends it: snake_case names, time info per key. */
function wireSearchResult(result: KeySearchResult): Record<string, unknown> {
  const data: Record<string, unknown> = { keys: result.keys };
  if (result.keyInfo !== undefined) {
    data.key_info = Object.fromEntries(
      Object.entries(result.keyInfo).map(([name, info]) => [name, toWire(info)]),
    );
  }
  if (result.nextAfter !== undefined) data.next_after = result.nextAfter;
  return data;
}

/** Key management: create, read, list, configure, rotate and trim. */
export async function registerKeyRoutes(app: FastifyInstance, serviceFor: ServiceResolver) {
  const listKeys = async (request: FastifyRequest, reply: FastifyReply) => {
    const service = serviceFor(request);
    const search = searchOf((request.query ?? {}) as ListQuery);
    if (search !== undefined) {
      return sendData(request, reply, wireSearchResult(await service.searchKeys(search)));
    }
    const keys = await service.listKeys();
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
        summary: "List or search key names.",
        description: LIST_DESCRIPTION,
        querystring: { type: "object", properties: listQueryProperties },
      },
      handler: listKeys,
    });
  }

  app.route<{ Querystring: ListQuery }>({
    method: "GET",
    url: "/keys",
    schema: {
      tags: TAGS,
      summary: "List or search key names (GET with list=true).",
      description: `Lists keys as Vault's \`LIST /keys\` does. ${LIST_DESCRIPTION}`,
      querystring: {
        type: "object",
        properties: {
          list: {
            type: "string",
            enum: [...TRUE_STRINGS, ...FALSE_STRINGS],
            description: "Set to true (or 1) to list.",
          },
          ...listQueryProperties,
        },
      },
    },
    handler: async (request, reply) => {
      const list = request.query.list;
      if (list === undefined || !(TRUE_STRINGS as readonly string[]).includes(list)) {
        throw new KeywardError("method_not_allowed", "listing keys needs GET with list=true");
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
        "Creates a named key of the given type. Creating a key that exists changes nothing and returns it with a warning, as Vault does. Set `activation_date` to create a `pre-active` key that becomes active at that time (Keyward extension). Set `hsm` to keep every version as a non-extractable object in the server's HSM (Keyward extension).",
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
          hsm: {
            type: "boolean",
            description:
              "Keep every version in the HSM set by --hsm-pkcs11-library, where encryption, decryption and signing run (Keyward extension). Types aes256-gcm96 and ecdsa-p256 only; not with exportable, allow_plaintext_backup, derived or convergent_encryption.",
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
        hsm: body.hsm,
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
