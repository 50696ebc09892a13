import type { FastifyInstance } from "fastify";
import { registerEncryptionRoutes } from "./routes/encryption.ts";
import { registerExportRoutes } from "./routes/export.ts";
import { registerImportRoutes } from "./routes/import.ts";
import { registerKeyRoutes } from "./routes/keys.ts";
import { registerLifecycleRoutes } from "./routes/lifecycle.ts";
import type { ServiceResolver } from "./routes/resolver.ts";
import { registerSigningRoutes } from "./routes/signing.ts";
import { registerUtilityRoutes } from "./routes/utility.ts";
import { TransitService } from "./service.ts";

export type { ServiceResolver } from "./routes/resolver.ts";

/**
 * Registers the transit engine's routes, relative to the mount's prefix
 * (`app.register(plugin, { prefix: "/v1/transit" })`). `service` is the
 * mount's service, or a function that returns the service for each request.
 *
 * The app must keep unknown body fields (AJV's `removeAdditional: false`) so
 * that bodies with unknown fields are rejected, and should allow route
 * parameters of at least 128 characters (`routerOptions.maxParamLength`) so
 * that every valid key name reaches the routes.
 */
export async function registerTransitRoutes(
  app: FastifyInstance,
  service: TransitService | ServiceResolver,
): Promise<void> {
  const serviceFor: ServiceResolver = service instanceof TransitService ? () => service : service;
  await registerKeyRoutes(app, serviceFor);
  await registerLifecycleRoutes(app, serviceFor);
  await registerEncryptionRoutes(app, serviceFor);
  await registerSigningRoutes(app, serviceFor);
  await registerExportRoutes(app, serviceFor);
  await registerImportRoutes(app, serviceFor);
  await registerUtilityRoutes(app, serviceFor);
}
