import type { FastifyInstance } from "fastify";
import { KeywardError } from "../../../errors.ts";
import {
  duration,
  listQuery,
  MAX_PUBLIC_KEY_LENGTH,
  optionMap,
  requesterOf,
  requireList,
  roleParams,
  type SshServiceResolver,
  sendData,
  TAGS,
  toWire,
  WRITE_METHODS,
} from "./shared.ts";

interface RoleParams {
  role: string;
}

interface CertificateBody {
  valid_principals?: string;
  cert_type?: string;
  key_id?: string;
  ttl?: number | string;
  critical_options?: Record<string, string>;
  extensions?: Record<string, string>;
}

interface SignBody extends CertificateBody {
  public_key: string;
}

interface IssueBody extends CertificateBody {
  key_type?: string;
  key_bits?: number;
}

const certificateFields = {
  valid_principals: {
    type: "string",
    maxLength: 65_536,
    description:
      "Comma-separated principals: user names for user certificates, host names for host certificates. Default: the role's default_user.",
  },
  cert_type: {
    type: "string",
    maxLength: 16,
    description: 'Certificate type: "user" (default) or "host".',
  },
  key_id: {
    type: "string",
    maxLength: 1024,
    description:
      "Key ID, when the role allows it (allow_user_key_ids); otherwise from key_id_format.",
  },
  ttl: duration("Lifetime, at most the role's max_ttl. Default: the role's ttl, else 1h."),
  critical_options: optionMap(
    'Critical options, such as {"force-command": "uptime", "source-address": "10.0.0.0/8"}; default: the role\'s.',
  ),
  extensions: optionMap('Extensions, such as {"permit-pty": ""}; default: the role\'s.'),
} as const;

const serialParams = {
  type: "object",
  required: ["serial"],
  properties: {
    serial: { type: "string", minLength: 1, maxLength: 64, description: "Serial in hex." },
  },
} as const;

function certificateRequest(body: CertificateBody) {
  return {
    validPrincipals: body.valid_principals,
    certType: body.cert_type,
    keyId: body.key_id,
    ttl: body.ttl,
    criticalOptions: body.critical_options,
    extensions: body.extensions,
  };
}

/** Signing, issuing and the inventory of issued certificates. */
export async function registerCertificateRoutes(
  app: FastifyInstance,
  serviceFor: SshServiceResolver,
) {
  app.route<{ Params: RoleParams; Body: SignBody }>({
    method: WRITE_METHODS,
    url: "/sign/:role",
    schema: {
      tags: TAGS,
      summary: "Sign a public key.",
      description:
        "Signs an OpenSSH public key (authorized_keys line) under the role and returns the certificate in `signed_key` and its hex serial in `serial_number`, as Vault does.",
      params: roleParams,
      body: {
        type: "object",
        additionalProperties: false,
        required: ["public_key"],
        properties: {
          public_key: {
            type: "string",
            maxLength: MAX_PUBLIC_KEY_LENGTH,
            description: "The public key to sign, as one authorized_keys line.",
          },
          ...certificateFields,
        },
      },
    },
    handler: async (request, reply) => {
      const body = request.body;
      const result = await serviceFor(request).sign(
        request.params.role,
        { publicKey: body.public_key, ...certificateRequest(body) },
        requesterOf(request),
      );
      return sendData(request, reply, toWire(result));
    },
  });

  app.route<{ Params: RoleParams; Body: IssueBody }>({
    method: WRITE_METHODS,
    url: "/issue/:role",
    preValidation: async (request) => {
      if (request.body === undefined || request.body === null) request.body = {} as IssueBody;
    },
    schema: {
      tags: TAGS,
      summary: "Generate a key pair and sign it.",
      description:
        "Generates a key pair, signs its public key under the role, and returns `private_key` (OpenSSH format), `private_key_type`, `signed_key` and `serial_number`. The private key is returned once and never stored.",
      params: roleParams,
      body: {
        type: "object",
        additionalProperties: false,
        properties: {
          key_type: {
            type: "string",
            maxLength: 64,
            description: "rsa (default), ec or ed25519, or an SSH key type name.",
          },
          key_bits: {
            type: "integer",
            minimum: 0,
            maximum: 16_384,
            description:
              "RSA size (2048, 3072 or 4096; default 3072) or EC curve size (256, 384, 521).",
          },
          ...certificateFields,
        },
      },
    },
    handler: async (request, reply) => {
      const body = request.body ?? {};
      const result = await serviceFor(request).issue(
        request.params.role,
        { keyType: body.key_type, keyBits: body.key_bits, ...certificateRequest(body) },
        requesterOf(request),
      );
      return sendData(request, reply, toWire(result));
    },
  });

  app.route({
    method: "GET",
    url: "/certs",
    schema: {
      tags: TAGS,
      summary: "List issued certificate serials (GET with list=true).",
      description:
        "Returns the serials of the inventoried certificates. Returns 404 when there are none (Keyward extension).",
      querystring: listQuery,
    },
    handler: async (request, reply) => {
      requireList(request);
      const keys = await serviceFor(request).listCertificates();
      if (keys.length === 0) throw new KeywardError("not_found", "no certificates found");
      return sendData(request, reply, { keys });
    },
  });

  app.route<{ Params: { serial: string } }>({
    method: "GET",
    url: "/certs/:serial",
    schema: {
      tags: TAGS,
      summary: "Read an issued certificate's record.",
      description:
        "Returns the serial, key ID, type, principals, validity, role, fingerprints and revocation time of an inventoried certificate (Keyward extension).",
      params: serialParams,
    },
    handler: async (request, reply) => {
      const record = await serviceFor(request).readCertificate(request.params.serial);
      return sendData(request, reply, toWire(record));
    },
  });
}
