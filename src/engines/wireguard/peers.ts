import { randomUUID } from "node:crypto";
import { KeywardError } from "../../errors.ts";
import { formatAddress, parseAddress } from "../../util/ip-address.ts";
import { generateKeyPair, validatePublicKey } from "./keys.ts";
import { allocateAddresses, validateRoutes } from "./peer-addresses.ts";
import { newPskSecret } from "./psk.ts";
import { configVersion } from "./render.ts";
import type { NetworkRecord, PeerInfo, PeerRecord, PeerWrite, RotateRequest } from "./types.ts";
import {
  integerIn,
  stringList,
  validateDeviceId,
  validateEndpoint,
  validateName,
} from "./validation.ts";

/** Inputs of a peer write besides the request: the network, its peers and the time. */
export interface PeerWriteContext {
  network: NetworkRecord;
  /** Every peer of the network, the written one included when it exists. */
  peers: readonly PeerRecord[];
  now: string;
  /** The network revision this write stamps. */
  revision: number;
}

/** The result of a rotation: the key active at once, or staged for later. */
export interface RotationOutcome {
  keyVersion: number;
  /** When the key becomes active: `now` unless it was staged. */
  activateAt: string;
  staged: boolean;
}

export interface AppliedPeerWrite {
  record: PeerRecord;
  /** The server-generated private key, present only when this write generated one. */
  privateKey?: string;
  /** True when the write changed what any configuration shows of this peer. */
  rendered: boolean;
  /** Set by rotations. */
  rotation?: RotationOutcome;
}

function checkKeyUnused(publicKey: string, others: readonly PeerRecord[]): void {
  if (others.some((peer) => peer.publicKey === publicKey || peer.next?.publicKey === publicKey)) {
    throw new KeywardError(
      "already_exists",
      `"public_key" is already the key of another peer of this network`,
      { field: "public_key" },
    );
  }
}

/** Reads `public_key` or `generate_key` of a create or rotate request; both or an invalid key are rejected. */
function readKey(request: {
  publicKey?: unknown;
  generateKey?: unknown;
}): { publicKey: string; privateKey?: string } | undefined {
  if (request.generateKey !== undefined && typeof request.generateKey !== "boolean") {
    throw new KeywardError("invalid_field", `"generate_key" must be a boolean`, {
      field: "generate_key",
    });
  }
  if (request.generateKey === true) {
    if (request.publicKey !== undefined) {
      throw new KeywardError(
        "invalid_request",
        `give either "public_key" or "generate_key", not both`,
        { field: "generate_key" },
      );
    }
    return generateKeyPair();
  }
  if (request.publicKey === undefined) return undefined;
  return { publicKey: validatePublicKey(request.publicKey) };
}

/**
 * Creates or updates a peer from a write. Keys and addresses are set at
 * creation: an update that names a different key or address is rejected,
 * because keys change through rotation and addresses never change.
 */
export function applyPeerWrite(
  context: PeerWriteContext,
  name: string,
  write: PeerWrite,
  current: PeerRecord | undefined,
): AppliedPeerWrite {
  validateName(name, "peer");
  const others = context.peers.filter((peer) => peer.name !== name);
  if (current) return updatePeer(context, others, write, current);

  const key = readKey(write);
  if (key) checkKeyUnused(key.publicKey, others);
  const record: PeerRecord = {
    name,
    network: context.network.name,
    id: randomUUID(),
    keyVersion: key ? 1 : 0,
    addresses: allocateAddresses(context.network, write.addresses),
    allowedIps:
      write.allowedIps === undefined
        ? []
        : validateRoutes(context.network, others, write.allowedIps),
    pskSecret: newPskSecret(),
    revision: context.revision,
    createdAt: context.now,
    updatedAt: context.now,
  };
  if (key) {
    record.publicKey = key.publicKey;
    record.keySource = key.privateKey === undefined ? "endpoint" : "server";
    record.keyCreatedAt = context.now;
  }
  if (write.deviceId !== undefined) record.deviceId = validateDeviceId(write.deviceId);
  if (write.endpoint !== undefined) record.endpoint = validateEndpoint(write.endpoint);
  if (write.listenPort !== undefined) {
    record.listenPort = integerIn(write.listenPort, "listen_port", 1, 65_535);
  }
  return { record, privateKey: key?.privateKey, rendered: true };
}

