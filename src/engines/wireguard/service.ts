import type { DeviceArtifact } from "../../devices/artifacts.ts";
import { KeywardError, notFound } from "../../errors.ts";
import { buildDeviceArtifact } from "./device-artifacts.ts";
import { NetworkState, networkPath, type WriteBase } from "./network-state.ts";
import { applyNetworkWrite, checkNoOverlap, networkInfo, parseRanges } from "./networks.ts";
import {
  type AppliedPeerWrite,
  applyPeerWrite,
  applyRotation,
  applyRotationRequest,
  type PeerWriteContext,
  peerInfo,
  type RotationOutcome,
  rotationRequestDue,
} from "./peers.ts";
import { configVersion, interfaceAddresses, renderConfig } from "./render.ts";
import { viewAt } from "./snapshot.ts";
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

/** The result of a key registration by a device's agent. */
export interface DeviceKeyRegistration {
  keyVersion: number;
  /** When the key becomes active (RFC 3339): now, unless it was staged. */
  activateAt: string;
}

/**
 * The WireGuard engine of one mount: networks, their peers, address
 * allocation, per-pair preshared keys, key rotation (immediate or staged)
 * and rendered configurations. Private keys of endpoints never reach it. A
 * key the server generates for a peer without an agent is returned once and
 * not stored. Everything is stored behind the barrier under `<mount>/`.
 * Methods throw a `KeywardError` on failure.
 *
 * What configurations show is computed from the clock (see `effectiveView`):
 * a staged key is active from its activation time on whether or not a
 * write or the scheduled job has stored it as active yet.
 */
export class WireguardService {
  readonly mount: string;
  readonly #clock: () => Date;
  readonly #logger: Logger;
  readonly #state: NetworkState;

