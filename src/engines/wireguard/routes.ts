import type { FastifyInstance } from "fastify";
import { registerNetworkRoutes } from "./routes/networks.ts";
import { registerPeerRoutes } from "./routes/peers.ts";
import type { WireguardServiceResolver } from "./routes/shared.ts";

export type { WireguardServiceResolver } from "./routes/shared.ts";

/**
 * Registers the WireGuard engine's routes relative to the mount's prefix
 * (`app.register(plugin, { prefix: "/v1/wireguard" })`). `serviceFor`
 * returns the mount's service for each request. The app must keep unknown
 * body fields (AJV's `removeAdditional: false`) so they are rejected.
 */
export async function registerWireguardRoutes(
  app: FastifyInstance,
  serviceFor: WireguardServiceResolver,
): Promise<void> {
  await registerNetworkRoutes(app, serviceFor);
  await registerPeerRoutes(app, serviceFor);
}
