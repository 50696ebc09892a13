import { parsePrefix } from "./addresses.ts";
import { presharedKey } from "./psk.ts";
import type { ConfigFormat, NetworkRecord, PeerRecord } from "./types.ts";

/**
 * The value of the `PrivateKey` line in every rendered configuration. The
 * private key never reaches the server, so the endpoint replaces this line
 * with its own key. Loaded unchanged, wg and wg-quick reject it as an
 * invalid key rather than run without one.
 */
export const PRIVATE_KEY_PLACEHOLDER = "KEYWARD_PRIVATE_KEY_PLACEHOLDER";

/** True when `peer` is the hub of a hub-and-spoke network. */
function isHub(network: NetworkRecord, peer: PeerRecord): boolean {
  return network.topology === "hub-and-spoke" && network.hub === peer.name;
}

/**
 * Returns the peers that `self`'s configuration lists, in name order: every
 * other peer with a key in a full mesh and for the hub, only the hub for a
 * spoke. Peers still waiting for their first key are left out.
 */
export function reachablePeers(
  network: NetworkRecord,
  self: PeerRecord,
  peers: readonly PeerRecord[],
): PeerRecord[] {
  const others = peers.filter((peer) => peer.name !== self.name && peer.publicKey !== undefined);
  if (network.topology === "full-mesh" || isHub(network, self)) return others;
  return others.filter((peer) => isHub(network, peer));
}

/**
 * Returns the version of `self`'s configuration: the latest network revision
 * among the changes it depends on. It rises with every change to what the
 * configuration shows and never falls, because removals stamp a new
 * revision as well.
 */
export function configVersion(
  network: NetworkRecord,
  self: PeerRecord,
  peers: readonly PeerRecord[],
): number {
  let version = Math.max(network.settingsRevision, self.revision);
  const seesEveryone = network.topology === "full-mesh" || isHub(network, self);
  if (seesEveryone) version = Math.max(version, network.membershipRevision);
  for (const peer of reachablePeers(network, self, peers)) {
    version = Math.max(version, peer.revision);
  }
  return version;
}

/** Returns the tunnel addresses of `peer` with the network's prefix lengths, for the Interface section. */
export function interfaceAddresses(network: NetworkRecord, peer: PeerRecord): string[] {
  return peer.addresses.map((address) => {
    const family = address.includes(":") ? 6 : 4;
    const range = network.addressRanges
      .map((text) => parsePrefix(text, "address_ranges", true))
      .find((prefix) => prefix.family === family);
    return `${address}/${range?.length ?? (family === 4 ? 32 : 128)}`;
  });
}

/**
 * Returns the AllowedIPs of `peer` in `self`'s configuration: its tunnel addresses and extra
 * routes. A spoke routes the whole network through the hub, so the hub's
 * entry on a spoke carries the network's ranges instead of its own addresses.
 */
function allowedIpsOf(network: NetworkRecord, self: PeerRecord, peer: PeerRecord): string[] {
  const own =
    isHub(network, peer) && !isHub(network, self)
      ? network.addressRanges
      : peer.addresses.map((address) => `${address}/${address.includes(":") ? 128 : 32}`);
  return [...own, ...peer.allowedIps];
}

/**
 * Renders `self`'s configuration. `wg-quick` output has the Interface
 * fields wg-quick reads (Address, ListenPort, DNS, MTU); `wg` output has
 * only what `wg setconf` reads. The `PrivateKey` line contains
 * `PRIVATE_KEY_PLACEHOLDER`.
 */
export function renderConfig(
  network: NetworkRecord,
  self: PeerRecord,
  peers: readonly PeerRecord[],
  format: ConfigFormat,
  version: number,
): string {
  return renderInterface(network, self, format, version) + peerSections(network, self, peers);
}

/**
 * Renders `self`'s configuration in every format, deriving each preshared
 * key once for all of them.
 */
export function renderConfigs(
  network: NetworkRecord,
  self: PeerRecord,
  peers: readonly PeerRecord[],
  version: number,
): Record<ConfigFormat, string> {
  const sections = peerSections(network, self, peers);
  return {
    "wg-quick": renderInterface(network, self, "wg-quick", version) + sections,
    wg: renderInterface(network, self, "wg", version) + sections,
  };
}

/** Renders the heading comment and the Interface section, ending with a newline. */
function renderInterface(
  network: NetworkRecord,
  self: PeerRecord,
  format: ConfigFormat,
  version: number,
): string {
  const lines = [
    `# Rendered by Keyward: network ${network.name}, peer ${self.name}, configuration version ${version}`,
    "[Interface]",
    `PrivateKey = ${PRIVATE_KEY_PLACEHOLDER}`,
  ];
  if (format === "wg-quick") {
    lines.push(`Address = ${interfaceAddresses(network, self).join(", ")}`);
  }
  lines.push(`ListenPort = ${self.listenPort ?? network.listenPort}`);
  if (format === "wg-quick") {
    if (network.dns.length > 0) lines.push(`DNS = ${network.dns.join(", ")}`);
    if (network.mtu !== undefined) lines.push(`MTU = ${network.mtu}`);
  }
  return `${lines.join("\n")}\n`;
}

/** Renders one Peer section per peer `self` reaches, each preceded by a blank line. */
function peerSections(
  network: NetworkRecord,
  self: PeerRecord,
  peers: readonly PeerRecord[],
): string {
  const lines: string[] = [];
  for (const peer of reachablePeers(network, self, peers)) {
    lines.push(
      "",
      "[Peer]",
      `# ${peer.name}`,
      `PublicKey = ${peer.publicKey}`,
      `PresharedKey = ${presharedKey(self, peer)}`,
      `AllowedIPs = ${allowedIpsOf(network, self, peer).join(", ")}`,
    );
    if (peer.endpoint !== undefined) lines.push(`Endpoint = ${peer.endpoint}`);
    if (network.persistentKeepalive > 0) {
      lines.push(`PersistentKeepalive = ${network.persistentKeepalive}`);
    }
  }
  return lines.length === 0 ? "" : `${lines.join("\n")}\n`;
}
