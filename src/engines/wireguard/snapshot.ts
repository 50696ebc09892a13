import {
  countActivated,
  effectiveView,
  type NetworkView,
  type StagedActivation,
  stagedActivations,
} from "./staging.ts";
import type { NetworkRecord, PeerRecord } from "./types.ts";

/**
 * A network with every one of its peers as stored at one network revision,
 * with indexes computed once: the staged keys in activation order, the
 * peers of each device, and the views already built from it.
 */
export interface Snapshot {
  network: NetworkRecord;
  /** Every peer, in name order. */
  peers: readonly PeerRecord[];
  staged: readonly StagedActivation[];
  /** Names of the peers bound to each device. */
  peersByDevice: ReadonlyMap<string, readonly string[]>;
  /** Views of this snapshot keyed by the number of activated staged keys. */
  views: Map<number, NetworkView>;
}

export function createSnapshot(network: NetworkRecord, peers: readonly PeerRecord[]): Snapshot {
  const peersByDevice = new Map<string, string[]>();
  for (const peer of peers) {
    if (peer.deviceId === undefined) continue;
    const names = peersByDevice.get(peer.deviceId);
    if (names) names.push(peer.name);
    else peersByDevice.set(peer.deviceId, [peer.name]);
  }
  return { network, peers, staged: stagedActivations(peers), peersByDevice, views: new Map() };
}

/**
 * Returns the snapshot's view at `at` (see `effectiveView`). Views change
 * only when a staged key activates, so one is built per number of activated
 * keys and reused.
 */
export function viewAt(snapshot: Snapshot, at: Date): NetworkView {
  const activated = countActivated(snapshot.staged, at);
  let view = snapshot.views.get(activated);
  if (view === undefined) {
    view = effectiveView(snapshot.network, snapshot.peers, at);
    snapshot.views.set(activated, view);
  }
  return view;
}

/** Returns the names of the devices with a peer in the snapshot. */
export function devicesOf(snapshot: Snapshot): string[] {
  return [...snapshot.peersByDevice.keys()];
}
