import type { FastifyInstance, FastifyRequest } from "fastify";
import type { CaInfo, CaKind } from "../types.ts";
import {
  defaultEmptyBody,
  MAX_PRIVATE_KEY_LENGTH,
  MAX_PUBLIC_KEY_LENGTH,
  PUBLIC,
  type SshServiceResolver,
  sendData,
  sendNoContent,
  sendRaw,
  TAGS,
  WRITE_METHODS,
} from "./shared.ts";

interface CaBody {
  generate_signing_key?: boolean;
  key_type?: string;
  key_bits?: number;
  private_key?: string;
  public_key?: string;
}

const CA_KIND_NOTE =
  "`config/ca` is the user CA, which also signs host certificates while no host CA is configured, as Vault's single CA does. `config/ca/host` configures a separate host CA (Keyward extension).";

const caKeyBody = {
  type: "object",
  additionalProperties: false,
  properties: {
    generate_signing_key: {
      type: "boolean",
      description: "Generate the CA key in Keyward (the default when no private_key is sent).",
    },
    key_type: {
      type: "string",
      maxLength: 64,
      description:
        "Key type to generate: ssh-ed25519, ecdsa-sha2-nistp256, ecdsa-sha2-nistp384, ecdsa-sha2-nistp521 or ssh-rsa (default ssh-rsa, as in Vault).",
    },
    key_bits: {
      type: "integer",
      minimum: 0,
      maximum: 16_384,
      description: "RSA size in bits (2048, 3072 or 4096; default 4096).",
    },
    private_key: {
      type: "string",
      maxLength: MAX_PRIVATE_KEY_LENGTH,
      description: "CA private key to import: OpenSSH format (unencrypted) or PEM.",
    },
    public_key: {
      type: "string",
      maxLength: MAX_PUBLIC_KEY_LENGTH,
      description: "The public key of `private_key`, checked against it when sent.",
    },
  },
} as const;

const caTypeParams = {
  type: "object",
  required: ["ca_type"],
  properties: {
    ca_type: { type: "string", enum: ["user", "host"], description: "Which CA: user or host." },
  },
} as const;

function caToWire(info: CaInfo): Record<string, unknown> {
  return {
    // Vault ends the key with a newline, so clients can write it to a file as is.
    public_key: `${info.publicKey}\n`,
    ca_type: info.kind,
    shared_with_user_ca: info.sharedWithUserCa,
    rotation_phase: info.rotationPhase,
    keys: info.keys.map((key) => ({
      id: key.id,
      key_type: key.algorithm,
      key_bits: key.bits,
      public_key: key.publicKey,
      state: key.state,
      created_at: key.createdAt,
      generated: key.generated,
    })),
  };
}

function kindOf(request: FastifyRequest): CaKind {
  return ((request.params as { ca_type?: CaKind }).ca_type ?? "user") as CaKind;
}

