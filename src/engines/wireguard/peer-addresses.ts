import { KeywardError } from "../../errors.ts";
import { type Family, formatAddress, parseAddress } from "../../util/ip-address.ts";
import {
  formatPrefix,
  lowestFree,
  type Prefix,
  parsePrefix,
  prefixContains,
  prefixesOverlap,
  usableBounds,
} from "./addresses.ts";
import type { NetworkRecord, PeerRecord } from "./types.ts";
import { stringList } from "./validation.ts";

function ranges(network: NetworkRecord): Prefix[] {
  return network.addressRanges.map((text) => parsePrefix(text, "address_ranges", true));
}

/**
 * Allocates one tunnel address per range of the network: the requested one
 * when it is usable and free, otherwise the lowest free address. Addresses
 * of deleted peers become free again; an allocated one is never handed out
 * twice.
 */
export function allocateAddresses(network: NetworkRecord, requested: unknown): string[] {
  const networkRanges = ranges(network);
  const requestedByFamily = new Map<Family, bigint>();
  if (requested !== undefined) {
    for (const text of stringList(requested, "addresses")) {
      const bare = text.replace(/\/(?:32|128)$/, "");
      const parsed = parseAddress(bare);
      if (!parsed) {
        throw new KeywardError(
          "invalid_field",
          `"addresses": "${bare.slice(0, 64)}" is not an IP address`,
          {
            field: "addresses",
          },
        );
      }
      if (requestedByFamily.has(parsed.family)) {
        throw new KeywardError("invalid_field", `"addresses" may contain one address per family`, {
          field: "addresses",
        });
      }
      requestedByFamily.set(parsed.family, parsed.value);
    }
  }

  const allocated = new Set(Object.keys(network.allocations));
  const addresses: string[] = [];
  for (const range of networkRanges) {
    const value = requestedByFamily.get(range.family);
    requestedByFamily.delete(range.family);
    if (value === undefined) {
      const free = lowestFree(range, allocated);
      if (free === undefined) {
        throw new KeywardError(
          "address_conflict",
          `network "${network.name}" has no free address left in ${formatPrefix(range)}`,
          { field: "addresses" },
        );
      }
      addresses.push(formatAddress(range.family, free));
      continue;
    }
    const text = formatAddress(range.family, value);
    const { first, last } = usableBounds(range);
    if (!prefixContains(range, range.family, value) || value < first || value > last) {
      throw new KeywardError(
        "invalid_field",
        `"addresses": ${text} is not a usable address of ${formatPrefix(range)}`,
        { field: "addresses" },
      );
    }
    if (allocated.has(text)) {
      throw new KeywardError(
        "address_conflict",
        `"addresses": ${text} is already allocated to peer "${network.allocations[text]}"`,
        { field: "addresses" },
      );
    }
    addresses.push(text);
  }
  if (requestedByFamily.size > 0) {
    throw new KeywardError(
      "invalid_field",
      `"addresses" names an address family that network "${network.name}" has no range for`,
      { field: "addresses" },
    );
  }
  return addresses;
}

/**
 * Validates a peer's extra routes. Each must lie outside the network's
 * ranges, because a route inside them would capture addresses allocated
 * later. None may be routed to another peer already, because WireGuard gives
 * an identical AllowedIPs entry to only one peer of an interface. A route
 * may contain the ranges, as a default route (0.0.0.0/0) through an exit
 * peer does.
 */
export function validateRoutes(
  network: NetworkRecord,
  others: readonly PeerRecord[],
  value: unknown,
): string[] {
  const networkRanges = ranges(network);
  const routes = stringList(value, "allowed_ips").map((text) =>
    parsePrefix(text, "allowed_ips", true),
  );
  const seen = new Set<string>();
  for (const route of routes) {
    const text = formatPrefix(route);
    for (const range of networkRanges) {
      if (prefixesOverlap(route, range) && route.length >= range.length) {
        throw new KeywardError(
          "invalid_field",
          `"allowed_ips": ${text} lies inside the network's range ${formatPrefix(range)}; peers get their own addresses there`,
          { field: "allowed_ips" },
        );
      }
    }
    if (seen.has(text)) {
      throw new KeywardError("invalid_field", `"allowed_ips" lists ${text} twice`, {
        field: "allowed_ips",
      });
    }
    seen.add(text);
    const owner = others.find((peer) => peer.allowedIps.includes(text));
    if (owner) {
      throw new KeywardError(
        "address_conflict",
        `"allowed_ips": ${text} is already routed to peer "${owner.name}"`,
        { field: "allowed_ips" },
      );
    }
  }
  return [...seen];
}
