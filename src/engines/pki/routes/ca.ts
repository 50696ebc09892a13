import type { FastifyInstance } from "fastify";
import type { CaRequest } from "../ca-operations.ts";
import { OUTPUT_FORMATS } from "../context.ts";
import { PRIVATE_KEY_FORMATS } from "../key-pairs.ts";
import {
  duration,
  issuerRefParams,
  type PkiServiceResolver,
  pemField,
  sendData,
  shortString,
  stringList,
  TAGS,
  WRITE_METHODS,
} from "./shared.ts";

const typeParams = {
  type: "object",
  required: ["type"],
  properties: { type: { type: "string", maxLength: 16, description: "`internal` or `exported`." } },
} as const;

const subjectProperties = {
  common_name: shortString("Subject common name."),
  alt_names: stringList("DNS names and email addresses for the subject alternative names."),
  ip_sans: stringList("IP addresses for the subject alternative names."),
  uri_sans: stringList("URIs for the subject alternative names."),
  ou: stringList("Organizational units."),
  organization: stringList("Organizations."),
  country: stringList("Two-letter country codes."),
  locality: stringList("Localities."),
  province: stringList("Provinces or states."),
  street_address: stringList("Street addresses."),
  postal_code: stringList("Postal codes."),
  serial_number: shortString("The subject's serialNumber attribute (not the certificate serial)."),
} as const;

const caProperties = {
  ...subjectProperties,
  ttl: duration(
    "Validity, in seconds or as a duration such as 87600h; at most the mount's max_lease_ttl.",
  ),
  not_after: shortString("notAfter as an RFC 3339 time; wins over ttl."),
  not_before_duration: duration("How far notBefore is backdated. Default 30s."),
  max_path_length: {
    type: "integer",
    minimum: -1,
    maximum: 255,
    description: "Path length constraint; -1 for none.",
  },
  permitted_dns_domains: stringList("DNS name constraints: permitted subtrees."),
  excluded_dns_domains: stringList("DNS name constraints: excluded subtrees."),
  format: {
    type: "string",
    enum: [...OUTPUT_FORMATS],
    description: "pem (default), der or pem_bundle.",
  },
  private_key_format: {
    type: "string",
    enum: [...PRIVATE_KEY_FORMATS],
    description: "der (PKCS#1 or SEC 1, the default) or pkcs8.",
  },
  exclude_cn_from_sans: {
    type: "boolean",
    description: "Accepted for Vault compatibility; CA names never include the CN as a SAN.",
  },
} as const;

/** Body of the CA generation routes; `issuers/rotate/prepare` extends it. */
export const generateBody = {
  type: "object",
  additionalProperties: false,
  properties: {
    ...caProperties,
    key_type: { type: "string", maxLength: 16, description: "rsa (default), ec or ed25519." },
    key_bits: {
      type: "integer",
      minimum: 0,
      maximum: 8192,
      description: "RSA 2048/3072/4096, EC 256/384; 0 for the default.",
    },
    key_name: shortString("Name for the new key."),
    issuer_name: shortString("Name for the new issuer."),
  },
} as const;

const signIntermediateBody = {
  type: "object",
  additionalProperties: false,
  required: ["csr"],
  properties: {
    ...caProperties,
    csr: pemField("The intermediate CA's CSR, PEM."),
    use_csr_values: {
      type: "boolean",
      description: "Use the CSR's subject and SANs instead of the request's.",
    },
  },
} as const;

