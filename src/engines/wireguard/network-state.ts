import type { DeviceChangeNotifier } from "../../devices/artifacts.ts";
import { notFound } from "../../errors.ts";
import type { Barrier } from "../../seal/types.ts";
import { ActivationTimers } from "./activation-timers.ts";
import { createSnapshot, devicesOf, type Snapshot, viewAt } from "./snapshot.ts";
import type { NetworkView } from "./staging.ts";
import { WireguardStore } from "./store.ts";
import type { Logger, NetworkRecord, PeerRecord } from "./types.ts";

export const networkPath = (name: string) => `networks/${name}`;
export const peerFolder = (network: string) => `peers/${network}`;
export const peerPath = (network: string, peer: string) => `peers/${network}/${peer}`;

/** A write's changes to one network: its new record, and the peers it stores or deletes. */
export interface NetworkChanges {
  network: NetworkRecord;
  put?: readonly PeerRecord[];
  deleted?: readonly string[];
}

/** A network read for a write: the stored snapshot and its view at the write's time. */
export interface WriteBase {
  snapshot: Snapshot;
  view: NetworkView;
  at: Date;
}

const byName = (a: PeerRecord, b: PeerRecord) => (a.name < b.name ? -1 : 1);

/**
 * The stored state of one mount's networks as the service reads and
 * writes it: cached snapshots, commits that also store activated staged
 * keys, activation timers, and change notifications to devices. Callers
 * hold the network's lock around a read for a write and its commit.
 */
export class NetworkState {
  readonly store: WireguardStore;
  readonly #mount: string;
  readonly #logger: Logger;
  readonly #notifier: DeviceChangeNotifier | undefined;
  readonly #timers: ActivationTimers;
  /**
   * Peers of each network as last read, keyed by network name. Every peer
   * change raises the network record's revision in the same transaction, so
   * a snapshot is reused only while the stored record still has its
   * revision and creation time.
   */
  readonly #snapshots = new Map<string, Snapshot>();

