import type { FastifyInstance } from "fastify";
import {
  type CredentialRequest,
  credentialData,
  type IssuedCredential,
  type KmipCredentials,
  type KmipRoleInput,
  kmipRoleData,
} from "../../kmip/server/credentials.ts";
import { sendRaw } from "../envelope.ts";
import {
  durationSchema,
  objectBody,
  registerListRoute,
  sendData,
  WRITE_METHODS,
} from "./auth-shared.ts";

const TAGS = ["sys/kmip"];
const PREFIX = "/v1/sys/kmip";

const nameParams = {
  type: "object",
  required: ["name"],
  properties: { name: { type: "string", minLength: 1, maxLength: 128 } },
} as const;

const listSchema = (description: string) =>
  ({
    type: "array",
    maxItems: 64,
    items: { type: "string", maxLength: 4096 },
    description: `${description} An array or a comma-separated string.`,
  }) as const;

const keyFields = {
  key_type: { type: "string", maxLength: 16, description: '"ec" (the default) or "rsa".' },
  key_bits: {
    type: "integer",
    minimum: 0,
    maximum: 8192,
    description: "256 or 384 for EC, 2048, 3072 or 4096 for RSA; 0 for the type's default.",
  },
} as const;

const commonName = {
  type: "string",
  maxLength: 256,
  description: "The certificate's subject CN; a random one when left out.",
} as const;

const roleBody = objectBody({
  token_policies: listSchema("Keyward policies of the clients that map to the role."),
  policies: listSchema("Alias of token_policies."),
  allowed_common_names: listSchema(
    "Globs (* for any run of characters) of subject CNs: certificates of an external client CA map to the role by them, and credentials Keyward issues must match them.",
  ),
  ttl: durationSchema("Default lifetime of issued credentials (default 768h)."),
  max_ttl: durationSchema("Longest lifetime a credential request may ask for (default 8760h)."),
  ...keyFields,
});

const generateBody = objectBody({
  common_name: commonName,
  ttl: durationSchema("Lifetime of the credential; the role's ttl when left out."),
  ...keyFields,
});

const signBody = objectBody(
  {
    csr: { type: "string", minLength: 1, maxLength: 65_536, description: "PEM or base64 DER CSR." },
    common_name: commonName,
    ttl: durationSchema("Lifetime of the credential; the role's ttl when left out."),
  },
  ["csr"],
);

const serialField = {
  type: "string",
  minLength: 1,
  maxLength: 128,
  description: "Serial number in hex, with or without colons.",
} as const;

const serialBody = objectBody({ serial_number: serialField }, ["serial_number"]);
const serialQuery = {
  type: "object",
  additionalProperties: false,
  required: ["serial_number"],
  properties: { serial_number: serialField },
} as const;

type NameRequest<Body = unknown> = { Params: { name: string }; Body: Body };

function issuedData(credential: IssuedCredential) {
  return {
    certificate: credential.certificate,
    ...(credential.privateKey === undefined
      ? {}
      : { private_key: credential.privateKey, private_key_type: credential.privateKeyType }),
    ca_chain: credential.caChain,
    serial_number: credential.serialNumber,
    common_name: credential.commonName,
    expiration: Math.floor(credential.expiration.getTime() / 1000),
  };
}

/** Registers `roles/:name/credential/<action>`, which issues a client credential through `kmip[action]`. */
function registerIssueRoute(
  app: FastifyInstance,
  kmip: KmipCredentials,
  action: "generate" | "sign",
  summary: string,
  body: unknown,
) {
  app.route<NameRequest<CredentialRequest>>({
    method: WRITE_METHODS,
    url: `${PREFIX}/roles/:name/credential/${action}`,
    schema: { tags: TAGS, summary, params: nameParams, body },
    handler: async (request, reply) =>
      sendData(request, reply, issuedData(await kmip[action](request.params.name, request.body))),
  });
}

/**
 * Registers the KMIP roles and credentials under `/v1/sys/kmip/`, which
 * the server does when KMIP is enabled. `ca` and `ca/pem` are public, because the CA
 * certificate is what clients need to trust the server before they hold a
 * credential. The other paths need a token whose policies grant them.
 */
export async function registerKmipRoutes(app: FastifyInstance, kmip: KmipCredentials) {
  app.get(`${PREFIX}/ca`, {
    config: { public: true },
    schema: { tags: TAGS, summary: "Read the KMIP CA certificate." },
    handler: async (request, reply) =>
      sendData(request, reply, { ca_pem: await kmip.caCertificate() }),
  });

  app.get(`${PREFIX}/ca/pem`, {
    config: { public: true },
    schema: { tags: TAGS, summary: "Read the KMIP CA certificate as PEM." },
    handler: async (_request, reply) =>
      sendRaw(reply, "application/x-pem-file", `${await kmip.caCertificate()}\n`),
  });

  registerListRoute(app, `${PREFIX}/roles`, TAGS, "List KMIP roles.", () => kmip.store.listRoles());

  app.route<NameRequest<KmipRoleInput>>({
    method: WRITE_METHODS,
    url: `${PREFIX}/roles/:name`,
    schema: {
      tags: TAGS,
      summary: "Create or update a KMIP role.",
      params: nameParams,
      body: roleBody,
    },
    handler: async (request, reply) => {
      await kmip.writeRole(request.params.name, request.body);
      return reply.code(204).send();
    },
  });

  app.get<NameRequest>(`${PREFIX}/roles/:name`, {
    schema: { tags: TAGS, summary: "Read a KMIP role.", params: nameParams },
    handler: async (request, reply) =>
      sendData(request, reply, kmipRoleData(await kmip.store.requireRole(request.params.name))),
  });

  app.delete<NameRequest>(`${PREFIX}/roles/:name`, {
    schema: {
      tags: TAGS,
      summary: "Delete a KMIP role; its credentials stop working.",
      params: nameParams,
    },
    handler: async (request, reply) => {
      await kmip.store.requireRole(request.params.name);
      await kmip.store.deleteRole(request.params.name);
      return reply.code(204).send();
    },
  });

  registerIssueRoute(
    app,
    kmip,
    "generate",
    "Issue a client certificate and its new private key.",
    generateBody,
  );
  registerIssueRoute(
    app,
    kmip,
    "sign",
    "Issue a client certificate for the key of a CSR.",
    signBody,
  );

  registerListRoute(
    app,
    `${PREFIX}/roles/:name/credential`,
    TAGS,
    "List the serial numbers of a KMIP role's credentials.",
    (request) => kmip.listCredentials((request.params as { name: string }).name),
  );

  app.get<{ Params: { name: string }; Querystring: { serial_number: string } }>(
    `${PREFIX}/roles/:name/credential/lookup`,
    {
      schema: {
        tags: TAGS,
        summary: "Read a credential's record.",
        params: nameParams,
        querystring: serialQuery,
      },
      handler: async (request, reply) =>
        sendData(
          request,
          reply,
          credentialData(await kmip.lookup(request.params.name, request.query.serial_number)),
        ),
    },
  );

  app.route<NameRequest<{ serial_number: string }>>({
    method: WRITE_METHODS,
    url: `${PREFIX}/roles/:name/credential/revoke`,
    schema: {
      tags: TAGS,
      summary: "Revoke a credential.",
      params: nameParams,
      body: serialBody,
    },
    handler: async (request, reply) =>
      sendData(
        request,
        reply,
        credentialData(await kmip.revoke(request.params.name, request.body.serial_number)),
      ),
  });
}
