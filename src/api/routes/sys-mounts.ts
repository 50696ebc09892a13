import type { FastifyInstance } from "fastify";
import { parseDuration } from "../../auth/duration.ts";
import type { Keyward } from "../../core/keyward.ts";
import { ENGINE_TYPES, type MountConfig, type MountEntry } from "../../core/mounts.ts";
import { KeywardError } from "../../errors.ts";
import { envelope } from "../envelope.ts";

function mountInfo(entry: MountEntry) {
  return {
    type: entry.type,
    description: entry.description,
    accessor: entry.accessor,
    config: {
      default_lease_ttl: entry.config?.defaultLeaseTtlSeconds ?? 0,
      max_lease_ttl: entry.config?.maxLeaseTtlSeconds ?? 0,
      force_no_cache: false,
    },
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

const leaseTtls = {
  default_lease_ttl: { type: ["integer", "string"], maxLength: 64, minimum: 0 },
  max_lease_ttl: { type: ["integer", "string"], maxLength: 64, minimum: 0 },
} as const;

/** Reads Vault's `default_lease_ttl` and `max_lease_ttl` (seconds or duration strings; 0 for the default). */
function mountConfigOf(config: Record<string, unknown> | undefined, prefix: string): MountConfig {
  const result: MountConfig = {};
  for (const [field, key] of [
    ["default_lease_ttl", "defaultLeaseTtlSeconds"],
    ["max_lease_ttl", "maxLeaseTtlSeconds"],
  ] as const) {
    const value = config?.[field];
    if (value === undefined) continue;
    if (typeof value !== "number" && typeof value !== "string") {
      throw new KeywardError("invalid_field", `"${prefix}${field}" must be a duration`, {
        field: `${prefix}${field}`,
      });
    }
    result[key] = parseDuration(value, `${prefix}${field}`);
  }
  return result;
}

/** `sys/mounts`: list, enable, read, tune and disable secrets engines, with Vault's shapes. */
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
      const body = request.body as {
        type: (typeof ENGINE_TYPES)[number];
        description?: string;
        config?: Record<string, unknown>;
      };
      await keyward.mount(
        path,
        body.type,
        body.description ?? "",
        mountConfigOf(body.config, "config."),
      );
      return reply.code(204).send();
    },
  });

  app.get("/v1/sys/mounts/:path/tune", {
    schema: { tags: ["sys"], summary: "Read a mount's lease TTLs.", params: pathParams },
    handler: async (request) => {
      const { path } = request.params as { path: string };
      const entry = keyward.mounts().find((mount) => mount.path === path.replace(/\/$/, ""));
      if (!entry) throw new KeywardError("not_found", `no secrets engine is mounted at "${path}"`);
      const data = {
        default_lease_ttl: entry.config?.defaultLeaseTtlSeconds ?? 0,
        max_lease_ttl: entry.config?.maxLeaseTtlSeconds ?? 0,
        description: entry.description,
        force_no_cache: false,
      };
      return { ...data, ...envelope(data, { requestId: request.id }) };
    },
  });

  app.route({
    method: ["POST", "PUT"],
    url: "/v1/sys/mounts/:path/tune",
    schema: {
      tags: ["sys"],
      summary:
        "Change a mount's lease TTLs (the PKI engine's default and maximum certificate TTL).",
      params: pathParams,
      body: {
        type: "object",
        additionalProperties: false,
        properties: { ...leaseTtls, mount_point: { type: "string" } },
      },
    },
    handler: async (request, reply) => {
      const { path } = request.params as { path: string };
      await keyward.tuneMount(path, mountConfigOf(request.body as Record<string, unknown>, ""));
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
