import type { FastifyInstance, FastifyReply } from "fastify";
import { parseDuration } from "../../../auth/duration.ts";
import { KeywardError } from "../../../errors.ts";
import { parseSerial } from "../inventory.ts";
import { parseCertificates, toPem } from "../pem.ts";
import type { RevocationReason } from "../revocation/index.ts";
import type { PkiService } from "../service.ts";
import { REVOCATION_REASONS } from "../types.ts";
import {
  duration,
  issuerRefParams,
  type PkiServiceResolver,
  PUBLIC,
  pemField,
  sendData,
  sendRaw,
  shortString,
  TAGS,
  WRITE_METHODS,
} from "./shared.ts";

const CRL_DER = "application/pkix-crl";
const CRL_PEM = "application/x-pem-file";

async function sendCrl(
  service: PkiService,
  reply: FastifyReply,
  issuerRef: string,
  options: { delta: boolean; pem: boolean },
) {
  const issuer = await service.issuers.resolve(issuerRef);
  const der = await service.revocation.crls.crl(issuer, options.delta);
  if (options.pem) return sendRaw(reply, CRL_PEM, `${toPem(der, "X509 CRL")}\n`);
  return sendRaw(reply, CRL_DER, der);
}

/** Revocation: revoke, CRLs, OCSP, tidy and their settings. */
export async function registerRevocationRoutes(
  app: FastifyInstance,
  serviceFor: PkiServiceResolver,
) {
  app.route<{ Body: { serial_number?: string; certificate?: string; reason?: RevocationReason } }>({
    method: WRITE_METHODS,
    url: "/revoke",
    schema: {
      tags: TAGS,
      summary: "Revoke a certificate by serial number (or by its PEM).",
      body: {
        type: "object",
        additionalProperties: false,
        properties: {
          serial_number: shortString("Serial number, hex with colons or dashes."),
          certificate: pemField("The certificate, PEM, instead of serial_number."),
          reason: {
            type: "string",
            enum: [...REVOCATION_REASONS],
            description: "CRL reason (Keyward extension).",
          },
        },
      },
    },
    handler: async (request, reply) => {
      const service = serviceFor(request);
      const body = request.body;
      if (body.serial_number !== undefined && body.certificate !== undefined) {
        // Vault rejects both too: they could name two certificates.
        throw new KeywardError(
          "invalid_field",
          'give either "serial_number" or "certificate", not both',
          { field: "certificate" },
        );
      }
      let serial: string;
      if (body.serial_number !== undefined)
        serial = parseSerial(body.serial_number, "serial_number");
      else if (body.certificate !== undefined) {
        const [certificate] = parseCertificates(body.certificate, "certificate");
        if (!certificate)
          throw new KeywardError("invalid_certificate", '"certificate" contains no certificate', {
            field: "certificate",
          });
        serial = parseSerial(certificate.serialNumber, "certificate");
      } else {
        throw new KeywardError("missing_field", 'missing required field "serial_number"', {
          field: "serial_number",
        });
      }
      return sendData(request, reply, await service.revocation.revoke(serial, body.reason));
    },
  });

  app.route<{ Body: { certificate: string; private_key: string; serial_number?: string } }>({
    method: WRITE_METHODS,
    url: "/revoke-with-key",
    schema: {
      tags: TAGS,
      summary: "Revoke a certificate as its holder, proving possession of its private key.",
      body: {
        type: "object",
        additionalProperties: false,
        required: ["certificate", "private_key"],
        properties: {
          certificate: pemField("The certificate, PEM."),
          private_key: pemField("Its private key, PEM."),
          serial_number: shortString(
            "Accepted for Vault compatibility; the certificate names the serial.",
          ),
        },
      },
    },
    handler: async (request, reply) =>
      sendData(
        request,
        reply,
        await serviceFor(request).revocation.revokeWithKey(
          request.body.certificate,
          request.body.private_key,
        ),
      ),
  });

  const crlPaths: [string, { delta: boolean; pem: boolean }][] = [
    ["/crl", { delta: false, pem: false }],
    ["/crl/pem", { delta: false, pem: true }],
    ["/crl/delta", { delta: true, pem: false }],
    ["/crl/delta/pem", { delta: true, pem: true }],
  ];
  for (const [path, options] of crlPaths) {
    app.get(path, {
      config: PUBLIC,
      schema: {
        tags: TAGS,
        summary: `The default issuer's ${options.delta ? "delta " : ""}CRL, ${options.pem ? "PEM" : "DER"}.`,
      },
      handler: async (request, reply) => sendCrl(serviceFor(request), reply, "default", options),
    });
    app.get<{ Params: { issuer_ref: string } }>(
      `/issuer/:issuer_ref${path}${options.pem ? "" : "/der"}`,
      {
        config: PUBLIC,
        schema: {
          tags: TAGS,
          summary: `An issuer's ${options.delta ? "delta " : ""}CRL, ${options.pem ? "PEM" : "DER"}.`,
          params: issuerRefParams,
        },
        handler: async (request, reply) =>
          sendCrl(serviceFor(request), reply, request.params.issuer_ref, options),
      },
    );
  }

  for (const [path, delta] of [
    ["/cert/crl", false],
    ["/cert/delta-crl", true],
  ] as const) {
    app.get(path, {
      config: PUBLIC,
      schema: {
        tags: TAGS,
        summary: `The default issuer's ${delta ? "delta " : ""}CRL, PEM in Vault's envelope.`,
      },
      handler: async (request, reply) => {
        const service = serviceFor(request);
        const der = await service.revocation.crls.crl(
          await service.issuers.resolve("default"),
          delta,
        );
        return sendData(request, reply, {
          certificate: toPem(der, "X509 CRL"),
          revocation_time: 0,
        });
      },
    });
  }

  app.get("/crl/rotate", {
    schema: { tags: TAGS, summary: "Rebuild every issuer's CRL now." },
    handler: async (request, reply) => {
      await serviceFor(request).revocation.crls.rotateAll();
      return sendData(request, reply, { success: true });
    },
  });

  app.get("/crl/rotate-delta", {
    schema: { tags: TAGS, summary: "Rebuild every issuer's delta CRL now." },
    handler: async (request, reply) => {
      const service = serviceFor(request);
      for (const issuer of await service.issuers.list()) {
        if (issuer.keyId !== "") await service.revocation.crls.rebuildDelta(issuer);
      }
      return sendData(request, reply, { success: true });
    },
  });

  registerCrlConfigRoutes(app, serviceFor);
}

