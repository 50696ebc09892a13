import type { FastifyInstance, FastifyRequest } from "fastify";
import type { RotationStatus } from "../rotation.ts";
import { type PrepareRequest, ROTATION_SOURCES } from "../rotation-sources.ts";
import { generateBody } from "./ca.ts";
import {
  type PkiServiceResolver,
  pemField,
  sendData,
  shortString,
  TAGS,
  WRITE_METHODS,
} from "./shared.ts";

// The rotation never returns a private key, so the output format fields of root/generate do not apply.
const {
  format: _format,
  private_key_format: _keyFormat,
  ...caProperties
} = generateBody.properties;

const prepareBody = {
  type: "object",
  additionalProperties: false,
  properties: {
    ...caProperties,
    source: {
      type: "string",
      enum: [...ROTATION_SOURCES],
      description:
        "Where the new issuer comes from: root (default, a new self-signed root), intermediate (a new key signed by parent_issuer_ref), import (pem_bundle) or existing (issuer_ref).",
    },
    parent_issuer_ref: shortString("For source intermediate: the issuer that signs the new CA."),
    pem_bundle: pemField(
      "For source import: the new CA certificate first, then its chain and, unless Keyward holds it, its private key.",
    ),
    issuer_ref: shortString(
      "For source existing: an issuer of this mount that is not the default.",
    ),
  },
} as const;

const emptyBody = { type: "object", additionalProperties: false, properties: {} } as const;

/** Treats a write without a body as one with `{}`, so `curl -X POST` works for the steps without fields. */
async function defaultEmptyBody(request: FastifyRequest): Promise<void> {
  if (request.body === undefined || request.body === null) request.body = {};
}

function statusToWire(status: RotationStatus): Record<string, unknown> {
  return {
    phase: status.phase,
    old_issuer_id: status.oldIssuerId,
    new_issuer_id: status.newIssuerId,
    default_issuer_id: status.defaultIssuerId,
    prepared_at: status.preparedAt ?? null,
    switched_at: status.switchedAt ?? null,
    retired_at: status.retiredAt ?? null,
    old_issuer_certificates: status.oldIssuerCertificates,
    new_issuer_certificates: status.newIssuerCertificates,
    roles_using_old_issuer: status.rolesUsingOldIssuer,
  };
}

const STEPS = [
  [
    "switch",
    "Rotation phase 2: make the new issuer the default.",
    "The prepared issuer becomes the default and issues from now on. The old issuer stays in ca_chain and keeps signing its CRL and answering OCSP.",
  ],
  [
    "retire",
    "Rotation phase 3: stop the old issuer from issuing.",
    "The old issuer can no longer issue certificates, but stays in ca_chain and keeps signing its CRL and OCSP responses. Cannot be rolled back.",
  ],
  [
    "rollback",
    "Undo the last rotation phase.",
    "After prepare, deletes the new issuer (an adopted one only loses its issuing usage). After switch, the old issuer is the default again and the new one stops issuing but stays in ca_chain.",
  ],
] as const;

/** Registers the phased issuer rotation: `issuers/rotate` and its steps (Keyward extension). */
export function registerRotationRoutes(app: FastifyInstance, serviceFor: PkiServiceResolver) {
  app.get("/issuers/rotate", {
    schema: {
      tags: TAGS,
      summary: "Read the issuer rotation's phase and progress.",
      description:
        "Returns the phase (none, prepared, switched or retired), the old and new issuer ids, how many stored certificates of each issuer are neither expired nor revoked, and the roles pinned to the old issuer (Keyward extension).",
    },
    handler: async (request, reply) =>
      sendData(request, reply, statusToWire(await serviceFor(request).rotation.status())),
  });

  app.route<{ Body: PrepareRequest }>({
    method: WRITE_METHODS,
    url: "/issuers/rotate/prepare",
    preValidation: defaultEmptyBody,
    schema: {
      tags: TAGS,
      summary: "Rotation phase 1: add a new issuer that is published but does not issue.",
      description:
        "Creates or adopts the new issuer. It appears in ca_chain at once, but may not issue, and the default issuer stays the old one until switch. Generated keys are internal. Requires default_follows_latest_issuer to be false (Keyward extension).",
      body: prepareBody,
    },
    handler: async (request, reply) =>
      sendData(
        request,
        reply,
        statusToWire(await serviceFor(request).rotation.prepare(request.body)),
      ),
  });

  for (const [step, summary, description] of STEPS) {
    app.route({
      method: WRITE_METHODS,
      url: `/issuers/rotate/${step}`,
      preValidation: defaultEmptyBody,
      schema: {
        tags: TAGS,
        summary,
        description: `${description} (Keyward extension)`,
        body: emptyBody,
      },
      handler: async (request, reply) => {
        const rotation = serviceFor(request).rotation;
        const status =
          step === "switch"
            ? await rotation.switch()
            : step === "retire"
              ? await rotation.retire()
              : await rotation.rollback();
        return sendData(request, reply, statusToWire(status));
      },
    });
  }
}
