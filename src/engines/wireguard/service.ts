import { KeywardError, notFound } from "../../errors.ts";
import { applyNetworkWrite, checkNoOverlap, networkInfo, parseRanges } from "./networks.ts";
import { type AppliedPeerWrite, applyPeerWrite, applyRotation, peerInfo } from "./peers.ts";
import { configVersion, interfaceAddresses, renderConfig } from "./render.ts";
import { type RecordWriter, WireguardStore } from "./store.ts";
import {
  CONFIG_FORMATS,
  type ConfigFormat,
  type Logger,
  type NetworkInfo,
  type NetworkRecord,
  type NetworkWrite,
  type PeerInfo,
  type PeerRecord,
  type PeerWrite,
  type PeerWriteResult,
  type RenderedConfig,
  type RotateRequest,
  type WireguardServiceOptions,
} from "./types.ts";
import { validateDeviceId, validateName } from "./validation.ts";

const silentLogger: Logger = { info() {}, warn() {}, error() {} };

/** A network with every one of its peers, as read at one network revision. */
interface Snapshot {
  network: NetworkRecord;
  peers: readonly PeerRecord[];
}

const networkPath = (name: string) => `networks/${name}`;
const peerFolder = (network: string) => `peers/${network}`;
const peerPath = (network: string, peer: string) => `peers/${network}/${peer}`;

/** Lock that serialises network creation, deletion and range changes, for the overlap check. */
const NETWORKS_LOCK = "networks";
const networkLock = (name: string) => `network:${name}`;

/** Serialises the network settings that every peer's configuration shows, for change detection. */
function renderedSettings(network: NetworkRecord): string {
  return JSON.stringify([
    network.addressRanges,
    network.listenPort,
    network.dns,
    network.mtu,
    network.persistentKeepalive,
    network.topology,
    network.hub,
  ]);
}

/**
 * The WireGuard engine of one mount: networks, their peers, address
 * allocation, per-pair preshared keys, key rotation and rendered
 * configurations. Private keys of endpoints never reach it; a key the
 * server generates for a peer without an agent is returned once and not
 * stored. Everything is stored behind the barrier under `<mount>/`.
 * Methods throw a `KeywardError` on failure.
 */
export class WireguardService {
  readonly mount: string;
  readonly #store: WireguardStore;
  readonly #clock: () => Date;
  readonly #logger: Logger;
  /**
   * Peers of each network as last read, keyed by network name. Every peer
   * change raises the network record's revision in the same transaction, so
   * a snapshot is reused only while the stored record still has its
   * revision and creation time.
   */
  readonly #snapshots = new Map<string, Snapshot>();

  constructor(options: WireguardServiceOptions) {
    if (!/^[A-Za-z0-9_-]+(?:\/[A-Za-z0-9_-]+)*$/.test(options.mount)) {
      throw new KeywardError("invalid_field", `invalid mount path "${options.mount}"`, {
        field: "mount",
      });
    }
    this.mount = options.mount;
    this.#clock = options.clock ?? (() => new Date());
    this.#logger = options.logger ?? silentLogger;
    this.#store = new WireguardStore(options.barrier, options.mount);
  }

  // Networks

