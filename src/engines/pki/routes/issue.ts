import type { FastifyInstance, FastifyRequest } from "fastify";
import { OUTPUT_FORMATS } from "../context.ts";
import type { IssueRequest } from "../issuance.ts";
import { PRIVATE_KEY_FORMATS } from "../key-pairs.ts";
import {
  duration,
  type PkiServiceResolver,
  pemField,
  sendData,
  shortString,
  stringList,
  TAGS,
  WRITE_METHODS,
} from "./shared.ts";

const issueProperties = {
  common_name: shortString("Subject common name; a hostname, email address or IP address."),
  alt_names: stringList("DNS names and email addresses; IP addresses here become IP SANs."),
  ip_sans: stringList("IP addresses."),
  uri_sans: stringList("URIs."),
  other_sans: stringList("otherName SANs as <oid>;UTF8:<value>, allowed by allowed_other_sans."),
  ttl: duration("Validity; at most the role's max_ttl."),
  not_after: shortString("notAfter as an RFC 3339 time; wins over ttl."),
  format: {
    type: "string",
    enum: [...OUTPUT_FORMATS],
    description: "pem (default), der or pem_bundle.",
  },
  private_key_format: {
    type: "string",
    enum: [...PRIVATE_KEY_FORMATS],
    description: "der (default) or pkcs8.",
  },
  exclude_cn_from_sans: { type: "boolean", description: "Leave the common name out of the SANs." },
  remove_roots_from_chain: {
    type: "boolean",
    description: "Leave self-signed certificates out of ca_chain.",
  },
} as const;

const body = (extra: object, required: string[] = []) =>
  ({
    type: "object",
    additionalProperties: false,
    required,
    properties: { ...issueProperties, ...extra },
  }) as const;

const verbatimProperties = {
  csr: pemField("The CSR, PEM."),
  key_usage: stringList("Key usages. Default DigitalSignature, KeyAgreement, KeyEncipherment."),
  ext_key_usage: stringList("Extended key usages by name."),
  ext_key_usage_oids: stringList("Extended key usages by OID."),
};

const params = (names: string[]) =>
  ({
    type: "object",
    required: names,
    properties: Object.fromEntries(
      names.map((name) => [name, { type: "string", minLength: 1, maxLength: 128 }]),
    ),
  }) as const;

type Params = { role?: string; issuer_ref?: string };

/** Certificate issuance: issue, sign and sign-verbatim, at the mount's default issuer or a named one. */
export async function registerIssueRoutes(
  app: FastifyInstance,
  serviceFor: PkiServiceResolver,
  requireSudo: (request: FastifyRequest) => Promise<void>,
) {
  for (const prefix of ["", "/issuer/:issuer_ref"]) {
    const issuerParam = prefix === "" ? [] : ["issuer_ref"];

    app.route<{ Params: Params; Body: IssueRequest }>({
      method: WRITE_METHODS,
      url: `${prefix}/issue/:role`,
      schema: {
        tags: TAGS,
        summary: "Issue a certificate and a new private key under a role.",
        description: "The private key is returned once and not stored.",
        params: params([...issuerParam, "role"]),
        body: body({}),
      },
      handler: async (request, reply) =>
        sendData(
          request,
          reply,
          await serviceFor(request).issue(
            request.params.role!,
            request.body,
            request.params.issuer_ref,
          ),
        ),
    });

    app.route<{ Params: Params; Body: IssueRequest }>({
      method: WRITE_METHODS,
      url: `${prefix}/sign/:role`,
      schema: {
        tags: TAGS,
        summary: "Sign a CSR under a role.",
        description: "The CSR's signature is verified and its names are checked against the role.",
        params: params([...issuerParam, "role"]),
        body: body({ csr: pemField("The CSR, PEM.") }, ["csr"]),
      },
      handler: async (request, reply) =>
        sendData(
          request,
          reply,
          await serviceFor(request).sign(
            request.params.role!,
            request.body,
            request.params.issuer_ref,
          ),
        ),
    });

    for (const suffix of ["/sign-verbatim", "/sign-verbatim/:role"]) {
      app.route<{ Params: Params; Body: IssueRequest }>({
        method: WRITE_METHODS,
        url: `${prefix}${suffix}`,
        preHandler: requireSudo,
        schema: {
          tags: TAGS,
          summary: "Sign a CSR with its subject and names unchanged (needs sudo).",
          params: params([...issuerParam, ...(suffix.endsWith(":role") ? ["role"] : [])]),
          body: body(verbatimProperties, ["csr"]),
        },
        handler: async (request, reply) =>
          sendData(
            request,
            reply,
            await serviceFor(request).signVerbatim(
              request.params.role,
              request.body,
              request.params.issuer_ref,
            ),
          ),
      });
    }
  }
}
