import type { DeviceChangeNotifier } from "../../devices/artifacts.ts";
import type { Barrier } from "../../seal/types.ts";

/** Network topologies: every peer reaches every other, or spokes reach only the hub. */
export const TOPOLOGIES = ["full-mesh", "hub-and-spoke"] as const;
export type Topology = (typeof TOPOLOGIES)[number];

/** Configuration formats: wg-quick's, or the subset `wg setconf` reads. */
export const CONFIG_FORMATS = ["wg-quick", "wg"] as const;
export type ConfigFormat = (typeof CONFIG_FORMATS)[number];

/** The maker of a peer's key pair: its endpoint (only the public key reaches the server) or the server. */
export type KeySource = "endpoint" | "server";

export interface Logger {
  info(fields: object, message?: string): void;
  warn(fields: object, message?: string): void;
  error(fields: object, message?: string): void;
}

/** A WireGuard network as stored behind the barrier. */
export interface NetworkRecord {
  name: string;
  /** One IPv4 and/or one IPv6 CIDR block, canonical, with host bits zero. */
  addressRanges: string[];
  listenPort: number;
  /** DNS servers (addresses) and search domains for wg-quick's `DNS`. */
  dns: string[];
  /** Interface MTU; absent lets wg-quick choose. */
  mtu?: number;
  /** Seconds between keepalive packets; 0 turns them off. */
  persistentKeepalive: number;
  topology: Topology;
  /** Name of the hub peer, for hub-and-spoke networks. */
  hub?: string;
  /** Seconds after which a peer's key is due for rotation; 0 means no schedule. */
  rotationPeriodSeconds: number;
  /**
   * Seconds between the registration of a peer's new key and its activation,
   * for peers that already have a key. 0, or no value in records stored
   * before staged rotation existed, activates new keys at once.
   */
  rotationNoticeSeconds?: number;
  createdAt: string;
  updatedAt: string;
  /**
   * Counter of changes to the network and its peers. Each change stamps its
   * new value. A staged key that has activated but is not stored as active
   * yet counts as a later revision (see `effectiveView`).
   */
  revision: number;
  /** Revision of the last change that affects every peer: settings, or the hub joining or leaving. */
  settingsRevision: number;
  /** Revision of the last peer joining or leaving. */
  membershipRevision: number;
  /** Allocated tunnel addresses, from address text to peer name. */
  allocations: Record<string, string>;
}

/** A peer of a network as stored behind the barrier. It never contains the peer's private key. */
export interface PeerRecord {
  name: string;
  network: string;
  /** Random identifier, so a peer deleted and created again under the same name gets new preshared keys. */
  id: string;
  /** The device (agent) that maintains this peer, when one does. */
  deviceId?: string;
  /** Base64 X25519 public key; absent until the endpoint registers one. */
  publicKey?: string;
  keySource?: KeySource;
  /** Number of keys registered so far; 0 while the peer awaits its first key. */
  keyVersion: number;
  /** When the active key was registered. */
  keyCreatedAt?: string;
  /** When the active key became active, for a key that was staged first. */
  keyActivatedAt?: string;
  /**
   * The next key, registered but not yet active: every configuration shows
   * the active key until `next.activateAt`, then this one. A later rotation
   * replaces it.
   */
  next?: StagedKey;
  /** When the server requested a new key from the peer's agent. Cleared when a new key is registered. */
  rotationRequestedAt?: string;
  /** Tunnel addresses, one per address family of the network, without prefix length. */
  addresses: string[];
  /** `host:port` where other peers reach this one. */
  endpoint?: string;
  /** Extra CIDR blocks routed to this peer, besides its tunnel addresses. */
  allowedIps: string[];
  /** Listen port of this peer when it differs from the network's. */
  listenPort?: number;
  /**
   * Base64 of 32 random bytes, regenerated with every key of this peer. The
   * preshared key of a pair is derived from both peers' secrets.
   */
  pskSecret: string;
  /** Network revision of the last change to what other peers' configurations show of this peer. */
  revision: number;
  createdAt: string;
  updatedAt: string;
}

/** A registered key waiting for its activation time, with the preshared-key secret that goes with it. */
export interface StagedKey {
  publicKey: string;
  keySource: KeySource;
  keyVersion: number;
  /** When the key was registered. */
  createdAt: string;
  /** When configurations switch to this key. */
  activateAt: string;
  /** The preshared-key secret that replaces the peer's at activation. */
  pskSecret: string;
}

/** Fields of a network write; on an update, omitted fields keep their values. */
export interface NetworkWrite {
  addressRanges?: unknown;
  listenPort?: unknown;
  dns?: unknown;
  mtu?: unknown;
  persistentKeepalive?: unknown;
  topology?: unknown;
  hub?: unknown;
  rotationPeriod?: unknown;
  rotationNotice?: unknown;
}

/** Fields of a peer write; on an update, omitted fields keep their values. */
export interface PeerWrite {
  publicKey?: unknown;
  generateKey?: unknown;
  deviceId?: unknown;
  endpoint?: unknown;
  allowedIps?: unknown;
  addresses?: unknown;
  listenPort?: unknown;
}

/** A key rotation: the endpoint's new public key, or `generateKey` for a server-made key. */
export interface RotateRequest {
  publicKey?: unknown;
  generateKey?: unknown;
}

/** A network as the API returns it. */
export interface NetworkInfo {
  name: string;
  addressRanges: string[];
  listenPort: number;
  dns: string[];
  mtu: number | null;
  persistentKeepalive: number;
  topology: Topology;
  hub: string | null;
  rotationPeriod: number;
  rotationNotice: number;
  revision: number;
  peerCount: number;
  createdAt: string;
  updatedAt: string;
}

/** A peer and its status as the API returns it; no secret is included. */
export interface PeerInfo {
  name: string;
  network: string;
  deviceId: string | null;
  publicKey: string | null;
  keySource: KeySource | null;
  keyVersion: number;
  keyCreatedAt: string | null;
  /** `pending` until a public key is registered; a pending peer is in no other peer's configuration. */
  keyState: "pending" | "active";
  addresses: string[];
  endpoint: string | null;
  allowedIps: string[];
  listenPort: number;
  /** Rises whenever the peer's rendered configuration changes. */
  configVersion: number;
  rotationDue: boolean;
  rotationDueAt: string | null;
  /** True when the server requested a new key from the peer's agent and none was registered since. */
  rotationRequested: boolean;
  rotationRequestedAt: string | null;
  /** The staged key that replaces `publicKey` at `nextKeyActivateAt`, or null. */
  nextKey: string | null;
  nextKeyVersion: number | null;
  nextKeyActivateAt: string | null;
  createdAt: string;
  updatedAt: string;
}

/** The result of a write that may have generated a key: the private key appears here once. */
export interface PeerWriteResult {
  peer: PeerInfo;
  privateKey?: string;
}

/** A peer's rendered configuration. */
export interface RenderedConfig {
  network: string;
  peer: string;
  format: ConfigFormat;
  configVersion: number;
  /** The peer's tunnel addresses with the network's prefix lengths, as `ip address add` takes them. */
  addresses: string[];
  /** The configuration text; it contains preshared keys, so it is secret. */
  config: string;
}

export interface WireguardServiceOptions {
  barrier: Barrier;
  mount: string;
  clock?: () => Date;
  logger?: Logger;
  /** Notifier called after every committed change with the devices whose peers' configurations may have changed. */
  notifier?: DeviceChangeNotifier;
}
