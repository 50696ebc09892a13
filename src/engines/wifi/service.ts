import type { Logger } from "pino";
import type { DeviceArtifact, DeviceChangeNotifier, DeviceRef } from "../../devices/artifacts.ts";
import { KeywardError, notFound } from "../../errors.ts";
import type { Barrier } from "../../seal/types.ts";
import { nextCredential } from "./credentials.ts";
import { buildAccessPointArtifact, buildStationArtifact } from "./device-artifacts.ts";
import {
  type CaChainLoader,
  type FreeradiusRequest,
  renderNetworkFreeradius,
} from "./enterprise.ts";
import { type KeyInput, writeKeyRecord } from "./keys.ts";
import { applyNetworkInput, type NetworkInput } from "./networks.ts";
import { qrCodePng, wifiUri } from "./onboarding.ts";
import { DEFAULT_PASSPHRASE_POLICY, generatePassphrase } from "./passphrase.ts";
import { type RecordWriter, WifiStore } from "./store.ts";
import type { Credential, KeyRecord, NetworkRecord } from "./types.ts";
import { usesPassphrase } from "./types.ts";
import { ssidText, validateName } from "./validation.ts";

export { nextCredential } from "./credentials.ts";
export type { KeyInput } from "./keys.ts";
export type { NetworkInput } from "./networks.ts";

export interface WifiServiceOptions {
  barrier: Barrier;
  mount: string;
  clock: () => Date;
  logger: Logger;
  /** Wakes the agents of devices whose artifacts changed. */
  notifier?: DeviceChangeNotifier;
  /** Returns the names of the devices in any of `groups` or named in `devices`, for waking access points. */
  groupMembers?: (groups: readonly string[], devices: readonly string[]) => Promise<string[]>;
}

/** A network as admin reads return it: every field except passphrases. */
export interface NetworkView {
  name: string;
  ssid: string | null;
  ssidHex: string;
  security: string;
  hidden: boolean;
  vlans: number[];
  passphrasePolicy: { length: number; charset: string };
  rotationPeriod: number;
  graceWindow: number;
  accessPointDevices: string[];
  accessPointGroups: string[];
  pkiMount: string | null;
  pkiIssuer: string | null;
  sharedPassphrase: CredentialView | null;
  version: number;
  createdAt: string;
  updatedAt: string;
}

/** The state of a passphrase without the passphrase. */
export interface CredentialView {
  generation: number;
  createdAt: string;
  rotationDueAt: string | null;
  previousGeneration: number | null;
  previousExpiresAt: string | null;
}

/** A key as admin reads return it: every field except its passphrase. */
export interface KeyView {
  name: string;
  mac: string;
  keyId: string;
  vlan: number | null;
  saePasswordId: string | null;
  deviceId: string | null;
  passphrase: CredentialView;
  createdAt: string;
  updatedAt: string;
}

/** A passphrase revealed for onboarding. */
export interface Onboarding {
  ssid: string;
  passphrase: string;
  wifiUri: string;
  qrCodePng: Buffer;
}

const networkPath = (name: string) => `networks/${name}`;
const keyPath = (network: string, key: string) => `keys/${network}/${key}`;
/** The last version of a deleted network, kept so that a new network of that name starts above it. */
const retiredVersionPath = (name: string) => `retired-networks/${name}`;

interface RetiredNetwork {
  version: number;
}

function credentialView(credential: Credential, periodSeconds: number): CredentialView {
  return {
    generation: credential.generation,
    createdAt: credential.createdAt,
    rotationDueAt:
      periodSeconds > 0
        ? new Date(Date.parse(credential.createdAt) + periodSeconds * 1000).toISOString()
        : null,
    previousGeneration: credential.previous?.generation ?? null,
    previousExpiresAt: credential.previous?.expiresAt ?? null,
  };
}

/** Drops a previous passphrase whose grace window has ended. Returns true when it did. */
function expirePrevious(credential: Credential, now: Date): boolean {
  if (credential.previous && Date.parse(credential.previous.expiresAt) <= now.getTime()) {
    delete credential.previous;
    return true;
  }
  return false;
}

function isDue(credential: Credential, periodSeconds: number, now: Date): boolean {
  return (
    periodSeconds > 0 && Date.parse(credential.createdAt) + periodSeconds * 1000 <= now.getTime()
  );
}

/**
 * One Wi-Fi engine mount: networks, per-device keys, rotation, onboarding
 * and the artifacts that access points and stations install. Every change
 * to a network or its keys raises the network's `version`, which is the
 * version of each of its device artifacts.
 */
export class WifiService {
  readonly mount: string;
  readonly #store: WifiStore;
  readonly #clock: () => Date;
  readonly #logger: Logger;
  readonly #notifier: DeviceChangeNotifier | undefined;
  readonly #groupMembers: WifiServiceOptions["groupMembers"];