  /** Creates network `name`, or updates it: omitted fields keep their values. */
  async writeNetwork(name: string, write: NetworkWrite): Promise<NetworkInfo> {
    validateName(name, "name");
    return this.#store.withLock(NETWORKS_LOCK, () =>
      this.#store.withLock(networkLock(name), async () => {
        const current = await this.#store.get<NetworkRecord>(networkPath(name));
        const next = applyNetworkWrite(name, write, current, this.#clock().toISOString());
        if (next.addressRanges.join(",") !== current?.addressRanges.join(",")) {
          checkNoOverlap(name, parseRanges(next.addressRanges), await this.#otherNetworks(name));
        }
        next.revision = (current?.revision ?? 0) + 1;
        if (!current || renderedSettings(next) !== renderedSettings(current)) {
          next.settingsRevision = next.revision;
        }
        await this.#store.transaction((tx) => tx.put(networkPath(name), next));
        this.#snapshots.delete(name);
        this.#logger.info(
          { mount: this.mount, network: name, revision: next.revision },
          current ? "WireGuard network updated" : "WireGuard network created",
        );
        return networkInfo(next, countPeers(next));
      }),
    );
  }

  async readNetwork(name: string): Promise<NetworkInfo> {
    validateName(name, "name");
    const network = await this.#readNetworkRecord(name);
    return networkInfo(network, countPeers(network));
  }

  async listNetworks(): Promise<string[]> {
    return this.#store.list("networks");
  }

  /** Deletes a network with all its peers, in one transaction. */
  async deleteNetwork(name: string): Promise<void> {
    validateName(name, "name");
    await this.#store.withLock(NETWORKS_LOCK, () =>
      this.#store.withLock(networkLock(name), async () => {
        await this.#readNetworkRecord(name);
        const peers = await this.#store.list(peerFolder(name));
        await this.#store.transaction(async (tx) => {
          for (const peer of peers) await tx.delete(peerPath(name, peer));
          await tx.delete(networkPath(name));
        });
        this.#snapshots.delete(name);
        this.#logger.info(
          { mount: this.mount, network: name, peers: peers.length },
          "WireGuard network deleted",
        );
      }),
    );
  }

  // Peers

  /**
   * Creates peer `name` in `network`, or updates its endpoint, routes,
   * device and listen port. A new peer takes `public_key` from its endpoint,
   * gets a server-generated key with `generate_key` (returned here once), or
   * waits for its key (`key_state: pending`).
   */
  async writePeer(network: string, name: string, write: PeerWrite): Promise<PeerWriteResult> {
    validateName(network, "network");
    validateName(name, "peer");
    return this.#store.withLock(networkLock(network), async () => {
      const snapshot = await this.#snapshot(network);
      const current = snapshot.peers.find((peer) => peer.name === name);
      const revision = snapshot.network.revision + 1;
      const applied = applyPeerWrite(
        { network: snapshot.network, peers: snapshot.peers, now: this.#now(), revision },
        name,
        write,
        current,
      );
      const next: NetworkRecord = { ...snapshot.network, revision };
      if (!current) {
        next.allocations = { ...next.allocations };
        for (const address of applied.record.addresses) next.allocations[address] = name;
        this.#peerJoinedOrLeft(next, name, revision);
      }
      const result = await this.#commitPeer(next, snapshot.peers, applied);
      this.#logger.info(
        {
          mount: this.mount,
          network,
          peer: name,
          device_id: applied.record.deviceId,
          key_source: applied.record.keySource,
          revision,
        },
        current ? "WireGuard peer updated" : "WireGuard peer created",
      );
      return result;
    });
  }

  async readPeer(network: string, name: string): Promise<PeerInfo> {
    validateName(network, "network");
    validateName(name, "peer");
    const snapshot = await this.#snapshot(network);
    return peerInfo(snapshot.network, findPeer(snapshot, name), snapshot.peers, this.#clock());
  }

  async listPeers(network: string): Promise<string[]> {
    validateName(network, "network");
    const snapshot = await this.#snapshot(network);
    return snapshot.peers.map((peer) => peer.name);
  }

  /** Deletes a peer; it disappears from every configuration and its addresses become free. */
  async deletePeer(network: string, name: string): Promise<void> {
    validateName(network, "network");
    validateName(name, "peer");
    await this.#store.withLock(networkLock(network), async () => {
      const snapshot = await this.#snapshot(network);
      const peer = findPeer(snapshot, name);
      const revision = snapshot.network.revision + 1;
      const next: NetworkRecord = {
        ...snapshot.network,
        revision,
        allocations: { ...snapshot.network.allocations },
      };
      for (const address of peer.addresses) delete next.allocations[address];
      this.#peerJoinedOrLeft(next, name, revision);
      await this.#store.transaction(async (tx) => {
        await tx.delete(peerPath(network, name));
        await tx.put(networkPath(network), next);
      });
      const peers = snapshot.peers.filter((candidate) => candidate.name !== name);
      this.#snapshots.set(network, { network: next, peers });
      this.#logger.info(
        { mount: this.mount, network, peer: name, revision },
        "WireGuard peer deleted",
      );
    });
  }

  /**
   * Rotates a peer's key (see `applyRotation`) and with it every preshared
   * key of the peer. Every configuration that lists the peer gets a new
   * configuration version.
   */
  async rotatePeer(
    network: string,
    name: string,
    request: RotateRequest,
  ): Promise<PeerWriteResult> {
    validateName(network, "network");
    validateName(name, "peer");
    return this.#store.withLock(networkLock(network), async () => {
      const snapshot = await this.#snapshot(network);
      const current = findPeer(snapshot, name);
      const revision = snapshot.network.revision + 1;
      const applied = applyRotation(
        { network: snapshot.network, peers: snapshot.peers, now: this.#now(), revision },
        current,
        request,
      );
      const result = await this.#commitPeer(
        { ...snapshot.network, revision },
        snapshot.peers,
        applied,
      );
      this.#logger.info(
        {
          mount: this.mount,
          network,
          peer: name,
          key_version: applied.record.keyVersion,
          key_source: applied.record.keySource,
          revision,
        },
        "WireGuard peer key rotated",
      );
      return result;
    });
  }

  /**
   * Renders the configuration of peer `name`, in wg-quick format or in the
   * format `wg setconf` reads. Its `PrivateKey` line is a placeholder that
   * the endpoint fills with its own key.
   */
  async renderConfig(
    network: string,
    name: string,
    format: ConfigFormat = "wg-quick",
  ): Promise<RenderedConfig> {
    validateName(network, "network");
    validateName(name, "peer");
    if (!CONFIG_FORMATS.includes(format)) {
      throw new KeywardError(
        "invalid_field",
        `"format" must be one of ${CONFIG_FORMATS.join(", ")}`,
        {
          field: "format",
        },
      );
    }
    const snapshot = await this.#snapshot(network);
    const self = findPeer(snapshot, name);
    const version = configVersion(snapshot.network, self, snapshot.peers);
    // TODO: preshared keys leave here in plaintext to any token allowed on
    // this path; once devices exist they must be encrypted to the device's key.
    return {
      network,
      peer: name,
      format,
      configVersion: version,
      addresses: interfaceAddresses(snapshot.network, self),
      config: renderConfig(snapshot.network, self, snapshot.peers, format, version),
    };
  }

  /** Lists the peers bound to a device, as `{ network, peer }` pairs, for the agent. */
  async peersOfDevice(deviceId: string): Promise<{ network: string; peer: string }[]> {
    validateDeviceId(deviceId);
    const bound: { network: string; peer: string }[] = [];
    for (const network of await this.listNetworks()) {
      const snapshot = await this.#snapshot(network);
      for (const peer of snapshot.peers) {
        if (peer.deviceId === deviceId) bound.push({ network, peer: peer.name });
      }
    }
    return bound;
  }

  #now(): string {
    return this.#clock().toISOString();
  }

  /** Stamps a join or departure on the network; the hub's changes every spoke's configuration. */
  #peerJoinedOrLeft(network: NetworkRecord, name: string, revision: number): void {
    network.membershipRevision = revision;
    if (network.hub === name) network.settingsRevision = revision;
  }

  async #commitPeer(
    network: NetworkRecord,
    peers: readonly PeerRecord[],
    applied: AppliedPeerWrite,
  ): Promise<PeerWriteResult> {
    const { record } = applied;
    await this.#store.transaction(async (tx: RecordWriter) => {
      await tx.put(peerPath(network.name, record.name), record);
      await tx.put(networkPath(network.name), network);
    });
    const after = [...peers.filter((peer) => peer.name !== record.name), record].sort((a, b) =>
      a.name < b.name ? -1 : 1,
    );
    // The lock is held and the transaction committed, so this is what storage now contains.
    this.#snapshots.set(network.name, { network, peers: after });
    const result: PeerWriteResult = { peer: peerInfo(network, record, after, this.#clock()) };
    if (applied.privateKey !== undefined) result.privateKey = applied.privateKey;
    return result;
  }

  async #readNetworkRecord(name: string): Promise<NetworkRecord> {
    const network = await this.#store.get<NetworkRecord>(networkPath(name));
    if (!network) throw notFound(`WireGuard network "${name}"`);
    return network;
  }

  async #otherNetworks(name: string): Promise<NetworkRecord[]> {
    const others: NetworkRecord[] = [];
    for (const other of await this.listNetworks()) {
      if (other === name) continue;
      const record = await this.#store.get<NetworkRecord>(networkPath(other));
      if (record) others.push(record);
    }
    return others;
  }

  /** Reads a network and its peers, reusing the cached peers while the network's revision is unchanged. */
  async #snapshot(name: string): Promise<Snapshot> {
    const network = await this.#readNetworkRecord(name);
    const cached = this.#snapshots.get(name);
    if (
      cached &&
      cached.network.revision === network.revision &&
      cached.network.createdAt === network.createdAt
    ) {
      return cached;
    }
    const peers: PeerRecord[] = [];
    for (const peerName of await this.#store.list(peerFolder(name))) {
      const peer = await this.#store.get<PeerRecord>(peerPath(name, peerName));
      if (peer) peers.push(peer);
    }
    const snapshot = { network, peers };
    this.#snapshots.set(name, snapshot);
    return snapshot;
  }
}

function findPeer(snapshot: Snapshot, name: string): PeerRecord {
  const peer = snapshot.peers.find((candidate) => candidate.name === name);
  if (!peer) throw notFound(`peer "${name}" of WireGuard network "${snapshot.network.name}"`);
  return peer;
}

function countPeers(network: NetworkRecord): number {
  return new Set(Object.values(network.allocations)).size;
}
