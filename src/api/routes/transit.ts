import type { FastifyInstance, FastifyRequest } from "fastify";
import type { Keyward } from "../../core/keyward.ts";
import { registerTransitRoutes } from "../../engines/transit/index.ts";
import { KeywardError } from "../../errors.ts";
import { constrainToEngine } from "../engine-constraint.ts";

/**
 * Serves every transit mount from one set of routes under `/v1/:mount`.
 * Each request picks its mount's service from the mount table, so a mount
 * enabled through `sys/mounts` serves requests at once, without re-registering
 * routes. Fastify matches the static `/v1/sys/...` routes first. The routes
 * carry the `engine: "transit"` router constraint, so they serve only
 * transit mounts.
 */
export async function registerTransitMounts(app: FastifyInstance, keyward: Keyward) {
  const serviceFor = (request: FastifyRequest) => {
    const { mount } = request.params as { mount: string };
    if (keyward.sealed) throw new KeywardError("sealed", "Keyward is sealed");
    const service = keyward.transit(mount);
    if (!service) {
      throw new KeywardError("route_not_found", `no secrets engine is mounted at "${mount}/"`);
    }
    return service;
  };
  await app.register(
    async (scope) => {
      constrainToEngine(scope, "transit");
      await registerTransitRoutes(scope, serviceFor);
    },
    {
      prefix: "/v1/:mount",
    },
  );
}
