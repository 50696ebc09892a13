import type { FastifyInstance } from "fastify";
import { parseDuration } from "../../../auth/duration.ts";
import { KeywardError } from "../../../errors.ts";
import { parseSerial } from "../inventory.ts";
import { colonSerial } from "../key-pairs.ts";
import { splitList } from "../names.ts";
import type { CertificateRecord } from "../types.ts";
import {
  duration,
  listQuery,
  type PkiServiceResolver,
  PUBLIC,
  requireList,
  sendData,
  shortString,
  stringList,
  TAGS,
  WRITE_METHODS,
} from "./shared.ts";

const serialParams = {
  type: "object",
  required: ["serial"],
  properties: {
    serial: {
      type: "string",
      minLength: 1,
      maxLength: 128,
      description: "Serial number: hex with colons or dashes, or plain hex.",
    },
  },
} as const;

function summary(record: CertificateRecord) {
  return {
    serial_number: colonSerial(record.serialHex),
    subject: record.subject,
    common_name: record.commonName,
    alt_names: record.sans,
    issuer_id: record.issuerId,
    role: record.role,
    not_before: record.notBefore,
    not_after: record.notAfter,
    revoked: record.revokedAt !== undefined,
    ...(record.revokedAt ? { revocation_time_rfc3339: record.revokedAt } : {}),
  };
}

function optionalDate(value: string | undefined, field: string): Date | undefined {
  if (value === undefined || value === "") return undefined;
  const time = Date.parse(value);
  if (Number.isNaN(time)) {
    throw new KeywardError("invalid_field", `"${field}" must be an RFC 3339 time`, { field });
  }
  return new Date(time);
}

interface SearchQuery {
  subject?: string;
  san?: string;
  issuer_ref?: string;
  expires_after?: string;
  expires_before?: string;
  include_revoked?: boolean;
}

