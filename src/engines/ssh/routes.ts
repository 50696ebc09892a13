import type { FastifyInstance } from "fastify";
import { rejectWrongJsonTypes } from "../../util/json-types.ts";
import { registerCaRoutes } from "./routes/ca.ts";
import { registerCertificateRoutes } from "./routes/certificates.ts";
import { registerLegacyKeyRoutes } from "./routes/legacy-keys.ts";
import { registerRevocationRoutes } from "./routes/revocation.ts";
import { registerRoleRoutes } from "./routes/roles.ts";
import type { SshServiceResolver } from "./routes/shared.ts";

export type { SshServiceResolver } from "./routes/shared.ts";

/**
 * Registers the SSH engine's routes relative to the mount's prefix
 * (`app.register(plugin, { prefix: "/v1/ssh" })`). `serviceFor` returns the
 * mount's service for each request.
 *
 * The app must keep unknown body fields (AJV's `removeAdditional: false`) so
 * that bodies with unknown fields are rejected. Routes that need no token
 * (`public_key`, `known_hosts`, `krl`) carry `config.public`. A
 * `preValidation` hook on `app` rejects body values whose JSON type the
 * schema would otherwise coerce, such as `true` for a TTL. Register the
 * routes in their own plugin scope so that the hook applies to them only.
 */
export async function registerSshRoutes(
  app: FastifyInstance,
  serviceFor: SshServiceResolver,
): Promise<void> {
  app.addHook("preValidation", rejectWrongJsonTypes);
  await registerCaRoutes(app, serviceFor);
  await registerRoleRoutes(app, serviceFor);
  await registerCertificateRoutes(app, serviceFor);
  await registerRevocationRoutes(app, serviceFor);
  await registerLegacyKeyRoutes(app, serviceFor);
}
