import type { FastifyInstance, FastifyRequest } from "fastify";
import type { Keyward } from "../../core/keyward.ts";
import { registerSshRoutes } from "../../engines/ssh/index.ts";
import { KeywardError } from "../../errors.ts";
import { constrainToEngine } from "../engine-constraint.ts";

/**
 * Serves every SSH mount from one set of routes under `/v1/:mount`, with
 * the `engine: "ssh"` router constraint. Each request picks its mount's
 * service from the mount table.
 */
export async function registerSshMounts(app: FastifyInstance, keyward: Keyward) {
  const serviceFor = (request: FastifyRequest) => {
    const { mount } = request.params as { mount: string };
    if (keyward.sealed) throw new KeywardError("sealed", "Keyward is sealed");
    const service = keyward.ssh(mount);
    if (!service) {
      throw new KeywardError("route_not_found", `no SSH engine is mounted at "${mount}/"`);
    }
    return service;
  };

  await app.register(
    async (scope) => {
      constrainToEngine(scope, "ssh");
      await registerSshRoutes(scope, serviceFor);
    },
    { prefix: "/v1/:mount" },
  );
}
