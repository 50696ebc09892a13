import type { FastifyInstance, FastifyRequest } from "fastify";
import type { Keyward } from "../../core/keyward.ts";
import { registerWireguardRoutes } from "../../engines/wireguard/index.ts";
import { KeywardError } from "../../errors.ts";
import { constrainToEngine } from "../engine-constraint.ts";

/**
 * Serves every WireGuard mount from one set of routes under `/v1/:mount`,
 * with the `engine: "wireguard"` router constraint. Each request picks its
 * mount's service from the mount table.
 */
export async function registerWireguardMounts(app: FastifyInstance, keyward: Keyward) {
  const serviceFor = (request: FastifyRequest) => {
    const { mount } = request.params as { mount: string };
    if (keyward.sealed) throw new KeywardError("sealed", "Keyward is sealed");
    const service = keyward.wireguard(mount);
    if (!service) {
      throw new KeywardError("route_not_found", `no WireGuard engine is mounted at "${mount}/"`);
    }
    return service;
  };

  await app.register(
    async (scope) => {
      constrainToEngine(scope, "wireguard");
      await registerWireguardRoutes(scope, serviceFor);
    },
    { prefix: "/v1/:mount" },
  );
}
