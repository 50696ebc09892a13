import type { FastifyInstance, FastifyRequest } from "fastify";
import { KeywardError } from "../../../errors.ts";
import type { TransitImportRequest } from "../ca-transit.ts";
import { encodeCertificate } from "../context.ts";
import { issuerUsage, pemDer } from "../issuers.ts";
import { colonSerial } from "../key-pairs.ts";
import type { PkiService } from "../service.ts";
import {
  type IssuerRecord,
  LEAF_NOT_AFTER_BEHAVIORS,
  type LeafNotAfterBehavior,
} from "../types.ts";
import {
  issuerRefParams,
  listQuery,
  type PkiServiceResolver,
  PUBLIC,
  pemField,
  requireList,
  sendData,
  sendRaw,
  shortString,
  TAGS,
  WRITE_METHODS,
} from "./shared.ts";

const PEM_TYPE = "application/pem-certificate-chain";
const DER_TYPE = "application/pkix-cert";

async function issuerInfo(service: PkiService, issuer: IssuerRecord) {
  const chain = await service.issuers.chain(issuer);
  const urls = await service.config.urls();
  return {
    issuer_id: issuer.id,
    issuer_name: issuer.name,
    key_id: issuer.keyId,
    certificate: issuer.certificatePem,
    ca_chain: chain,
    serial_number: colonSerial(issuer.serialHex),
    leaf_not_after_behavior: issuer.leafNotAfterBehavior,
    manual_chain: null,
    usage: issuerUsage(issuer).join(","),
    revoked: issuer.revokedAt !== undefined,
    ...(issuer.revokedAt !== undefined
      ? {
          revocation_time: Math.floor(Date.parse(issuer.revokedAt) / 1000),
          revocation_time_rfc3339: issuer.revokedAt,
        }
      : {}),
    issuing_certificates: urls.issuingCertificates,
    crl_distribution_points: urls.crlDistributionPoints,
    ocsp_servers: urls.ocspServers,
  };
}

/**
 * Returns the certificates a mount publishes as its chain: the default
 * issuer's chain, then every other issuer, so a new issuer from `root/rotate` is
 * distributed to relying parties before it becomes the default.
 */
async function publishedChain(service: PkiService): Promise<string[]> {
  const chain = await service.issuers.chain(await service.issuers.resolve("default"));
  for (const issuer of await service.issuers.list()) {
    if (!chain.includes(issuer.certificatePem)) chain.push(issuer.certificatePem);
  }
  return chain;
}

