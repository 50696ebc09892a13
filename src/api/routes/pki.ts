import type { FastifyInstance, FastifyRequest } from "fastify";
import type { Keyward } from "../../core/keyward.ts";
import { registerPkiRoutes } from "../../engines/pki/index.ts";
import { registerEstRoutes } from "../../engines/pki/routes/est.ts";
import { KeywardError } from "../../errors.ts";
import { policyPath } from "../authorization.ts";
import { constrainToEngine } from "../engine-constraint.ts";

/**
 * Serves every PKI mount from one set of routes under `/v1/:mount`, with
 * the `engine: "pki"` router constraint, so they never shadow transit
 * routes of the same path. Each request picks its mount's service from the
 * mount table.
 */
export async function registerPkiMounts(app: FastifyInstance, keyward: Keyward) {
  const serviceFor = (request: FastifyRequest) => {
    const { mount } = request.params as { mount: string };
    if (keyward.sealed) throw new KeywardError("sealed", "Keyward is sealed");
    const service = keyward.pki(mount);
    if (!service) {
      throw new KeywardError("route_not_found", `no PKI engine is mounted at "${mount}/"`);
    }
    return service;
  };

  // sign-verbatim skips the role's name checks, so, as in Vault, it needs
  // sudo on its path besides update.
  const requireSudo = async (request: FastifyRequest) => {
    const identity = request.identity;
    if (identity === undefined) throw new KeywardError("permission_denied", "permission denied");
    const acl = await keyward.policies.acl(identity.policies);
    const decision = acl.check({ path: policyPath(request), operation: "update" });
    if (!decision.allowed || !decision.sudo) {
      request.log.warn({ accessor: identity.accessor, path: policyPath(request) }, "sudo required");
      throw new KeywardError(
        "permission_denied",
        "permission denied: this path needs the sudo capability",
      );
    }
  };

  await app.register(
    async (scope) => {
      constrainToEngine(scope, "pki");
      await registerPkiRoutes(scope, { serviceFor, requireSudo });
    },
    { prefix: "/v1/:mount" },
  );
  // EST's management and protocol routes under /v1/:mount, and /.well-known/est/.
  await registerEstRoutes(app, keyward);
}
