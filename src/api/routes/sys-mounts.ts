import type { FastifyInstance } from "fastify";
import type { Keyward } from "../../core/keyward.ts";
import { ENGINE_TYPES, type MountEntry } from "../../core/mounts.ts";
import { KeywardError } from "../../errors.ts";
import { envelope } from "../envelope.ts";

function mountInfo(entry: MountEntry) {
  return {
    type: entry.type,
    description: entry.description,
    accessor: entry.accessor,
    config: { default_lease_ttl: 0, max_lease_ttl: 0, force_no_cache: false },
    local: false,
    seal_wrap: false,
    external_entropy_access: false,
    options: null,
    created_at: entry.createdAt,
  };
}

const SYS_MOUNT = {
  type: "system",
  description: "system endpoints used for control, policy and debugging",
  accessor: "system",
  config: { default_lease_ttl: 0, max_lease_ttl: 0, force_no_cache: false },
  local: false,
  seal_wrap: false,
  external_entropy_access: false,
  options: null,
};

const pathParams = {
  type: "object",
  required: ["path"],
  properties: { path: { type: "string", minLength: 1, maxLength: 65 } },
} as const;

/** `sys/mounts`: list, enable, read and disable secrets engines, with Vault's shapes. */
export async function registerMountRoutes(app: FastifyInstance, keyward: Keyward) {
  app.get("/v1/sys/mounts", {
    schema: { tags: ["sys"], summary: "List the mounted secrets engines." },
    handler: async (request) => {
      const data: Record<string, unknown> = { "sys/": SYS_MOUNT };
      for (const entry of keyward.mounts()) data[`${entry.path}/`] = mountInfo(entry);
      // Vault returns the table both at the top level and under `data`.
      return { ...data, ...envelope(data, { requestId: request.id }) };
    },
  });

  app.get("/v1/sys/mounts/:path", {
    schema: { tags: ["sys"], summary: "Read one mount's configuration.", params: pathParams },
    handler: async (request) => {
      const { path } = request.params as { path: string };
      const entry = keyward
        .mounts()
        .find((mount) => `${mount.path}/` === path || mount.path === path);
      if (!entry) throw new KeywardError("not_found", `no secrets engine is mounted at "${path}"`);
      const info = mountInfo(entry);
      return { ...info, ...envelope(info, { requestId: request.id }) };
    },
  });

  app.route({
    method: ["POST", "PUT"],
    url: "/v1/sys/mounts/:path",
    schema: {
      tags: ["sys"],
      summary: "Mount a secrets engine at a path.",
      params: pathParams,
      body: {
        type: "object",
        additionalProperties: false,
        required: ["type"],
        properties: {
          type: { type: "string", enum: [...ENGINE_TYPES] },
          description: { type: "string", maxLength: 1024 },
          config: { type: "object" },
          options: { type: ["object", "null"] },
          local: { type: "boolean" },
          seal_wrap: { type: "boolean" },
          // node-vault sends its path parameter in the body too; it is ignored.
          mount_point: { type: "string" },
        },
      },
    },
    handler: async (request, reply) => {
      const { path } = request.params as { path: string };
      const body = request.body as { type: (typeof ENGINE_TYPES)[number]; description?: string };
      await keyward.mount(path, body.type, body.description ?? "");
      return reply.code(204).send();
    },
  });

  app.delete("/v1/sys/mounts/:path", {
    schema: {
      tags: ["sys"],
      summary: "Unmount a secrets engine and delete its data.",
      params: pathParams,
    },
    handler: async (request, reply) => {
      const { path } = request.params as { path: string };
      await keyward.unmount(path);
      return reply.code(204).send();
    },
  });
}
