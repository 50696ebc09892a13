import type { FastifyRequest } from "fastify";

import type { PkiService } from "../service.ts";

// The reply helpers every route module uses; shared with the rest of the API.
export { requireList, sendData, sendRaw } from "../../../api/envelope.ts";

/** Returns the PKI service of the request's mount; may throw `sealed` or `route_not_found`. */
export type PkiServiceResolver = (request: FastifyRequest) => PkiService;

export const TAGS = ["pki"];

/** Accepts both POST and PUT, as Vault does for every write. */
export const WRITE_METHODS: ["POST", "PUT"] = ["POST", "PUT"];

/** Routes that need no token, as the same paths in Vault's PKI engine: CA certificates, CRLs and OCSP. */
export const PUBLIC = { public: true } as const;

/** A Vault list field: an array of strings, or one comma-separated string. */
export const stringList = (description: string) =>
  ({
    anyOf: [
      { type: "array", items: { type: "string", maxLength: 1024 }, maxItems: 1000 },
      { type: "string", maxLength: 65536 },
    ],
    description,
  }) as const;

/** A duration: seconds, or a string such as "72h". */
export const duration = (description: string) =>
  ({ type: ["integer", "string"], minimum: 0, maxLength: 64, description }) as const;

export const shortString = (description: string) =>
  ({ type: "string", maxLength: 1024, description }) as const;

/** A PEM field: a certificate, CSR, key or bundle. */
export const pemField = (description: string) =>
  ({ type: "string", maxLength: 1024 * 1024, description }) as const;

export const issuerRefParams = {
  type: "object",
  required: ["issuer_ref"],
  properties: {
    issuer_ref: {
      type: "string",
      minLength: 1,
      maxLength: 128,
      description: "Issuer id, name, or `default`.",
    },
  },
} as const;

export const roleParams = {
  type: "object",
  required: ["role"],
  properties: { role: { type: "string", minLength: 1, maxLength: 128, description: "Role name." } },
} as const;

export const listQuery = {
  type: "object",
  properties: {
    list: { type: "string", maxLength: 8, description: "Set to true (or 1) to list." },
  },
} as const;