/** Issuers: list, read, update, delete, the default issuer, and the CA download paths. */
export async function registerIssuerRoutes(app: FastifyInstance, serviceFor: PkiServiceResolver) {
  app.get("/issuers", {
    config: PUBLIC,
    schema: { tags: TAGS, summary: "List issuers (GET with list=true).", querystring: listQuery },
    handler: async (request, reply) => {
      requireList(request);
      const service = serviceFor(request);
      const issuers = await service.issuers.list();
      const config = await service.issuers.config();
      if (issuers.length === 0) throw new KeywardError("not_found", "no issuers found");
      const keyInfo: Record<string, object> = {};
      for (const issuer of issuers) {
        keyInfo[issuer.id] = {
          issuer_name: issuer.name,
          is_default: issuer.id === config.defaultIssuerId,
          key_id: issuer.keyId,
          serial_number: colonSerial(issuer.serialHex),
        };
      }
      return sendData(request, reply, {
        keys: issuers.map((issuer) => issuer.id),
        key_info: keyInfo,
      });
    },
  });

  app.get<{ Params: { issuer_ref: string } }>("/issuer/:issuer_ref", {
    schema: { tags: TAGS, summary: "Read an issuer.", params: issuerRefParams },
    handler: async (request, reply) => {
      const service = serviceFor(request);
      const issuer = await service.issuers.resolve(request.params.issuer_ref);
      return sendData(request, reply, await issuerInfo(service, issuer));
    },
  });

  app.route<{
    Params: { issuer_ref: string };
    Body: { issuer_name?: string; leaf_not_after_behavior?: LeafNotAfterBehavior };
  }>({
    method: [...WRITE_METHODS, "PATCH"],
    url: "/issuer/:issuer_ref",
    schema: {
      tags: TAGS,
      summary: "Update an issuer's name or leaf_not_after_behavior.",
      params: issuerRefParams,
      body: {
        type: "object",
        additionalProperties: false,
        properties: {
          issuer_name: shortString("New name; empty to remove it."),
          leaf_not_after_behavior: {
            type: "string",
            enum: [...LEAF_NOT_AFTER_BEHAVIORS],
            description:
              "For certificates past the issuer's notAfter: err (default), truncate or permit.",
          },
        },
      },
    },
    handler: async (request, reply) => {
      const service = serviceFor(request);
      const issuer = await service.issuers.updateIssuer(request.params.issuer_ref, {
        ...(request.body.issuer_name !== undefined ? { name: request.body.issuer_name } : {}),
        ...(request.body.leaf_not_after_behavior !== undefined
          ? { leafNotAfterBehavior: request.body.leaf_not_after_behavior }
          : {}),
      });
      return sendData(request, reply, await issuerInfo(service, issuer));
    },
  });

  app.route<{ Body: TransitImportRequest }>({
    method: WRITE_METHODS,
    url: "/issuers/import/transit",
    schema: {
      tags: TAGS,
      summary: "Import an external CA certificate whose private key is a transit key.",
      description:
        "The latest version of the transit key must hold the certificate's public key; the issuer then signs through that version.",
      body: {
        type: "object",
        additionalProperties: false,
        required: ["certificate", "transit_key"],
        properties: {
          certificate: pemField("The CA certificate, PEM."),
          transit_mount: shortString("Mount path of the transit engine; default transit."),
          transit_key: shortString("Name of the transit key."),
          issuer_name: shortString("Name of the new issuer."),
        },
      },
    },
    handler: async (request, reply) =>
      sendData(request, reply, await serviceFor(request).importTransitIssuer(request.body)),
  });

  app.route<{ Params: { issuer_ref: string } }>({
    method: WRITE_METHODS,
    url: "/issuer/:issuer_ref/revoke",
    schema: {
      tags: TAGS,
      summary: "Revoke an issuer.",
      description:
        "The issuer stops issuing certificates, and its certificate joins the CRL of the issuer in this mount that signed it.",
      params: issuerRefParams,
    },
    handler: async (request, reply) => {
      const service = serviceFor(request);
      const issuer = await service.revocation.revokeIssuer(request.params.issuer_ref);
      return sendData(request, reply, await issuerInfo(service, issuer));
    },
  });

  app.delete<{ Params: { issuer_ref: string } }>("/issuer/:issuer_ref", {
    schema: { tags: TAGS, summary: "Delete an issuer (its key stays).", params: issuerRefParams },
    handler: async (request, reply) => {
      await serviceFor(request).issuers.deleteIssuer(request.params.issuer_ref);
      return reply.code(204).send();
    },
  });

  for (const format of ["json", "pem", "der"] as const) {
    app.get<{ Params: { issuer_ref: string } }>(`/issuer/:issuer_ref/${format}`, {
      config: PUBLIC,
      schema: {
        tags: TAGS,
        summary: `Download an issuer's certificate (${format}).`,
        params: issuerRefParams,
      },
      handler: async (request, reply) => {
        const service = serviceFor(request);
        const issuer = await service.issuers.resolve(request.params.issuer_ref);
        if (format === "pem") return sendRaw(reply, PEM_TYPE, `${issuer.certificatePem}\n`);
        if (format === "der") return sendRaw(reply, DER_TYPE, pemDer(issuer.certificatePem));
        return sendData(request, reply, {
          certificate: issuer.certificatePem,
          ca_chain: await service.issuers.chain(issuer),
          issuer_id: issuer.id,
          issuer_name: issuer.name,
        });
      },
    });
  }

  app.get("/config/issuers", {
    schema: { tags: TAGS, summary: "Read the default issuer." },
    handler: async (request, reply) => {
      const config = await serviceFor(request).issuers.config();
      return sendData(request, reply, {
        default: config.defaultIssuerId,
        default_follows_latest_issuer: config.defaultFollowsLatestIssuer,
      });
    },
  });

  app.route<{ Body: { default?: string; default_follows_latest_issuer?: boolean } }>({
    method: WRITE_METHODS,
    url: "/config/issuers",
    schema: {
      tags: TAGS,
      summary: "Set the default issuer.",
      body: {
        type: "object",
        additionalProperties: false,
        properties: {
          default: { type: "string", maxLength: 128, description: "Issuer id or name." },
          default_follows_latest_issuer: {
            type: "boolean",
            description: "Make each new issuer the default.",
          },
        },
      },
    },
    handler: async (request, reply) => {
      const config = await serviceFor(request).issuers.setConfig({
        ...(request.body.default !== undefined ? { defaultIssuerId: request.body.default } : {}),
        ...(request.body.default_follows_latest_issuer !== undefined
          ? { defaultFollowsLatestIssuer: request.body.default_follows_latest_issuer }
          : {}),
      });
      return sendData(request, reply, {
        default: config.defaultIssuerId,
        default_follows_latest_issuer: config.defaultFollowsLatestIssuer,
      });
    },
  });

  const defaultIssuer = (request: FastifyRequest) => serviceFor(request).issuers.resolve("default");

  app.get("/ca", {
    config: PUBLIC,
    schema: { tags: TAGS, summary: "The default issuer's certificate, DER." },
    handler: async (request, reply) =>
      sendRaw(reply, DER_TYPE, pemDer((await defaultIssuer(request)).certificatePem)),
  });

  app.get("/ca/pem", {
    config: PUBLIC,
    schema: { tags: TAGS, summary: "The default issuer's certificate, PEM." },
    handler: async (request, reply) =>
      sendRaw(reply, PEM_TYPE, `${(await defaultIssuer(request)).certificatePem}\n`),
  });

  app.get("/ca_chain", {
    config: PUBLIC,
    schema: {
      tags: TAGS,
      summary: "The published CA chain, PEM: the default issuer's chain, then every other issuer.",
    },
    handler: async (request, reply) =>
      sendRaw(reply, PEM_TYPE, `${(await publishedChain(serviceFor(request))).join("\n")}\n`),
  });

  app.get("/cert/ca", {
    config: PUBLIC,
    schema: { tags: TAGS, summary: "The default issuer's certificate, in Vault's envelope." },
    handler: async (request, reply) => {
      const issuer = await defaultIssuer(request);
      return sendData(request, reply, {
        certificate: issuer.certificatePem,
        revocation_time: 0,
        issuer_id: issuer.id,
      });
    },
  });

  app.get("/cert/ca_chain", {
    config: PUBLIC,
    schema: { tags: TAGS, summary: "The published CA chain, in Vault's envelope." },
    handler: async (request, reply) => {
      const chain = await publishedChain(serviceFor(request));
      return sendData(request, reply, {
        certificate: chain.join("\n"),
        ca_chain: chain.map((pem) => encodeCertificate(pem, "pem")),
        revocation_time: 0,
      });
    },
  });
}
