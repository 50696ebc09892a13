import type { FastifyInstance } from "fastify";
import { rejectWrongJsonTypes } from "../../util/json-types.ts";
import { registerNetworkRoutes } from "./routes/networks.ts";
import { registerPeerRoutes } from "./routes/peers.ts";
import type { WireguardServiceResolver } from "./routes/shared.ts";

export type { WireguardServiceResolver } from "./routes/shared.ts";

/**
 * Registers the WireGuard engine's routes relative to the mount's prefix
 * (`app.register(plugin, { prefix: "/v1/wireguard" })`). `serviceFor`
 * returns the mount's service for each request. The app must keep unknown
 * body fields (AJV's `removeAdditional: false`) so they are rejected. A
 * `preValidation` hook rejects body values of a type the schema would
 * otherwise coerce, such as `true` for a duration, so register the routes
 * in their own plugin scope.
 */
export async function registerWireguardRoutes(
  app: FastifyInstance,
  serviceFor: WireguardServiceResolver,
): Promise<void> {
  app.addHook("preValidation", rejectWrongJsonTypes);
  await registerNetworkRoutes(app, serviceFor);
  await registerPeerRoutes(app, serviceFor);
}