/** Root and intermediate CA generation, signing and import. */
export async function registerCaRoutes(app: FastifyInstance, serviceFor: PkiServiceResolver) {
  for (const path of ["/root/generate/:type", "/root/rotate/:type"]) {
    app.route<{ Params: { type: string }; Body: CaRequest }>({
      method: WRITE_METHODS,
      url: path,
      schema: {
        tags: TAGS,
        summary: path.startsWith("/root/generate")
          ? "Generate a root CA."
          : "Generate a new root CA for rotation.",
        description:
          "Generates a key pair and a self-signed CA certificate and stores them as a new issuer. The first issuer becomes the default; later ones are published in `ca_chain` and become the default through `root/replace` or `config/issuers`. The private key is returned only for type `exported`.",
        params: typeParams,
        body: generateBody,
      },
      handler: async (request, reply) =>
        sendData(
          request,
          reply,
          await serviceFor(request).generateRoot(request.params.type, request.body),
        ),
    });
  }

  app.route<{ Body: { default?: string } }>({
    method: WRITE_METHODS,
    url: "/root/replace",
    schema: {
      tags: TAGS,
      summary: "Make another issuer the default.",
      body: {
        type: "object",
        additionalProperties: false,
        properties: {
          default: {
            type: "string",
            maxLength: 128,
            description: "Issuer id or name. Default `next`, which is not supported: name one.",
          },
        },
      },
    },
    handler: async (request, reply) => {
      const config = await serviceFor(request).issuers.setConfig({
        defaultIssuerId: request.body.default ?? "",
      });
      return sendData(request, reply, { default: config.defaultIssuerId });
    },
  });

  app.route<{ Params: { type: string }; Body: CaRequest }>({
    method: WRITE_METHODS,
    url: "/intermediate/generate/:type",
    schema: {
      tags: TAGS,
      summary: "Generate an intermediate CA's key and CSR.",
      params: typeParams,
      body: generateBody,
    },
    handler: async (request, reply) =>
      sendData(
        request,
        reply,
        await serviceFor(request).generateIntermediate(request.params.type, request.body),
      ),
  });

  app.route<{ Body: { certificate: string } }>({
    method: WRITE_METHODS,
    url: "/intermediate/set-signed",
    schema: {
      tags: TAGS,
      summary: "Import the signed intermediate CA certificate.",
      description:
        "The first certificate must match a key from intermediate/generate; later certificates are its chain.",
      body: {
        type: "object",
        additionalProperties: false,
        required: ["certificate"],
        properties: {
          certificate: pemField("The signed certificate, optionally followed by its chain, PEM."),
        },
      },
    },
    handler: async (request, reply) =>
      sendData(request, reply, await serviceFor(request).setSigned(request.body.certificate)),
  });

  for (const path of ["/config/ca", "/issuers/import/bundle", "/issuers/import/cert"]) {
    app.route<{ Body: { pem_bundle: string } }>({
      method: WRITE_METHODS,
      url: path,
      schema: {
        tags: TAGS,
        summary: "Import CA certificates, with or without their keys.",
        description:
          "Imports each CA certificate in the bundle as an issuer and each private key as a key. A certificate whose key is not imported can be served but cannot sign.",
        body: {
          type: "object",
          additionalProperties: false,
          required: ["pem_bundle"],
          properties: { pem_bundle: pemField("PEM certificates and private keys.") },
        },
      },
      handler: async (request, reply) =>
        sendData(request, reply, await serviceFor(request).importBundle(request.body.pem_bundle)),
    });
  }

  app.route<{ Body: CaRequest }>({
    method: WRITE_METHODS,
    url: "/root/sign-intermediate",
    schema: {
      tags: TAGS,
      summary: "Sign an intermediate CA's CSR with the default issuer.",
      body: signIntermediateBody,
    },
    handler: async (request, reply) =>
      sendData(request, reply, await serviceFor(request).signIntermediate("default", request.body)),
  });

  app.route<{ Params: { issuer_ref: string }; Body: CaRequest }>({
    method: WRITE_METHODS,
    url: "/issuer/:issuer_ref/sign-intermediate",
    schema: {
      tags: TAGS,
      summary: "Sign an intermediate CA's CSR with an issuer (also used to cross-sign).",
      params: issuerRefParams,
      body: signIntermediateBody,
    },
    handler: async (request, reply) =>
      sendData(
        request,
        reply,
        await serviceFor(request).signIntermediate(request.params.issuer_ref, request.body),
      ),
  });
}