function updatePeer(
  context: PeerWriteContext,
  others: readonly PeerRecord[],
  write: PeerWrite,
  current: PeerRecord,
): AppliedPeerWrite {
  if (
    write.generateKey === true ||
    (write.publicKey !== undefined && write.publicKey !== current.publicKey)
  ) {
    throw new KeywardError(
      "invalid_state",
      `peer "${current.name}" exists; change its key with POST .../peers/${current.name}/rotate`,
      { field: write.generateKey === true ? "generate_key" : "public_key" },
    );
  }
  if (write.addresses !== undefined) {
    const requested = stringList(write.addresses, "addresses").map((text) =>
      text.replace(/\/(?:32|128)$/, ""),
    );
    const same =
      requested.length === current.addresses.length &&
      requested.every((text) => {
        const parsed = parseAddress(text);
        return (
          parsed !== undefined &&
          current.addresses.includes(formatAddress(parsed.family, parsed.value))
        );
      });
    if (!same) {
      throw new KeywardError(
        "invalid_state",
        `the addresses of peer "${current.name}" cannot change; delete and create the peer to renumber it`,
        { field: "addresses" },
      );
    }
  }

  const record: PeerRecord = { ...current, updatedAt: context.now };
  if (write.deviceId !== undefined) {
    if (write.deviceId === "" || write.deviceId === null) delete record.deviceId;
    else record.deviceId = validateDeviceId(write.deviceId);
  }
  if (write.endpoint !== undefined) {
    if (write.endpoint === "" || write.endpoint === null) delete record.endpoint;
    else record.endpoint = validateEndpoint(write.endpoint);
  }
  if (write.allowedIps !== undefined) {
    record.allowedIps = validateRoutes(context.network, others, write.allowedIps);
  }
  if (write.listenPort !== undefined) {
    if (write.listenPort === 0 || write.listenPort === null) delete record.listenPort;
    else record.listenPort = integerIn(write.listenPort, "listen_port", 1, 65_535);
  }
  const rendered =
    record.endpoint !== current.endpoint ||
    record.listenPort !== current.listenPort ||
    record.allowedIps.join(",") !== current.allowedIps.join(",");
  if (rendered) record.revision = context.revision;
  return { record, rendered };
}

/**
 * Rotates a peer's key: registers the endpoint's new public key, or
 * generates a pair when `generate_key` is set or the peer's key was made by
 * the server. The peer's preshared-key secret is renewed with it, so every
 * preshared key of the peer changes too.
 *
 * A peer that has a key, in a network with a rotation notice, gets the new
 * key staged: it becomes active `notice` seconds from now, and every
 * configuration shows the old key until then. A rotation while a key is
 * staged replaces the staged key and starts the notice again. Registering
 * the staged key once more changes nothing, so an agent may retry.
 */
export function applyRotation(
  context: PeerWriteContext,
  current: PeerRecord,
  request: RotateRequest,
): AppliedPeerWrite {
  const serverKeyed = current.keySource === "server" && request.publicKey === undefined;
  const key = readKey(serverKeyed ? { generateKey: true } : request);
  if (!key) {
    throw new KeywardError(
      "missing_field",
      `rotating peer "${current.name}" needs "public_key", the endpoint's new key, or "generate_key": true`,
      { field: "public_key" },
    );
  }
  if (key.publicKey === current.publicKey) {
    throw new KeywardError(
      "invalid_field",
      `"public_key" is the peer's current key; a rotation needs a new one`,
      {
        field: "public_key",
      },
    );
  }
  if (current.next !== undefined && key.publicKey === current.next.publicKey) {
    return {
      record: current,
      rendered: false,
      rotation: {
        keyVersion: current.next.keyVersion,
        activateAt: current.next.activateAt,
        staged: true,
      },
    };
  }
  checkKeyUnused(
    key.publicKey,
    context.peers.filter((peer) => peer.name !== current.name),
  );
  const keySource = key.privateKey === undefined ? "endpoint" : "server";
  const notice = context.network.rotationNoticeSeconds ?? 0;
  const { rotationRequestedAt: _request, next: _replaced, ...rest } = current;

  if (current.publicKey !== undefined && notice > 0) {
    const keyVersion = (current.next?.keyVersion ?? current.keyVersion) + 1;
    const activateAt = new Date(Date.parse(context.now) + notice * 1000).toISOString();
    const record: PeerRecord = {
      ...rest,
      next: {
        publicKey: key.publicKey,
        keySource,
        keyVersion,
        createdAt: context.now,
        activateAt,
        pskSecret: newPskSecret(),
      },
      updatedAt: context.now,
    };
    return {
      record,
      privateKey: key.privateKey,
      rendered: false,
      rotation: { keyVersion, activateAt, staged: true },
    };
  }

  const { keyActivatedAt: _activated, ...immediate } = rest;
  const keyVersion = (current.next?.keyVersion ?? current.keyVersion) + 1;
  const record: PeerRecord = {
    ...immediate,
    publicKey: key.publicKey,
    keySource,
    keyVersion,
    keyCreatedAt: context.now,
    pskSecret: newPskSecret(),
    revision: context.revision,
    updatedAt: context.now,
  };
  return {
    record,
    privateKey: key.privateKey,
    rendered: true,
    rotation: { keyVersion, activateAt: context.now, staged: false },
  };
}