function crlConfigWire(config: Awaited<ReturnType<PkiService["config"]["crl"]>>) {
  return {
    expiry: `${config.expirySeconds}s`,
    disable: config.disable,
    auto_rebuild: config.autoRebuild,
    auto_rebuild_grace_period: `${config.autoRebuildGraceSeconds}s`,
    enable_delta: config.enableDelta,
    delta_rebuild_interval: `${config.deltaRebuildIntervalSeconds}s`,
    ocsp_disable: config.ocspDisable,
    ocsp_expiry: `${config.ocspExpirySeconds}s`,
  };
}

function registerCrlConfigRoutes(app: FastifyInstance, serviceFor: PkiServiceResolver) {
  app.get("/config/crl", {
    schema: { tags: TAGS, summary: "Read the CRL and OCSP settings." },
    handler: async (request, reply) =>
      sendData(request, reply, crlConfigWire(await serviceFor(request).config.crl())),
  });

  app.route<{ Body: Record<string, string | number | boolean | undefined> }>({
    method: WRITE_METHODS,
    url: "/config/crl",
    schema: {
      tags: TAGS,
      summary: "Set the CRL and OCSP settings.",
      body: {
        type: "object",
        additionalProperties: false,
        properties: {
          expiry: duration("Lifetime of each CRL. Default 72h."),
          disable: { type: "boolean", description: "Stop building CRLs." },
          auto_rebuild: {
            type: "boolean",
            description: "Rebuild CRLs on a schedule before they expire.",
          },
          auto_rebuild_grace_period: duration("Rebuild this long before nextUpdate. Default 12h."),
          enable_delta: { type: "boolean", description: "Build delta CRLs." },
          delta_rebuild_interval: duration("Minimum time between delta CRL rebuilds. Default 15m."),
          ocsp_disable: {
            type: "boolean",
            description: "Respond to every OCSP request with unauthorized.",
          },
          ocsp_expiry: duration("nextUpdate of OCSP responses, from now; 0 for none. Default 12h."),
        },
      },
    },
    handler: async (request, reply) => {
      const body = request.body;
      const seconds = (name: string) =>
        body[name] === undefined ? undefined : parseDuration(body[name] as string | number, name);
      const service = serviceFor(request);
      const config = await service.config.setCrl({
        expirySeconds: seconds("expiry"),
        disable: body.disable as boolean | undefined,
        autoRebuild: body.auto_rebuild as boolean | undefined,
        autoRebuildGraceSeconds: seconds("auto_rebuild_grace_period"),
        enableDelta: body.enable_delta as boolean | undefined,
        deltaRebuildIntervalSeconds: seconds("delta_rebuild_interval"),
        ocspDisable: body.ocsp_disable as boolean | undefined,
        ocspExpirySeconds: seconds("ocsp_expiry"),
      });
      if (config.expirySeconds === 0) {
        throw new KeywardError("invalid_field", '"expiry" must be longer than 0', {
          field: "expiry",
        });
      }
      return sendData(request, reply, crlConfigWire(config));
    },
  });
}
