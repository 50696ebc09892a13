import type { FastifyInstance } from "fastify";
import { parseDuration } from "../../../auth/duration.ts";
import { KeywardError } from "../../../errors.ts";
import { MAX_SCAN_LIMIT } from "../../../storage/storage.ts";
import { DEFAULT_SEARCH_LIMIT, MAX_SEARCH_LIMIT } from "../certificate-search.ts";
import { parseSerial, type SerialPage } from "../inventory.ts";
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
  name_prefix?: string;
  issuer_ref?: string;
  expires_after?: string;
  expires_before?: string;
  include_revoked?: boolean;
  after?: string;
  limit?: number;
}

/** The query of a paged `LIST`: Vault's `after` and `limit`. */
const pagedListQuery = {
  type: "object",
  additionalProperties: false,
  properties: {
    ...listQuery.properties,
    after: {
      type: "string",
      minLength: 1,
      maxLength: 128,
      description:
        "List the serials after this one (any serial form). Pass the last serial of the previous page.",
    },
    limit: {
      type: "integer",
      minimum: 1,
      maximum: MAX_SCAN_LIMIT,
      description: `The maximum number of serials returned, from 1 to ${MAX_SCAN_LIMIT}. Without it every serial (after \`after\`) is returned.`,
    },
  },
} as const;

/**
 * Lists serials from `list` in Vault's colon form: those after `after`, at
 * most `limit` of them, or all of them when neither is given. A full page
 * also returns `next_after`, its last serial.
 */