/**
 * Marks that the server requests a new key from the peer's agent. Only a
 * peer that an agent maintains (with `device_id`) and whose key its endpoint
 * made can get a request, because the server rotates server-made keys itself.
 */
export function applyRotationRequest(context: PeerWriteContext, current: PeerRecord): PeerRecord {
  if (current.deviceId === undefined) {
    throw new KeywardError(
      "invalid_state",
      `peer "${current.name}" has no "device_id", so no agent can make its new key; rotate it with POST .../peers/${current.name}/rotate`,
      { field: "device_id" },
    );
  }
  if (current.keySource === "server") {
    throw new KeywardError(
      "invalid_state",
      `the key of peer "${current.name}" was made by the server; rotate it with POST .../peers/${current.name}/rotate`,
      { field: "key_source" },
    );
  }
  return { ...current, rotationRequestedAt: context.now, updatedAt: context.now };
}

/** Returns when a key started to count for the rotation schedule: its activation, or its registration. */
function keyStartedAt(peer: PeerRecord): string | undefined {
  return peer.keyActivatedAt ?? peer.keyCreatedAt;
}

/**
 * Returns true when the scheduled job should request a new key from the peer's agent:
 * an agent-maintained peer with an endpoint-made key older than the
 * network's rotation period, no staged key and no request outstanding.
 */
export function rotationRequestDue(network: NetworkRecord, peer: PeerRecord, now: Date): boolean {
  if (peer.deviceId === undefined || peer.keySource !== "endpoint") return false;
  if (peer.next !== undefined || peer.rotationRequestedAt !== undefined) return false;
  const dueAt = rotationDueAt(network, peer);
  return dueAt !== undefined && dueAt.getTime() <= now.getTime();
}

/** Returns when the peer's key is due for rotation under the network's schedule, or undefined. */
function rotationDueAt(network: NetworkRecord, peer: PeerRecord): Date | undefined {
  const startedAt = keyStartedAt(peer);
  if (network.rotationPeriodSeconds === 0 || startedAt === undefined) return undefined;
  return new Date(Date.parse(startedAt) + network.rotationPeriodSeconds * 1000);
}

/** Builds a peer's public status from a network view (see `effectiveView`) at `now`. */
export function peerInfo(
  network: NetworkRecord,
  peer: PeerRecord,
  peers: readonly PeerRecord[],
  now: Date,
): PeerInfo {
  const dueAt = rotationDueAt(network, peer);
  return {
    name: peer.name,
    network: peer.network,
    deviceId: peer.deviceId ?? null,
    publicKey: peer.publicKey ?? null,
    keySource: peer.keySource ?? null,
    keyVersion: peer.keyVersion,
    keyCreatedAt: peer.keyCreatedAt ?? null,
    keyState: peer.publicKey === undefined ? "pending" : "active",
    addresses: peer.addresses,
    endpoint: peer.endpoint ?? null,
    allowedIps: peer.allowedIps,
    listenPort: peer.listenPort ?? network.listenPort,
    configVersion: configVersion(network, peer, peers),
    rotationDue: dueAt !== undefined && dueAt.getTime() <= now.getTime(),
    rotationDueAt: dueAt?.toISOString() ?? null,
    rotationRequested: peer.rotationRequestedAt !== undefined,
    rotationRequestedAt: peer.rotationRequestedAt ?? null,
    nextKey: peer.next?.publicKey ?? null,
    nextKeyVersion: peer.next?.keyVersion ?? null,
    nextKeyActivateAt: peer.next?.activateAt ?? null,
    createdAt: peer.createdAt,
    updatedAt: peer.updatedAt,
  };
}
