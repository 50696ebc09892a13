import { Resolver } from "node:dns/promises";
import type { AcmeConfig } from "../config.ts";

/** Returns a DNS resolver that queries `dns_resolver` (or the system's servers when empty), one try per query. */
export function createResolver(config: AcmeConfig, timeoutMs: number): Resolver {
  const resolver = new Resolver({ timeout: timeoutMs, tries: 1 });
  if (config.dns_resolver !== "") resolver.setServers([config.dns_resolver]);
  return resolver;
}