/** CA configuration, rotation phases and the trust bundles. */
export async function registerCaRoutes(app: FastifyInstance, serviceFor: SshServiceResolver) {
  for (const url of ["/config/ca", "/config/ca/:ca_type"]) {
    const params = url.includes(":ca_type") ? { params: caTypeParams } : {};

    app.route<{ Body: CaBody }>({
      method: WRITE_METHODS,
      url,
      preValidation: defaultEmptyBody,
      schema: {
        tags: TAGS,
        summary: "Create the CA key.",
        description: `Generates or imports the CA key. Fails with already_exists when the CA has a key; delete it or rotate it instead. The private key is never returned. ${CA_KIND_NOTE}`,
        ...params,
        body: caKeyBody,
      },
      handler: async (request, reply) => {
        const body = request.body ?? {};
        const info = await serviceFor(request).configureCa(kindOf(request), {
          generateSigningKey: body.generate_signing_key,
          keyType: body.key_type,
          keyBits: body.key_bits,
          privateKey: body.private_key,
          publicKey: body.public_key,
        });
        return sendData(request, reply, caToWire(info));
      },
    });

    app.route({
      method: "GET",
      url,
      schema: {
        tags: TAGS,
        summary: "Read the CA.",
        description: `Returns the signing key's public key, as Vault does, plus the rotation phase and every key of the CA (Keyward extension). ${CA_KIND_NOTE}`,
        ...params,
      },
      handler: async (request, reply) => {
        const info = await serviceFor(request).readCa(kindOf(request));
        return sendData(request, reply, caToWire(info));
      },
    });

    app.route({
      method: "DELETE",
      url,
      schema: {
        tags: TAGS,
        summary: "Delete the CA keys.",
        description: `Deletes every key of the CA. ${CA_KIND_NOTE}`,
        ...params,
      },
      handler: async (request, reply) => {
        await serviceFor(request).deleteCa(kindOf(request));
        return sendNoContent(reply);
      },
    });
  }

  app.route<{ Params: { ca_type: CaKind }; Body: CaBody }>({
    method: WRITE_METHODS,
    url: "/config/ca/:ca_type/rotate/prepare",
    preValidation: defaultEmptyBody,
    schema: {
      tags: TAGS,
      summary: "Rotation phase 1: add a new CA key.",
      description:
        "Adds a new key, generated or imported with the fields of config/ca. It is published in public_key and known_hosts but does not sign until switch (Keyward extension).",
      params: caTypeParams,
      body: caKeyBody,
    },
    handler: async (request, reply) => {
      const body = request.body ?? {};
      const info = await serviceFor(request).prepareCaRotation(request.params.ca_type, {
        generateSigningKey: body.generate_signing_key,
        keyType: body.key_type,
        keyBits: body.key_bits,
        privateKey: body.private_key,
        publicKey: body.public_key,
      });
      return sendData(request, reply, caToWire(info));
    },
  });

  const phases = [
    [
      "switch",
      "Rotation phase 2: sign with the new key.",
      "The prepared key signs from now on; the old key stays published until retire.",
    ],
    [
      "rollback",
      "Undo the last rotation phase.",
      "Drops a prepared key, or after switch makes the old key sign again. Not possible after retire.",
    ],
    [
      "retire",
      "Rotation phase 3: retire the old key.",
      "Removes the old key from the CA and the trust bundles and revokes it in the KRL. Cannot be undone.",
    ],
  ] as const;
  for (const [phase, summary, description] of phases) {
    app.route<{ Params: { ca_type: CaKind } }>({
      method: WRITE_METHODS,
      url: `/config/ca/:ca_type/rotate/${phase}`,
      preValidation: defaultEmptyBody,
      schema: {
        tags: TAGS,
        summary,
        description: `${description} (Keyward extension)`,
        params: caTypeParams,
        body: { type: "object", additionalProperties: false, properties: {} },
      },
      handler: async (request, reply) => {
        const service = serviceFor(request);
        const kind = request.params.ca_type;
        const info =
          phase === "switch"
            ? await service.switchCa(kind)
            : phase === "rollback"
              ? await service.rollbackCa(kind)
              : await service.retireCa(kind);
        return sendData(request, reply, caToWire(info));
      },
    });
  }

  for (const url of ["/public_key", "/public_key/:ca_type"]) {
    app.route({
      method: "GET",
      url,
      config: PUBLIC,
      schema: {
        tags: TAGS,
        summary: "Download the CA public keys.",
        description:
          "Returns every public key to trust, one OpenSSH line each, the signing key first: the contents of sshd's TrustedUserCAKeys for the user CA. During a rotation it lists both keys, so nobody is locked out. Needs no token, as in Vault.",
        ...(url.includes(":ca_type") ? { params: caTypeParams } : {}),
      },
      handler: async (request, reply) => {
        const text = await serviceFor(request).trustedCaKeys(kindOf(request));
        return sendRaw(reply, "text/plain; charset=utf-8", text);
      },
    });
  }

  app.route<{ Querystring: { host_pattern?: string } }>({
    method: "GET",
    url: "/known_hosts",
    config: PUBLIC,
    schema: {
      tags: TAGS,
      summary: "Download known_hosts lines.",
      description:
        "Returns `@cert-authority <host_pattern> <key>` for every trusted host CA key and `@revoked * <key>` for every revoked plain public key. Needs no token (Keyward extension).",
      querystring: {
        type: "object",
        additionalProperties: false,
        properties: {
          host_pattern: {
            type: "string",
            maxLength: 1024,
            description:
              'Host patterns for the @cert-authority lines, comma-separated as in known_hosts, such as "*.example.com,10.0.0.*". Default "*".',
          },
        },
      },
    },
    handler: async (request, reply) => {
      const text = await serviceFor(request).knownHosts(request.query.host_pattern);
      return sendRaw(reply, "text/plain; charset=utf-8", text);
    },
  });
}
