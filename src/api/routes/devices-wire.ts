import { MAX_BOOTSTRAP_USES } from "../../devices/bootstrap-tokens.ts";
import { MAX_LIST_ENTRIES } from "../../devices/names.ts";
import { MAX_SECRET_LENGTH, MIN_SECRET_LENGTH } from "../../devices/secrets.ts";
import { MAX_STATE_WAIT_SECONDS } from "../../devices/service.ts";
import { SECRET_ENCODINGS } from "../../devices/types.ts";
import { durationSchema, objectBody } from "./auth-shared.ts";

/** JSON schemas of the device routes. Names are checked by the service, which names the exact rule. */

export const TAGS = ["devices"];

const nameSchema = { type: "string", minLength: 1, maxLength: 128 } as const;

export const nameParams = {
  type: "object",
  required: ["name"],
  properties: { name: { ...nameSchema, description: "Device or shared secret name." } },
} as const;

const nameList = (description: string) =>
  ({
    type: "array",
    maxItems: MAX_LIST_ENTRIES,
    items: { type: "string", maxLength: 128 },
    description,
  }) as const;

export const configBody = objectBody(
  {
    pki_mount: { ...nameSchema, description: "PKI mount whose role signs identity certificates." },
    pki_role: {
      ...nameSchema,
      description: "The role that signs them; it must store certificates.",
    },
    identity_ttl: durationSchema("Lifetime of identity certificates; default: the role's TTL."),
  },
  ["pki_mount", "pki_role"],
);

export const deviceBody = objectBody({
  tags: {
    type: "object",
    maxProperties: MAX_LIST_ENTRIES,
    additionalProperties: { type: "string", maxLength: 256 },
    description: 'Tags as string pairs, such as {"site": "berlin"}. Omitted: unchanged.',
  },
  groups: nameList(
    "Groups the device belongs to; shared secrets reach devices by group. Omitted: unchanged.",
  ),
});

export const tokenBody = objectBody({
  ttl: durationSchema('How long the token is valid; default "24h", at most 365 days.'),
  num_uses: {
    type: "integer",
    minimum: 1,
    maximum: MAX_BOOTSTRAP_USES,
    description: "How many enrolments the token allows; default 1.",
  },
});

export const secretBody = objectBody({
  groups: nameList("Devices in these groups receive the secret. Omitted: unchanged."),
  devices: nameList("These devices receive the secret. Omitted: unchanged."),
  length: {
    type: "integer",
    minimum: MIN_SECRET_LENGTH,
    maximum: MAX_SECRET_LENGTH,
    description: "Random bytes in the value; default 32. Fixed at creation.",
  },
  encoding: {
    type: "string",
    enum: [...SECRET_ENCODINGS],
    description:
      'How the value is written for the device: "base64" (default) or "hex". Fixed at creation.',
  },
});

const csrSchema = {
  type: "string",
  minLength: 1,
  maxLength: 65_536,
  description:
    "PKCS#10 CSR in PEM with an EC P-256 or Ed25519 key; its common name must be the device name.",
} as const;

/** The JWK members are checked by the service, which names the member at fault. */
const encryptionKeySchema = {
  type: "object",
  maxProperties: 16,
  description:
    'The device\'s public encryption key as a JWK: {"kty": "EC", "crv": "P-256", "x": ..., "y": ...}, without "d".',
} as const;

export const enrolBody = objectBody(
  {
    bootstrap_token: {
      type: "string",
      minLength: 1,
      maxLength: 256,
      description: "The bootstrap token created for the device.",
    },
    csr: csrSchema,
    encryption_key: encryptionKeySchema,
  },
  ["bootstrap_token", "csr", "encryption_key"],
);

export const renewBody = objectBody(
  {
    csr: csrSchema,
    encryption_key: {
      ...encryptionKeySchema,
      description: `${encryptionKeySchema.description} Omitted: the current key stays.`,
    },
  },
  ["csr"],
);

export const appliedBody = objectBody(
  {
    artifacts: {
      type: "array",
      maxItems: 1024,
      items: objectBody(
        {
          id: { type: "string", minLength: 1, maxLength: 512 },
          version: { type: "integer", minimum: 0 },
        },
        ["id", "version"],
      ),
      description: "The artifacts the agent installed, each with the version it installed.",
    },
  },
  ["artifacts"],
);

export const stateQuery = {
  type: "object",
  additionalProperties: false,
  properties: {
    since: {
      type: "string",
      maxLength: 128,
      description:
        "The etag of the state the agent has. The response is 304 while the state still has it.",
    },
    wait: {
      type: "integer",
      minimum: 0,
      maximum: MAX_STATE_WAIT_SECONDS,
      default: 0,
      description: `Seconds to wait for a change when the state has etag \`since\` (0-${MAX_STATE_WAIT_SECONDS}).`,
    },
  },
} as const;