  constructor(options: WifiServiceOptions) {
    this.mount = options.mount;
    this.#store = new WifiStore(options.barrier, options.mount);
    this.#clock = options.clock;
    this.#logger = options.logger;
    this.#notifier = options.notifier;
    this.#groupMembers = options.groupMembers;
  }

  async listNetworks(): Promise<string[]> {
    return this.#store.list("networks");
  }

  async readNetwork(name: string): Promise<NetworkView> {
    return this.#networkView(await this.#requireNetwork(name));
  }

  /** Creates or updates a network. Omitted fields keep their values. */
  async writeNetwork(name: string, input: NetworkInput): Promise<NetworkView> {
    validateName(name, "network");
    return this.#store.withLock(name, async () => {
      const now = this.#clock();
      const existing = await this.#store.get<NetworkRecord>(networkPath(name));
      const keys = existing ? await this.#keysOf(name) : [];
      const retired = existing
        ? undefined
        : await this.#store.get<RetiredNetwork>(retiredVersionPath(name));
      const record = applyNetworkInput(name, existing, keys, input, now, retired?.version ?? 0);
      await this.#store.transaction(async (writer) => {
        await writer.put(networkPath(name), record);
        if (retired) await writer.delete(retiredVersionPath(name));
      });
      this.#logger.info({ network: name, version: record.version }, "wrote Wi-Fi network");
      await this.#notify(record, keys);
      return this.#networkView(record);
    });
  }

  /**
   * Deletes a network and all its keys, and keeps its last version, so that
   * a network created again under the name starts above it.
   */
  async deleteNetwork(name: string): Promise<void> {
    await this.#store.withLock(name, async () => {
      const network = await this.#requireNetwork(name);
      const keys = await this.#keysOf(name);
      const retired: RetiredNetwork = { version: network.version };
      await this.#store.transaction(async (writer) => {
        for (const key of keys) await writer.delete(keyPath(name, key.name));
        await writer.delete(networkPath(name));
        await writer.put(retiredVersionPath(name), retired);
      });
      await this.#notify(network, keys);
    });
  }

  /** Replaces the shared passphrase with a new one drawn to the network's policy. The old one stays valid for the grace window. */
  async rotateNetworkPassphrase(name: string): Promise<NetworkView> {
    return this.#store.withLock(name, async () => {
      const network = await this.#requireNetwork(name);
      if (!network.shared) {
        throw new KeywardError("invalid_state", `network "${name}" has no shared passphrase`, {
          field: "passphrase",
        });
      }
      const now = this.#clock();
      network.shared = nextCredential(
        network.shared,
        generatePassphrase(network.passphrasePolicy),
        now,
        network.graceWindowSeconds,
      );
      const keys = await this.#keysOf(name);
      await this.#saveNetwork(network, now);
      await this.#notify(network, keys);
      return this.#networkView(network);
    });
  }

  /** Renders the FreeRADIUS EAP-TLS module of an enterprise network (see `renderNetworkFreeradius`). */
  async renderFreeradius(
    name: string,
    request: FreeradiusRequest,
    loadChain: CaChainLoader,
  ): Promise<string> {
    return renderNetworkFreeradius(await this.#requireNetwork(name), request, loadChain);
  }

  async listKeys(network: string): Promise<string[]> {
    await this.#requireNetwork(network);
    return this.#store.list(`keys/${network}`);
  }

  async readKey(network: string, name: string): Promise<KeyView> {
    const record = await this.#requireNetwork(network);
    return this.#keyView(record, await this.#requireKey(network, name));
  }

  /** Creates a key with a generated passphrase, or updates its binding. The passphrase changes only through `rotateKey`. */
  async writeKey(network: string, name: string, input: KeyInput): Promise<KeyView> {
    validateName(name, "key");
    return this.#store.withLock(network, async () => {
      const record = await this.#requireNetwork(network);
      const keys = await this.#keysOf(network);
      const now = this.#clock();
      const before = keys.find((key) => key.name === name);
      const key = writeKeyRecord(record, keys, name, input, now);
      await this.#saveNetwork(record, now, (writer) => writer.put(keyPath(network, name), key));
      this.#logger.info({ network, key: name, version: record.version }, "wrote Wi-Fi key");
      await this.#notify(record, [...keys.filter((other) => other.name !== name), key], before);
      return this.#keyView(record, key);
    });
  }

  async deleteKey(network: string, name: string): Promise<void> {
    await this.#store.withLock(network, async () => {
      const record = await this.#requireNetwork(network);
      const key = await this.#requireKey(network, name);
      await this.#saveNetwork(record, this.#clock(), (writer) =>
        writer.delete(keyPath(network, name)),
      );
      await this.#notify(record, [key]);
    });
  }

  /** Gives a key a new generated passphrase. The old one stays valid for the network's grace window. */
  async rotateKey(network: string, name: string): Promise<KeyView> {
    return this.#store.withLock(network, async () => {
      const record = await this.#requireNetwork(network);
      const key = await this.#requireKey(network, name);
      const now = this.#clock();
      this.#rotateKeyRecord(record, key, now, record.graceWindowSeconds);
      await this.#saveNetwork(record, now, (writer) => writer.put(keyPath(network, name), key));
      await this.#notify(record, [key]);
      return this.#keyView(record, key);
    });
  }

  /**
   * Returns the current passphrase of a key, or the network's shared one
   * when `key` is undefined, with its `WIFI:` URI and QR code. This is the
   * only read that reveals a passphrase.
   */
  async onboarding(network: string, key: string | undefined): Promise<Onboarding> {
    const record = await this.#requireNetwork(network);
    let passphrase: string;
    if (key === undefined) {
      if (!record.shared) {
        throw new KeywardError("invalid_state", `network "${network}" has no shared passphrase`, {
          field: "passphrase",
        });
      }
      passphrase = record.shared.passphrase;
    } else {
      passphrase = (await this.#requireKey(network, key)).credential.passphrase;
    }
    const uri = wifiUri(record, passphrase, record.hidden);
    return {
      ssid: ssidText(record.ssidHex) as string,
      passphrase,
      wifiUri: uri,
      qrCodePng: await qrCodePng(uri),
    };
  }

  /**
   * Rotates every passphrase older than its network's rotation period and
   * drops previous passphrases whose grace window has ended. Returns the
   * changed networks.
   */
  async rotateDue(now: Date): Promise<string[]> {
    const changed: string[] = [];
    for (const name of await this.listNetworks()) {
      const didChange = await this.#store.withLock(name, async () => {
        const network = await this.#store.get<NetworkRecord>(networkPath(name));
        if (!network || !usesPassphrase(network.security)) return false;
        const keys = await this.#keysOf(name);
        const changedKeys: KeyRecord[] = [];
        let networkChanged = false;
        if (network.shared) {
          networkChanged = expirePrevious(network.shared, now);
          if (isDue(network.shared, network.rotationPeriodSeconds, now)) {
            network.shared = nextCredential(
              network.shared,
              generatePassphrase(network.passphrasePolicy),
              now,
              network.graceWindowSeconds,
            );
            networkChanged = true;
          }
        }
        for (const key of keys) {
          let keyChanged = expirePrevious(key.credential, now);
          if (isDue(key.credential, network.rotationPeriodSeconds, now)) {
            this.#rotateKeyRecord(network, key, now, network.graceWindowSeconds);
            keyChanged = true;
          }
          if (keyChanged) changedKeys.push(key);
        }
        if (!networkChanged && changedKeys.length === 0) return false;
        await this.#saveNetwork(network, now, async (writer) => {
          for (const key of changedKeys) await writer.put(keyPath(name, key.name), key);
        });
        await this.#notify(network, changedKeys);
        return true;
      });
      if (didChange) changed.push(name);
    }
    return changed;
  }

  /** Returns the artifacts of `device` on this mount: the access point files of its networks, and a station block per key bound to it. */
  async deviceArtifacts(device: DeviceRef): Promise<DeviceArtifact[]> {
    const artifacts: DeviceArtifact[] = [];
    for (const name of await this.listNetworks()) {
      const network = await this.#store.get<NetworkRecord>(networkPath(name));
      if (!network || !usesPassphrase(network.security)) continue;
      const keys = await this.#keysOf(name);
      if (isAccessPoint(network, device)) {
        artifacts.push(buildAccessPointArtifact(this.mount, network, keys));
      }
      for (const key of keys) {
        if (key.deviceId === device.name) {
          artifacts.push(buildStationArtifact(this.mount, network, key));
        }
      }
    }
    return artifacts;
  }

  /**
   * Reacts to a revoked device. Keys bound to it are deleted, so its MAC
   * loses access. When it was an access point of a network, it received every
   * passphrase of that network, so each is replaced at once, with no grace
   * window.
   */
  async deviceRevoked(device: DeviceRef): Promise<void> {
    for (const name of await this.listNetworks()) {
      await this.#store.withLock(name, async () => {
        const network = await this.#store.get<NetworkRecord>(networkPath(name));
        if (!network) return;
        const keys = await this.#keysOf(name);
        const bound = keys.filter((key) => key.deviceId === device.name);
        const accessPoint = isAccessPoint(network, device) && usesPassphrase(network.security);
        if (bound.length === 0 && !accessPoint) return;
        const now = this.#clock();
        const kept = keys.filter((key) => key.deviceId !== device.name);
        if (accessPoint) {
          if (network.shared) {
            network.shared = nextCredential(
              network.shared,
              generatePassphrase(network.passphrasePolicy),
              now,
              0,
            );
          }
          for (const key of kept) this.#rotateKeyRecord(network, key, now, 0);
        }
        await this.#saveNetwork(network, now, async (writer) => {
          for (const key of bound) await writer.delete(keyPath(name, key.name));
          if (accessPoint) for (const key of kept) await writer.put(keyPath(name, key.name), key);
        });
        this.#logger.info(
          { network: name, device: device.name, deleted_keys: bound.length, rotated: accessPoint },
          "removed a revoked device from a Wi-Fi network",
        );
        await this.#notify(network, keys);
      });
    }
  }

  #rotateKeyRecord(network: NetworkRecord, key: KeyRecord, now: Date, graceSeconds: number) {
    key.credential = nextCredential(
      key.credential,
      generatePassphrase(network.passphrasePolicy),
      now,
      graceSeconds,
    );
    key.updatedAt = now.toISOString();
  }

  /** Raises the network's version and stores it with the writes of `more`, in one transaction. */
  async #saveNetwork(
    network: NetworkRecord,
    now: Date,
    more?: (writer: RecordWriter) => Promise<void>,
  ): Promise<void> {
    network.version += 1;
    network.updatedAt = now.toISOString();
    await this.#store.transaction(async (writer) => {
      if (more) await more(writer);
      await writer.put(networkPath(network.name), network);
    });
  }

  /** Wakes the network's access points and the devices bound to `keys` (and to `before`, a key's earlier binding). */
  async #notify(network: NetworkRecord, keys: readonly KeyRecord[], before?: KeyRecord) {
    if (!this.#notifier) return;
    const names = new Set<string>();
    for (const key of [...keys, ...(before ? [before] : [])]) {
      if (key.deviceId !== undefined) names.add(key.deviceId);
    }
    const { devices, groups } = network.accessPoints;
    try {
      const members = this.#groupMembers ? await this.#groupMembers(groups, devices) : [...devices];
      for (const member of members) names.add(member);
    } catch (error) {
      // The device registry exists only while the server is unsealed. Agents still see the change at their next poll.
      this.#logger.warn(
        { network: network.name, err: error },
        "failed to list access point devices, waking only the named ones",
      );
      for (const device of devices) names.add(device);
    }
    if (names.size > 0) this.#notifier.changed([...names]);
  }

  async #requireNetwork(name: string): Promise<NetworkRecord> {
    validateName(name, "network");
    const network = await this.#store.get<NetworkRecord>(networkPath(name));
    if (!network) throw notFound(`Wi-Fi network "${name}"`);
    return network;
  }

  async #requireKey(network: string, name: string): Promise<KeyRecord> {
    validateName(name, "key");
    const key = await this.#store.get<KeyRecord>(keyPath(network, name));
    if (!key) throw notFound(`key "${name}" of Wi-Fi network "${network}"`);
    return key;
  }

  async #keysOf(network: string): Promise<KeyRecord[]> {
    const keys: KeyRecord[] = [];
    for (const name of await this.#store.list(`keys/${network}`)) {
      const key = await this.#store.get<KeyRecord>(keyPath(network, name));
      if (key) keys.push(key);
    }
    return keys;
  }

  #networkView(network: NetworkRecord): NetworkView {
    return {
      name: network.name,
      ssid: ssidText(network.ssidHex) ?? null,
      ssidHex: network.ssidHex,
      security: network.security,
      hidden: network.hidden,
      vlans: network.vlans,
      passphrasePolicy: network.passphrasePolicy ?? DEFAULT_PASSPHRASE_POLICY,
      rotationPeriod: network.rotationPeriodSeconds,
      graceWindow: network.graceWindowSeconds,
      accessPointDevices: network.accessPoints.devices,
      accessPointGroups: network.accessPoints.groups,
      pkiMount: network.eapTls?.pkiMount ?? null,
      pkiIssuer: network.eapTls?.issuer ?? null,
      sharedPassphrase: network.shared
        ? credentialView(network.shared, network.rotationPeriodSeconds)
        : null,
      version: network.version,
      createdAt: network.createdAt,
      updatedAt: network.updatedAt,
    };
  }

  #keyView(network: NetworkRecord, key: KeyRecord): KeyView {
    return {
      name: key.name,
      mac: key.mac,
      keyId: key.keyId,
      vlan: key.vlan ?? null,
      saePasswordId: key.saePasswordId ?? null,
      deviceId: key.deviceId ?? null,
      passphrase: credentialView(key.credential, network.rotationPeriodSeconds),
      createdAt: key.createdAt,
      updatedAt: key.updatedAt,
    };
  }
}

function isAccessPoint(network: NetworkRecord, device: DeviceRef): boolean {
  return (
    network.accessPoints.devices.includes(device.name) ||
    network.accessPoints.groups.some((group) => device.groups.includes(group))
  );
}