  constructor(options: WireguardServiceOptions) {
    if (!/^[A-Za-z0-9_-]+(?:\/[A-Za-z0-9_-]+)*$/.test(options.mount)) {
      throw new KeywardError("invalid_field", `invalid mount path "${options.mount}"`, {
        field: "mount",
      });
    }
    this.mount = options.mount;
    this.#clock = options.clock ?? (() => new Date());
    this.#logger = options.logger ?? silentLogger;
    this.#state = new NetworkState({
      barrier: options.barrier,
      mount: options.mount,
      clock: this.#clock,
      logger: this.#logger,
      notifier: options.notifier,
    });
  }

  /** Clears the activation timers. Call it when the service is dropped at seal. */
  close(): void {
    this.#state.close();
  }

  // Networks

  /** Creates network `name`, or updates it: omitted fields keep their values. */
  async writeNetwork(name: string, write: NetworkWrite): Promise<NetworkInfo> {
    validateName(name, "name");
    return this.#state.store.withLock(NETWORKS_LOCK, () =>
      this.#state.store.withLock(networkLock(name), async () => {
        const at = this.#clock();
        const stored = await this.#state.store.get<NetworkRecord>(networkPath(name));
        const base = stored ? await this.#state.prepareFrom(stored, at) : undefined;
        const current = base?.view.network;
        const next = applyNetworkWrite(name, write, current, at.toISOString());
        if (next.addressRanges.join(",") !== current?.addressRanges.join(",")) {
          checkNoOverlap(name, parseRanges(next.addressRanges), await this.#otherNetworks(name));
        }
        next.revision = (current?.revision ?? 0) + 1;
        if (!current || renderedSettings(next) !== renderedSettings(current)) {
          next.settingsRevision = next.revision;
        }
        if (base) {
          await this.#state.commit(base, { network: next });
        } else {
          await this.#state.create(next);
        }
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
    const network = await this.#state.readNetworkRecord(name);
    return networkInfo(network, countPeers(network));
  }

  async listNetworks(): Promise<string[]> {
    return this.#state.listNetworks();
  }

  /** Deletes a network with all its peers, in one transaction. */
  async deleteNetwork(name: string): Promise<void> {
    validateName(name, "name");
    await this.#state.store.withLock(NETWORKS_LOCK, () =>
      this.#state.store.withLock(networkLock(name), async () => {
        const peers = await this.#state.deleteNetwork(await this.#state.snapshot(name));
        this.#logger.info({ mount: this.mount, network: name, peers }, "WireGuard network deleted");
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
    return this.#state.store.withLock(networkLock(network), async () => {
      const base = await this.#state.prepare(network, this.#clock());
      const context = this.#context(base);
      const current = base.view.peers.find((peer) => peer.name === name);
      const applied = applyPeerWrite(context, name, write, current);
      const next: NetworkRecord = { ...context.network, revision: context.revision };
      if (!current) {
        next.allocations = { ...next.allocations };
        for (const address of applied.record.addresses) next.allocations[address] = name;
        this.#peerJoinedOrLeft(next, name, context.revision);
      }
      const result = await this.#commitPeer(base, next, applied);
      this.#logger.info(
        {
          mount: this.mount,
          network,
          peer: name,
          device_id: applied.record.deviceId,
          key_source: applied.record.keySource,
          revision: context.revision,
        },
        current ? "WireGuard peer updated" : "WireGuard peer created",
      );
      return result;
    });
  }

  async readPeer(network: string, name: string): Promise<PeerInfo> {
    validateName(network, "network");
    validateName(name, "peer");
    const at = this.#clock();
    const view = viewAt(await this.#state.snapshot(network), at);
    return peerInfo(view.network, findPeer(view, name), view.peers, at);
  }

  async listPeers(network: string): Promise<string[]> {
    validateName(network, "network");
    const snapshot = await this.#state.snapshot(network);
    return snapshot.peers.map((peer) => peer.name);
  }

  /** Deletes a peer; it disappears from every configuration and its addresses become free. */
  async deletePeer(network: string, name: string): Promise<void> {
    validateName(network, "network");
    validateName(name, "peer");
    await this.#state.store.withLock(networkLock(network), async () => {
      const base = await this.#state.prepare(network, this.#clock());
      findPeer(base.view, name);
      await this.#deletePeers(base, [name]);
    });
  }

  /**
   * Rotates a peer's key (see `applyRotation`) and with it every preshared
   * key of the peer. Every configuration that lists the peer gets a new
   * configuration version, at once or, for a staged key, at its activation.
   */
  async rotatePeer(
    network: string,
    name: string,
    request: RotateRequest,
  ): Promise<PeerWriteResult> {
    validateName(network, "network");
    validateName(name, "peer");
    return this.#state.store.withLock(networkLock(network), async () => {
      const base = await this.#state.prepare(network, this.#clock());
      const { result } = await this.#rotate(base, findPeer(base.view, name), request);
      return result;
    });
  }

  /**
   * Requests a new key from the agent of peer `name`: its device artifact shows
   * `rotate_key` until the agent registers one. Rejected with
   * `invalid_state` for a peer without `device_id` or with a server-made key.
   */
  async requestRotation(network: string, name: string): Promise<PeerInfo> {
    validateName(network, "network");
    validateName(name, "peer");
    return this.#state.store.withLock(networkLock(network), async () => {
      const base = await this.#state.prepare(network, this.#clock());
      const context = this.#context(base);
      const record = applyRotationRequest(context, findPeer(base.view, name));
      const next: NetworkRecord = { ...context.network, revision: context.revision };
      const after = await this.#state.commit(base, { network: next, put: [record] });
      this.#logger.info(
        { mount: this.mount, network, peer: name, device_id: record.deviceId },
        "WireGuard key rotation requested",
      );
      return peerInfo(after.network, findPeer(after, name), after.peers, base.at);
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
    const view = viewAt(await this.#state.snapshot(network), this.#clock());
    const self = findPeer(view, name);
    const version = configVersion(view.network, self, view.peers);
    // NOTE: preshared keys leave here in plaintext to any token allowed on
    // this path. Device agents get them encrypted through the device API.
    return {
      network,
      peer: name,
      format,
      configVersion: version,
      addresses: interfaceAddresses(view.network, self),
      config: renderConfig(view.network, self, view.peers, format, version),
    };
  }

  // Devices

  /** Lists the peers bound to a device, as `{ network, peer }` pairs, for the agent. */
  async peersOfDevice(deviceId: string): Promise<{ network: string; peer: string }[]> {
    validateDeviceId(deviceId);
    const bound: { network: string; peer: string }[] = [];
    for (const snapshot of await this.#state.snapshotsOfDevice(deviceId)) {
      for (const peer of snapshot.peersByDevice.get(deviceId) ?? []) {
        bound.push({ network: snapshot.network.name, peer });
      }
    }
    return bound;
  }

  /**
   * Builds the device artifacts of every peer bound to `deviceName` (see
   * `buildDeviceArtifact`). Each network costs one read of its record. Peers
   * come from the snapshot cache, and only the device's own peers are
   * rendered.
   */
  async deviceArtifacts(deviceName: string): Promise<DeviceArtifact[]> {
    const at = this.#clock();
    const artifacts: DeviceArtifact[] = [];
    for (const snapshot of await this.#state.snapshotsOfDevice(deviceName)) {
      const view = (time: Date) => viewAt(snapshot, time);
      for (const peer of snapshot.peersByDevice.get(deviceName) ?? []) {
        artifacts.push(buildDeviceArtifact(this.mount, peer, at, view));
      }
    }
    return artifacts;
  }

  /**
   * Deletes every peer bound to `deviceName`, one transaction per network:
   * they leave every configuration, and the preshared keys they shared die
   * with their secrets. Returns the deleted peers.
   */
  async deletePeersOfDevice(deviceName: string): Promise<{ network: string; peer: string }[]> {
    const deleted: { network: string; peer: string }[] = [];
    for (const network of await this.listNetworks()) {
      await this.#state.store.withLock(networkLock(network), async () => {
        const base = await this.#state.prepareIfExists(network, this.#clock());
        const names = base?.snapshot.peersByDevice.get(deviceName);
        if (!base || !names) return;
        await this.#deletePeers(base, names);
        for (const peer of names) deleted.push({ network, peer });
      });
    }
    if (deleted.length > 0) {
      this.#logger.info(
        { mount: this.mount, device: deviceName, peers: deleted },
        "WireGuard peers of a revoked device deleted",
      );
    }
    return deleted;
  }

  /**
   * Registers a key that the agent of `deviceName` made for peer `name`.
   * The peer must be bound to the device, otherwise (and for an unknown
   * network or peer) `permission_denied`. A peer's first key is active at
   * once, and later keys are staged for the network's rotation notice.
   */
  async registerDeviceKey(
    network: string,
    name: string,
    deviceName: string,
    publicKey: unknown,
  ): Promise<DeviceKeyRegistration> {
    validateName(network, "network");
    validateName(name, "peer");
    const denied = () =>
      new KeywardError(
        "permission_denied",
        `peer "${name}" of WireGuard network "${network}" on mount "${this.mount}" is not bound to device "${deviceName}"`,
      );
    return this.#state.store.withLock(networkLock(network), async () => {
      const base = await this.#state.prepareIfExists(network, this.#clock());
      const current = base?.view.peers.find((peer) => peer.name === name);
      if (!base || current?.deviceId !== deviceName) throw denied();
      const { rotation } = await this.#rotate(base, current, { publicKey });
      this.#logger.info(
        {
          mount: this.mount,
          network,
          peer: name,
          device: deviceName,
          key_version: rotation.keyVersion,
          activate_at: rotation.activateAt,
        },
        "WireGuard key registered by device",
      );
      return { keyVersion: rotation.keyVersion, activateAt: rotation.activateAt };
    });
  }

  // Scheduled work

  /**
   * Stores every staged key whose activation time has come as active, and
   * arms an activation timer for every staged key still to come (which
   * re-arms them in a service that has just started). Views do not depend
   * on this having run. Returns the activated peers as `network/peer`.
   */
  async activateStagedKeys(now: Date = this.#clock()): Promise<string[]> {
    const activated: string[] = [];
    for (const network of await this.listNetworks()) {
      await this.#state.store.withLock(networkLock(network), async () => {
        const base = await this.#state.prepareIfExists(network, now);
        if (!base) return;
        if (base.view.promoted.length === 0) {
          this.#state.syncTimers(base.snapshot);
          return;
        }
        await this.#state.commit(base, { network: base.view.network });
        for (const peer of base.view.promoted) activated.push(`${network}/${peer.name}`);
      });
    }
    return activated;
  }

  /**
   * Requests new keys from agents: sets `rotation_requested` on every peer
   * that `rotationRequestDue` selects, in networks with a rotation period.
   * Returns the peers that got a request, as `network/peer`.
   */
  async requestDueRotations(now: Date = this.#clock()): Promise<string[]> {
    const requested: string[] = [];
    for (const network of await this.listNetworks()) {
      await this.#state.store.withLock(networkLock(network), async () => {
        const base = await this.#state.prepareIfExists(network, now);
        if (!base || base.view.network.rotationPeriodSeconds === 0) return;
        const due = base.view.peers.filter((peer) =>
          rotationRequestDue(base.view.network, peer, now),
        );
        if (due.length === 0) return;
        const context = this.#context(base);
        const put = due.map((peer) => applyRotationRequest(context, peer));
        await this.#state.commit(base, {
          network: { ...context.network, revision: context.revision },
          put,
        });
        for (const peer of due) requested.push(`${network}/${peer.name}`);
        this.#logger.info(
          { mount: this.mount, network, peers: due.map((peer) => peer.name) },
          "WireGuard key rotations requested on schedule",
        );
      });
    }
    return requested;
  }

  // Internals

  #context(base: WriteBase): PeerWriteContext {
    return {
      network: base.view.network,
      peers: base.view.peers,
      now: base.at.toISOString(),
      revision: base.view.network.revision + 1,
    };
  }

  /** Stamps a join or departure on the network; the hub's changes every spoke's configuration. */
  #peerJoinedOrLeft(network: NetworkRecord, name: string, revision: number): void {
    network.membershipRevision = revision;
    if (network.hub === name) network.settingsRevision = revision;
  }

  async #rotate(
    base: WriteBase,
    current: PeerRecord,
    request: RotateRequest,
  ): Promise<{ result: PeerWriteResult; rotation: RotationOutcome }> {
    const context = this.#context(base);
    const applied = applyRotation(context, current, request);
    const rotation = applied.rotation as RotationOutcome;
    if (applied.record === current) {
      // The staged key registered again: nothing changes.
      const peer = peerInfo(base.view.network, current, base.view.peers, base.at);
      return { result: { peer }, rotation };
    }
    const next = { ...context.network, revision: context.revision };
    const result = await this.#commitPeer(base, next, applied);
    this.#logger.info(
      {
        mount: this.mount,
        network: current.network,
        peer: current.name,
        key_version: rotation.keyVersion,
        key_source: applied.record.next?.keySource ?? applied.record.keySource,
        activate_at: rotation.activateAt,
        revision: context.revision,
      },
      rotation.staged ? "WireGuard peer key staged" : "WireGuard peer key rotated",
    );
    return { result, rotation };
  }

  async #deletePeers(base: WriteBase, names: readonly string[]): Promise<void> {
    const context = this.#context(base);
    const next: NetworkRecord = {
      ...context.network,
      revision: context.revision,
      allocations: { ...context.network.allocations },
    };
    for (const name of names) {
      const peer = findPeer(base.view, name);
      for (const address of peer.addresses) delete next.allocations[address];
      this.#peerJoinedOrLeft(next, name, context.revision);
    }
    await this.#state.commit(base, { network: next, deleted: names });
    for (const name of names) {
      this.#logger.info(
        { mount: this.mount, network: next.name, peer: name, revision: context.revision },
        "WireGuard peer deleted",
      );
    }
  }

  async #commitPeer(
    base: WriteBase,
    network: NetworkRecord,
    applied: AppliedPeerWrite,
  ): Promise<PeerWriteResult> {
    const after = await this.#state.commit(base, { network, put: [applied.record] });
    const peer = findPeer(after, applied.record.name);
    const result: PeerWriteResult = { peer: peerInfo(network, peer, after.peers, base.at) };
    if (applied.privateKey !== undefined) result.privateKey = applied.privateKey;
    return result;
  }

  async #otherNetworks(name: string): Promise<NetworkRecord[]> {
    const others: NetworkRecord[] = [];
    for (const other of await this.listNetworks()) {
      if (other === name) continue;
      const record = await this.#state.store.get<NetworkRecord>(networkPath(other));
      if (record) others.push(record);
    }
    return others;
  }
}

function findPeer(source: { network: NetworkRecord; peers: readonly PeerRecord[] }, name: string) {
  const peer = source.peers.find((candidate) => candidate.name === name);
  if (!peer) throw notFound(`peer "${name}" of WireGuard network "${source.network.name}"`);
  return peer;
}

function countPeers(network: NetworkRecord): number {
  return new Set(Object.values(network.allocations)).size;
}
