import type { FastifyInstance, FastifyRequest } from "fastify";
import type { Keyward } from "../../core/keyward.ts";
import type { DeviceRef } from "../../devices/artifacts.ts";
import { authenticateDevice } from "../../devices/authentication.ts";
import {
  assignmentNotFound,
  type CertificateAssignmentInput,
  certificateAssignmentView,
} from "../../devices/certificates.ts";
import { MAX_LIST_ENTRIES } from "../../devices/names.ts";
import { KeywardError } from "../../errors.ts";
import {
  durationSchema,
  objectBody,
  registerListRoute,
  sendData,
  WRITE_METHODS,
} from "./auth-shared.ts";
import { nameParams, TAGS } from "./devices-wire.ts";

type NameRequest<Body = unknown> = { Params: { name: string }; Body: Body };

const nameList = (description: string) =>
  ({
    type: "array",
    maxItems: MAX_LIST_ENTRIES,
    items: { type: "string", maxLength: 128 },
    description,
  }) as const;

const assignmentBody = objectBody({
  pki_mount: {
    type: "string",
    minLength: 1,
    maxLength: 128,
    description: "PKI mount that signs the certificates. Required on create.",
  },
  role: {
    type: "string",
    minLength: 1,
    maxLength: 128,
    description:
      "Role of the mount that signs them; it must store certificates. Required on create.",
  },
  groups: nameList("Devices in any of these groups receive a certificate."),
  devices: nameList("These devices receive one too."),
  common_name: {
    type: "string",
    maxLength: 253,
    description: "Common name template; {{device}} becomes the device name. Required on create.",
  },
  alt_names: {
    type: "array",
    maxItems: MAX_LIST_ENTRIES,
    items: { type: "string", maxLength: 253 },
    description:
      "Subject alternative name templates: DNS names or IP addresses, with {{device}} where the device name goes.",
  },
  ttl: durationSchema("Requested lifetime; default: the role's TTL."),
  renew_fraction: {
    type: "number",
    description: "Part of the lifetime after which the agent renews; default 2/3.",
  },
});

const csrBody = objectBody(
  {
    csr: {
      type: "string",
      maxLength: 65536,
      description: "PKCS#10 request in PEM with exactly the artifact's common_name and alt_names.",
    },
  },
  ["csr"],
);

/**
 * Registers certificate assignments under `/v1/devices/certificates/`
 * (token and policy, like every admin route) and the device route
 * `POST /v1/devices/self/certificates/:name`, where an agent sends the CSR
 * for its key. Register it after `registerDeviceRoutes`, whose hook adds
 * the JSON type checks to every `/v1/devices/` route.
 */
export async function registerDeviceCertificateRoutes(
  app: FastifyInstance,
  keyward: Keyward,
): Promise<void> {
  const certificates = () => {
    if (keyward.sealed) throw new KeywardError("sealed", "Keyward is sealed");
    return keyward.deviceCertificates;
  };
  const prefix = "/v1/devices/certificates";

  registerListRoute(app, prefix, TAGS, "List certificate assignments.", () =>
    certificates().list(),
  );

  app.route<NameRequest<CertificateAssignmentInput>>({
    method: WRITE_METHODS,
    url: `${prefix}/:name`,
    config: {
      operation: async (request: FastifyRequest) => {
        const name = (request.params as { name: string }).name;
        const exists = await certificates()
          .read(name)
          .then((record) => record !== undefined)
          .catch(() => true);
        return exists ? "update" : "create";
      },
    },
    schema: {
      tags: TAGS,
      summary: "Create a certificate assignment or update it.",
      description:
        "Each device in the audience receives a certificate:<name> artifact with its rendered names; its agent makes the key and sends a CSR.",
      params: nameParams,
      body: assignmentBody,
    },
    handler: async (request, reply) =>
      sendData(
        request,
        reply,
        certificateAssignmentView(await certificates().write(request.params.name, request.body)),
      ),
  });

  app.get<NameRequest>(`${prefix}/:name`, {
    schema: { tags: TAGS, summary: "Read a certificate assignment.", params: nameParams },
    handler: async (request, reply) => {
      const record = await certificates().read(request.params.name);
      if (!record) throw assignmentNotFound(request.params.name);
      return sendData(request, reply, certificateAssignmentView(record));
    },
  });

  app.delete<NameRequest>(`${prefix}/:name`, {
    schema: {
      tags: TAGS,
      summary: "Delete a certificate assignment; issued certificates stay valid until they expire.",
      params: nameParams,
    },
    handler: async (request, reply) => {
      await certificates().delete(request.params.name);
      return reply.code(204).send();
    },
  });

  const devices = new WeakMap<FastifyRequest, DeviceRef>();
  app.route<NameRequest<{ csr: string }>>({
    method: WRITE_METHODS,
    url: "/v1/devices/self/certificates/:name",
    config: { public: true },
    // Authentication comes before schema validation, so a caller that is no
    // device learns nothing about the route's fields from a 400.
    preValidation: async (request) => {
      devices.set(request, await authenticateDevice(request));
    },
    schema: {
      tags: TAGS,
      summary: "Sign a CSR for one of the device's certificate artifacts.",
      description:
        "Mutual TLS with the device's identity certificate; no token. The CSR's common name and subject alternative names must equal the artifact's common_name and alt_names exactly.",
      params: nameParams,
      body: csrBody,
    },
    handler: async (request, reply) => {
      const device = devices.get(request);
      if (device === undefined) {
        throw new KeywardError("internal", "internal error", {
          details: { reason: "device route ran without an authenticated device" },
        });
      }
      return sendData(
        request,
        reply,
        await certificates().issue(request.params.name, device, request.body.csr),
      );
    },
  });
}