async function listSerials(
  list: (page?: SerialPage) => Promise<string[]>,
  query: { after?: string; limit?: number },
  what: string,
): Promise<{ keys: string[]; next_after?: string }> {
  const after = query.after === undefined ? undefined : parseSerial(query.after, "after");
  const serials = await list({ after, limit: query.limit });
  if (serials.length === 0) {
    const where = query.after === undefined ? "" : ` after ${query.after}`;
    throw new KeywardError("not_found", `no ${what} found${where}`);
  }
  const keys = serials.map(colonSerial);
  const full = query.limit !== undefined && keys.length === query.limit;
  return full ? { keys, next_after: keys[keys.length - 1] } : { keys };
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

  app.get<{ Querystring: { after?: string; limit?: number } }>("/certs", {
    schema: {
      tags: TAGS,
      summary: "List serial numbers of issued certificates (GET with list=true).",
      description:
        "Serials are listed in ascending order of their plain hex form. `after` and `limit` return one page, and a full page also returns `next_after`.",
      querystring: pagedListQuery,
    },
    handler: async (request, reply) => {
      requireList(request);
      const inventory = serviceFor(request).inventory;
      return sendData(
        request,
        reply,
        await listSerials((page) => inventory.serials(page), request.query, "certificates"),
      );
    },
  });

  app.get<{ Querystring: { after?: string; limit?: number } }>("/certs/revoked", {
    schema: {
      tags: TAGS,
      summary: "List serial numbers of revoked certificates (GET with list=true).",
      description:
        "Serials are listed in ascending order of their plain hex form. `after` and `limit` return one page, and a full page also returns `next_after`.",
      querystring: pagedListQuery,
    },
    handler: async (request, reply) => {
      requireList(request);
      const inventory = serviceFor(request).inventory;
      const list = (page?: SerialPage) => inventory.revokedSerials(page);
      return sendData(
        request,
        reply,
        await listSerials(list, request.query, "revoked certificates"),
      );
    },
  });

  app.get<{ Querystring: SearchQuery }>("/certs/search", {
    schema: {
      tags: TAGS,
      summary: "Search issued certificates (Keyward extension).",
      description:
        "Every filter given must match. `name_prefix` reads the name index and returns results in name order; otherwise results are in notAfter order. `subject` and `san` match substrings, case-insensitive, of the certificates read. A page holds at most `limit` results; while `next_after` is set, pass it as `after` for the next page.",
      querystring: {
        type: "object",
        additionalProperties: false,
        properties: {
          subject: shortString("Substring of the subject, such as CN=web."),
          san: shortString("Substring of any SAN, such as dns:web.example.com."),
          name_prefix: {
            type: "string",
            minLength: 1,
            maxLength: 1024,
            description:
              "Prefix of the common name or of a DNS, IP or email SAN, case-insensitive, such as web.example.",
          },
          issuer_ref: shortString("Issuer id or name."),
          expires_after: shortString(
            "Only certificates whose notAfter is at or after this RFC 3339 time.",
          ),
          expires_before: shortString(
            "Only certificates whose notAfter is before this RFC 3339 time.",
          ),
          include_revoked: { type: "boolean", description: "Include revoked certificates." },
          after: {
            type: "string",
            minLength: 1,
            maxLength: 2048,
            description: "The next_after value of the previous page of the same search.",
          },
          limit: {
            type: "integer",
            minimum: 1,
            maximum: MAX_SEARCH_LIMIT,
            description: `The maximum number of results, from 1 to ${MAX_SEARCH_LIMIT}. Default ${DEFAULT_SEARCH_LIMIT}.`,
          },
        },
      },
    },
    handler: async (request, reply) => {
      const service = serviceFor(request);
      const query = request.query;
      const issuerId = query.issuer_ref
        ? (await service.issuers.resolve(query.issuer_ref)).id
        : undefined;
      const result = await service.inventory.search(
        {
          subject: query.subject,
          san: query.san,
          namePrefix: query.name_prefix,
          issuerId,
          expiresAfter: optionalDate(query.expires_after, "expires_after"),
          expiresBefore: optionalDate(query.expires_before, "expires_before"),
          includeRevoked: query.include_revoked ?? false,
        },
        { after: query.after, limit: query.limit ?? DEFAULT_SEARCH_LIMIT },
      );
      return sendData(request, reply, {
        certificates: result.certificates.map(summary),
        ...(result.nextAfter !== undefined ? { next_after: result.nextAfter } : {}),
      });
    },
  });

  app.get<{ Querystring: { within?: string; limit?: number } }>("/certs/expiring", {
    schema: {
      tags: TAGS,
      summary:
        "Expiry report: unrevoked certificates that expire within a window (Keyward extension).",
      description:
        "The counts cover every certificate. Each list holds at most `limit` certificates, soonest expiry first; `expiring_next_after` and `expired_next_after` continue them as the `after` of `certs/search` over the same window.",
      querystring: {
        type: "object",
        additionalProperties: false,
        properties: {
          within: duration("Window from now, such as 720h. Default 720h (30 days)."),
          limit: {
            type: "integer",
            minimum: 1,
            maximum: MAX_SEARCH_LIMIT,
            description: `The maximum number of certificates in each list, from 1 to ${MAX_SEARCH_LIMIT}. Default ${DEFAULT_SEARCH_LIMIT}.`,
          },
        },
      },
    },
    handler: async (request, reply) => {
      const service = serviceFor(request);
      const within = parseDuration(request.query.within ?? "720h", "within");
      const now = service.context.clock();
      const until = new Date(now.getTime() + within * 1000);
      const report = await service.inventory.expiryReport({
        now,
        until,
        limit: request.query.limit ?? DEFAULT_SEARCH_LIMIT,
      });
      return sendData(request, reply, {
        generated_at: now.toISOString(),
        window_end: until.toISOString(),
        expiring_count: report.expiringCount,
        expired_count: report.expiredCount,
        expiring: report.expiring.map(summary),
        expired: report.expired.map(summary),
        ...(report.expiringNextAfter !== undefined
          ? { expiring_next_after: report.expiringNextAfter }
          : {}),
        ...(report.expiredNextAfter !== undefined
          ? { expired_next_after: report.expiredNextAfter }
          : {}),
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
