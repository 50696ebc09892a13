import type { NetworkRecord, PeerRecord } from "./types.ts";

/**
 * A network as configurations show it at one time: staged keys whose
 * activation time has come replace their peers' keys.
 */
export interface NetworkView {
  network: NetworkRecord;
  /** Every peer, in the stored order, with activated staged keys promoted. */
  peers: readonly PeerRecord[];
  /** The promoted peer records, which a write stores to make the promotion permanent. */
  promoted: readonly PeerRecord[];
}

/** A staged key's activation time in milliseconds, with its peer's name. */
export interface StagedActivation {
  peer: string;
  activateAt: number;
}

/**
 * Returns the staged keys of `peers`, ordered by activation time and then
 * by peer name: the order in which they take their revisions.
 */
export function stagedActivations(peers: readonly PeerRecord[]): StagedActivation[] {
  const staged: StagedActivation[] = [];
  for (const peer of peers) {
    if (peer.next !== undefined) {
      staged.push({ peer: peer.name, activateAt: Date.parse(peer.next.activateAt) });
    }
  }
  return staged.sort((a, b) => {
    if (a.activateAt !== b.activateAt) return a.activateAt - b.activateAt;
    if (a.peer === b.peer) return 0;
    return a.peer < b.peer ? -1 : 1;
  });
}

/** Counts the staged keys (ordered as `stagedActivations` returns them) that are active at `at`. */
export function countActivated(staged: readonly StagedActivation[], at: Date): number {
  const time = at.getTime();
  let count = 0;
  while (count < staged.length && (staged[count] as StagedActivation).activateAt <= time) count++;
  return count;
}

/** Returns `peer` with its staged key made active, stamped with `revision`. */
export function promoteStagedKey(peer: PeerRecord, revision: number): PeerRecord {
  const { next, ...rest } = peer;
  if (next === undefined) return peer;
  return {
    ...rest,
    publicKey: next.publicKey,
    keySource: next.keySource,
    keyVersion: next.keyVersion,
    keyCreatedAt: next.createdAt,
    keyActivatedAt: next.activateAt,
    pskSecret: next.pskSecret,
    revision,
  };
}

/**
 * Returns the network as it is at time `at`: every staged key whose
 * activation time is `at` or earlier replaces its peer's key. The function
 * is pure, so rendering, peer status and configuration versions agree
 * whether or not a write or a job has stored the promotion yet.
 *
 * Configuration versions must rise when a staged key activates, above every
 * revision stamped before, although writes may have happened between the
 * staging and the activation. The n-th activated key in activation order
 * therefore takes revision `network.revision + n`, and the view's network
 * revision is advanced past them. Every stored revision is at most
 * `network.revision`, so an activation raises each version that depends on
 * the peer. A write starts from this view and stores the promoted records
 * with exactly these revisions, so storing them changes no version.
 */
export function effectiveView(
  network: NetworkRecord,
  peers: readonly PeerRecord[],
  at: Date,
): NetworkView {
  const staged = stagedActivations(peers);
  const activated = staged.slice(0, countActivated(staged, at));
  if (activated.length === 0) return { network, peers, promoted: [] };

  const revisions = new Map<string, number>();
  activated.forEach((activation, index) => {
    revisions.set(activation.peer, network.revision + index + 1);
  });
  const promoted: PeerRecord[] = [];
  const viewPeers = peers.map((peer) => {
    const revision = revisions.get(peer.name);
    if (revision === undefined) return peer;
    const record = promoteStagedKey(peer, revision);
    promoted.push(record);
    return record;
  });
  return {
    network: { ...network, revision: network.revision + activated.length },
    peers: viewPeers,
    promoted,
  };
}
