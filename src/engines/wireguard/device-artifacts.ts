import type { ArtifactContent, DeviceArtifact } from "../../devices/artifacts.ts";
import { configVersion, interfaceAddresses, reachablePeers, renderConfigs } from "./render.ts";
import type { NetworkView } from "./staging.ts";
import type { PeerRecord } from "./types.ts";

/** The artifact kind of WireGuard peers. */
export const WIREGUARD_ARTIFACT_KIND = "wireguard";

/** Returns the artifact id of a peer: `wireguard:<mount>:<network>:<peer>`. */
export function wireguardArtifactId(mount: string, network: string, peer: string): string {
  return `${WIREGUARD_ARTIFACT_KIND}:${mount}:${network}:${peer}`;
}

function findPeer(view: NetworkView, name: string): PeerRecord {
  const peer = view.peers.find((candidate) => candidate.name === name);
  // The views of one snapshot share its peers, so a peer found once is in every view.
  if (!peer) throw new Error(`peer "${name}" is missing from a view of its own network`);
  return peer;
}

/** Builds what the device installs for peer `name` in `view`: its fields and both rendered configurations. */
function contentOf(mount: string, view: NetworkView, name: string): ArtifactContent {
  const { network, peers } = view;
  const self = findPeer(view, name);
  const version = configVersion(network, self, peers);
  const configs = renderConfigs(network, self, peers, version);
  return {
    version,
    fields: {
      mount,
      network: network.name,
      peer: self.name,
      // New for every peer created, so a peer deleted and created again never looks unchanged.
      peer_id: self.id,
      public_key: self.publicKey ?? null,
      key_version: self.keyVersion,
      addresses: interfaceAddresses(network, self),
      listen_port: self.listenPort ?? network.listenPort,
      // A peer without a key shows public_key null, and its agent registers a first key without a request.
      rotate_key: self.rotationRequestedAt !== undefined,
    },
    secrets: { "wg-quick": configs["wg-quick"], wg: configs.wg },
  };
}

/**
 * Returns the earliest activation time after `at` of a staged key that
 * changes `name`'s configuration: its own, or that of a peer it lists.
 */
function nextActivation(view: NetworkView, name: string, at: Date): number | undefined {
  const self = findPeer(view, name);
  let soonest: number | undefined;
  for (const peer of [self, ...reachablePeers(view.network, self, view.peers)]) {
    if (peer.next === undefined) continue;
    const activateAt = Date.parse(peer.next.activateAt);
    if (activateAt > at.getTime() && (soonest === undefined || activateAt < soonest)) {
      soonest = activateAt;
    }
  }
  return soonest;
}

/**
 * Builds the device artifact of peer `name` at time `at`. `viewAt` returns
 * the network's view at any time, so `next` shows the configuration exactly
 * as it will be when the soonest staged key that concerns this peer
 * activates.
 */
export function buildDeviceArtifact(
  mount: string,
  name: string,
  at: Date,
  viewAt: (time: Date) => NetworkView,
): DeviceArtifact {
  const view = viewAt(at);
  const artifact: DeviceArtifact = {
    id: wireguardArtifactId(mount, view.network.name, name),
    kind: WIREGUARD_ARTIFACT_KIND,
    ...contentOf(mount, view, name),
  };
  const activateAt = nextActivation(view, name, at);
  if (activateAt !== undefined) {
    const time = new Date(activateAt);
    artifact.next = { ...contentOf(mount, viewAt(time), name), activateAt: time.toISOString() };
  }
  return artifact;
}