/** Certificate inventory: read by serial, list, search and the expiry report, plus `config/urls`. */
export async function registerCertificateRoutes(
  app: FastifyInstance,
  serviceFor: PkiServiceResolver,
) {
  app.get<{ Params: { serial: string } }>("/cert/:serial", {
    config: PUBLIC,
    schema: {
      tags: TAGS,
      summary: "Read an issued certificate by serial number.",
      params: serialParams,
    },
    handler: async (request, reply) => {
      const serial = parseSerial(request.params.serial, "serial");
      const record = await serviceFor(request).inventory.get(serial);
      const revokedAt = record.revokedAt ? new Date(record.revokedAt) : undefined;
      return sendData(request, reply, {
        certificate: record.certificatePem,
        issuer_id: record.issuerId,
        revocation_time: revokedAt ? Math.floor(revokedAt.getTime() / 1000) : 0,
        ...(revokedAt ? { revocation_time_rfc3339: revokedAt.toISOString() } : {}),
      });
    },
  });

  app.get("/certs", {
    schema: {
      tags: TAGS,
      summary: "List serial numbers of issued certificates (GET with list=true).",
      querystring: listQuery,
    },
    handler: async (request, reply) => {
      requireList(request);
      const serials = await serviceFor(request).inventory.serials();
      if (serials.length === 0) throw new KeywardError("not_found", "no certificates found");
      return sendData(request, reply, { keys: serials.map(colonSerial) });
    },
  });

  app.get<{ Querystring: SearchQuery }>("/certs/search", {
    schema: {
      tags: TAGS,
      summary: "Search issued certificates (Keyward extension).",
      description:
        "Every filter given must match. `subject` and `san` match substrings, case-insensitive; the expiry window compares notAfter. Results are sorted by notAfter.",
      querystring: {
        type: "object",
        additionalProperties: false,
        properties: {
          subject: shortString("Substring of the subject, such as CN=web."),
          san: shortString("Substring of any SAN, such as dns:web.example.com."),
          issuer_ref: shortString("Issuer id or name."),
          expires_after: shortString(
            "Only certificates whose notAfter is at or after this RFC 3339 time.",
          ),
          expires_before: shortString(
            "Only certificates whose notAfter is before this RFC 3339 time.",
          ),
          include_revoked: { type: "boolean", description: "Include revoked certificates." },
        },
      },
    },
    handler: async (request, reply) => {
      const service = serviceFor(request);
      const query = request.query;
      const issuerId = query.issuer_ref
        ? (await service.issuers.resolve(query.issuer_ref)).id
        : undefined;
      const expiresAfter = optionalDate(query.expires_after, "expires_after");
      const expiresBefore = optionalDate(query.expires_before, "expires_before");
      const records = await service.inventory.search({
        ...(query.subject !== undefined ? { subject: query.subject } : {}),
        ...(query.san !== undefined ? { san: query.san } : {}),
        ...(issuerId ? { issuerId } : {}),
        ...(expiresAfter ? { expiresAfter } : {}),
        ...(expiresBefore ? { expiresBefore } : {}),
        includeRevoked: query.include_revoked ?? false,
      });
      return sendData(request, reply, { certificates: records.map(summary) });
    },
  });

  app.get<{ Querystring: { within?: string } }>("/certs/expiring", {
    schema: {
      tags: TAGS,
      summary:
        "Expiry report: unrevoked certificates that expire within a window (Keyward extension).",
      querystring: {
        type: "object",
        additionalProperties: false,
        properties: { within: duration("Window from now, such as 720h. Default 720h (30 days).") },
      },
    },
    handler: async (request, reply) => {
      const service = serviceFor(request);
      const within = parseDuration(request.query.within ?? "720h", "within");
      const now = service.context.clock();
      const until = new Date(now.getTime() + within * 1000);
      const expiring = await service.inventory.search({ expiresAfter: now, expiresBefore: until });
      const expired = await service.inventory.search({ expiresBefore: now });
      return sendData(request, reply, {
        generated_at: now.toISOString(),
        window_end: until.toISOString(),
        expiring_count: expiring.length,
        expired_count: expired.length,
        expiring: expiring.map(summary),
        expired: expired.map(summary),
      });
    },
  });

  app.get("/config/urls", {
    schema: { tags: TAGS, summary: "Read the URLs written into issued certificates." },
    handler: async (request, reply) => {
      const urls = await serviceFor(request).config.urls();
      return sendData(request, reply, {
        issuing_certificates: urls.issuingCertificates,
        crl_distribution_points: urls.crlDistributionPoints,
        ocsp_servers: urls.ocspServers,
        delta_crl_distribution_points: urls.deltaCrlDistributionPoints ?? [],
      });
    },
  });

  app.route<{ Body: Record<string, string | string[] | undefined> }>({
    method: WRITE_METHODS,
    url: "/config/urls",
    schema: {
      tags: TAGS,
      summary: "Set the URLs written into issued certificates (AIA and CRL distribution points).",
      body: {
        type: "object",
        additionalProperties: false,
        properties: {
          issuing_certificates: stringList(
            "CA certificate URLs (AIA caIssuers), such as http://host/v1/pki/ca.",
          ),
          crl_distribution_points: stringList("CRL URLs, such as http://host/v1/pki/crl."),
          ocsp_servers: stringList(
            "OCSP responder URLs (AIA OCSP), such as http://host/v1/pki/ocsp.",
          ),
          delta_crl_distribution_points: stringList(
            "Delta CRL URLs, written as Freshest CRL in base CRLs.",
          ),
        },
      },
    },
    handler: async (request, reply) => {
      const body = request.body;
      const pick = (name: string) => (body[name] === undefined ? undefined : splitList(body[name]));
      const urls = await serviceFor(request).config.setUrls({
        ...(pick("issuing_certificates")
          ? { issuingCertificates: pick("issuing_certificates") }
          : {}),
        ...(pick("crl_distribution_points")
          ? { crlDistributionPoints: pick("crl_distribution_points") }
          : {}),
        ...(pick("ocsp_servers") ? { ocspServers: pick("ocsp_servers") } : {}),
        ...(pick("delta_crl_distribution_points")
          ? { deltaCrlDistributionPoints: pick("delta_crl_distribution_points") }
          : {}),
      });
      return sendData(request, reply, {
        issuing_certificates: urls.issuingCertificates,
        crl_distribution_points: urls.crlDistributionPoints,
        ocsp_servers: urls.ocspServers,
        delta_crl_distribution_points: urls.deltaCrlDistributionPoints ?? [],
      });
    },
  });
}