  constructor(options: {
    barrier: Barrier;
    mount: string;
    clock: () => Date;
    logger: Logger;
    notifier: DeviceChangeNotifier | undefined;
  }) {
    this.store = new WireguardStore(options.barrier, options.mount);
    this.#mount = options.mount;
    this.#logger = options.logger;
    this.#notifier = options.notifier;
    this.#timers = new ActivationTimers(
      options.clock,
      (network) => this.#notifyNetwork(network),
      options.logger,
    );
  }

  /** Clears the activation timers. */
  close(): void {
    this.#timers.close();
  }

  async listNetworks(): Promise<string[]> {
    return this.store.list("networks");
  }

  async readNetworkRecord(name: string): Promise<NetworkRecord> {
    const network = await this.store.get<NetworkRecord>(networkPath(name));
    if (!network) throw notFound(`WireGuard network "${name}"`);
    return network;
  }

  /** Reads a network and its peers, reusing the cached peers while the network's revision is unchanged. */
  async snapshot(name: string): Promise<Snapshot> {
    return this.snapshotOf(await this.readNetworkRecord(name));
  }

  async snapshotOf(network: NetworkRecord): Promise<Snapshot> {
    const name = network.name;
    const cached = this.#snapshots.get(name);
    if (
      cached &&
      cached.network.revision === network.revision &&
      cached.network.createdAt === network.createdAt
    ) {
      return cached;
    }
    const peers: PeerRecord[] = [];
    for (const peerName of await this.store.list(peerFolder(name))) {
      const peer = await this.store.get<PeerRecord>(peerPath(name, peerName));
      if (peer) peers.push(peer);
    }
    const snapshot = createSnapshot(network, peers);
    this.#snapshots.set(name, snapshot);
    return snapshot;
  }

  /** Returns the snapshots of the networks where `deviceName` has peers. */
  async snapshotsOfDevice(deviceName: string): Promise<Snapshot[]> {
    const snapshots: Snapshot[] = [];
    for (const name of await this.listNetworks()) {
      // Read on every device state request: the frozen shared copy skips
      // decoding a record with one allocation per peer while it is unchanged.
      const network = await this.store.getShared<NetworkRecord>(networkPath(name));
      // A network deleted since the listing is skipped.
      if (!network) continue;
      const snapshot = await this.snapshotOf(network);
      if (snapshot.peersByDevice.has(deviceName)) snapshots.push(snapshot);
    }
    return snapshots;
  }

  /** Reads a network for a write at `at`, with its staged keys activated by then promoted. */
  async prepare(name: string, at: Date): Promise<WriteBase> {
    return this.prepareFrom(await this.readNetworkRecord(name), at);
  }

  async prepareFrom(network: NetworkRecord, at: Date): Promise<WriteBase> {
    const snapshot = await this.snapshotOf(network);
    return { snapshot, view: viewAt(snapshot, at), at };
  }

  async prepareIfExists(name: string, at: Date): Promise<WriteBase | undefined> {
    const network = await this.store.get<NetworkRecord>(networkPath(name));
    return network ? this.prepareFrom(network, at) : undefined;
  }

  /** Stores a new network, which has no peers yet. */
  async create(network: NetworkRecord): Promise<void> {
    await this.store.transaction((tx) => tx.put(networkPath(network.name), network));
    this.#snapshots.set(network.name, createSnapshot(network, []));
  }

  /**
   * Stores a write in one transaction together with the promotions of the
   * view it was computed from, caches the result, re-arms activation timers
   * and notifies the devices of the network's peers, before and after.
   */
  async commit(base: WriteBase, changes: NetworkChanges): Promise<Snapshot> {
    const { network } = changes;
    const put = changes.put ?? [];
    const deleted = new Set(changes.deleted ?? []);
    const replaced = new Map(put.map((peer) => [peer.name, peer]));
    const promoted = base.view.promoted.filter(
      (peer) => !replaced.has(peer.name) && !deleted.has(peer.name),
    );

    await this.store.transaction(async (tx) => {
      for (const peer of [...promoted, ...put]) {
        await tx.put(peerPath(network.name, peer.name), peer);
      }
      for (const name of deleted) await tx.delete(peerPath(network.name, name));
      await tx.put(networkPath(network.name), network);
    });

    const peers = base.view.peers
      .filter((peer) => !replaced.has(peer.name) && !deleted.has(peer.name))
      .concat(put)
      .sort(byName);
    // The lock is held and the transaction committed, so this is what storage now contains.
    const after = createSnapshot(network, peers);
    this.#snapshots.set(network.name, after);

    if (base.view.promoted.length > 0) {
      this.#logger.info(
        {
          mount: this.#mount,
          network: network.name,
          peers: base.view.promoted.map((peer) => peer.name),
        },
        "WireGuard staged keys stored as active",
      );
    }
    this.syncTimers(after);
    this.#notify([...devicesOf(base.snapshot), ...devicesOf(after)]);
    return after;
  }

  /** Deletes a network and every one of its peers, and notifies their devices. */
  async deleteNetwork(snapshot: Snapshot): Promise<number> {
    const name = snapshot.network.name;
    const peers = await this.store.list(peerFolder(name));
    await this.store.transaction(async (tx) => {
      for (const peer of peers) await tx.delete(peerPath(name, peer));
      await tx.delete(networkPath(name));
    });
    this.#snapshots.delete(name);
    this.#timers.clearNetwork(name);
    this.#notify(devicesOf(snapshot));
    return peers.length;
  }

  /** Arms the activation timers of the snapshot's staged keys. Without a notifier, timers would notify no one, so none are armed. */
  syncTimers(snapshot: Snapshot): void {
    if (this.#notifier) this.#timers.sync(snapshot.network.name, snapshot.staged);
  }

  #notify(devices: readonly string[]): void {
    if (!this.#notifier || devices.length === 0) return;
    try {
      this.#notifier.changed([...new Set(devices)]);
    } catch (error) {
      this.#logger.error({ mount: this.#mount, err: error }, "device change notification failed");
    }
  }

  /** Notifies the devices of a network that a staged key has activated. */
  #notifyNetwork(network: string): void {
    this.snapshot(network).then(
      (snapshot) => this.#notify(devicesOf(snapshot)),
      (error) =>
        this.#logger.warn(
          { mount: this.#mount, network, err: error },
          "failed to read a network to notify its devices of a key activation",
        ),
    );
  }
}
