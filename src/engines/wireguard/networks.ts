import { KeywardError } from "../../errors.ts";
import { formatPrefix, type Prefix, parsePrefix, prefixesOverlap } from "./addresses.ts";
import type { NetworkInfo, NetworkRecord, NetworkWrite, Topology } from "./types.ts";
import { TOPOLOGIES } from "./types.ts";
import {
  durationSeconds,
  integerIn,
  stringList,
  validateDnsEntry,
  validateName,
} from "./validation.ts";

/** WireGuard's customary listen port. */
export const DEFAULT_LISTEN_PORT = 51_820;

/**
 * Maximum rotation notice, in seconds (30 days). Until a staged key
 * activates, the key it replaces stays in use, so a longer notice would keep
 * a key the operator wants gone alive for too long.
 */
export const MAX_ROTATION_NOTICE_SECONDS = 30 * 86_400;

/** Interface MTU bounds: IPv4's minimum datagram size, and the largest jumbo frame in common use. */
const MIN_MTU = 576;
const MAX_MTU = 9_000;

/** Parses a network's address ranges: one IPv4 and/or one IPv6 block, host bits zero. */
export function parseRanges(value: unknown): Prefix[] {
  const ranges = stringList(value, "address_ranges").map((text) =>
    parsePrefix(text, "address_ranges", true),
  );
  if (ranges.length === 0) {
    throw new KeywardError("missing_field", `"address_ranges" needs an IPv4 or IPv6 CIDR block`, {
      field: "address_ranges",
    });
  }
  const families = new Set(ranges.map((range) => range.family));
  if (families.size !== ranges.length) {
    throw new KeywardError(
      "invalid_field",
      `"address_ranges" may contain at most one IPv4 and one IPv6 block`,
      { field: "address_ranges" },
    );
  }
  for (const range of ranges) {
    const maxLength = range.family === 4 ? 30 : 126;
    if (range.length > maxLength) {
      throw new KeywardError(
        "invalid_field",
        `"address_ranges": ${formatPrefix(range)} is too small for two peers; use /${maxLength} or shorter`,
        { field: "address_ranges" },
      );
    }
  }
  return ranges;
}

/** Rejects ranges that share an address with another network of the mount. */
export function checkNoOverlap(name: string, ranges: Prefix[], others: NetworkRecord[]): void {
  for (const other of others) {
    if (other.name === name) continue;
    for (const otherText of other.addressRanges) {
      const otherRange = parsePrefix(otherText, "address_ranges", true);
      for (const range of ranges) {
        if (prefixesOverlap(range, otherRange)) {
          throw new KeywardError(
            "address_conflict",
            `"address_ranges": ${formatPrefix(range)} overlaps ${otherText} of network "${other.name}"`,
            { field: "address_ranges" },
          );
        }
      }
    }
  }
}

/**
 * Builds a network's settings from a write. On an update (`current` set),
 * omitted fields keep their values. Address ranges cannot change while the
 * network has peers, because their addresses were allocated from them.
 */
export function applyNetworkWrite(
  name: string,
  write: NetworkWrite,
  current: NetworkRecord | undefined,
  now: string,
): NetworkRecord {
  validateName(name, "name");
  const next: NetworkRecord = current
    ? { ...current, updatedAt: now }
    : {
        name,
        addressRanges: [],
        listenPort: DEFAULT_LISTEN_PORT,
        dns: [],
        persistentKeepalive: 0,
        topology: "full-mesh",
        rotationPeriodSeconds: 0,
        rotationNoticeSeconds: 0,
        createdAt: now,
        updatedAt: now,
        revision: 0,
        settingsRevision: 0,
        membershipRevision: 0,
        allocations: {},
      };

  if (write.addressRanges !== undefined) {
    const ranges = parseRanges(write.addressRanges).map(formatPrefix);
    const changed = ranges.join(",") !== next.addressRanges.join(",");
    if (changed && Object.keys(next.allocations).length > 0) {
      throw new KeywardError(
        "invalid_state",
        `"address_ranges" cannot change while network "${name}" has peers; delete them first`,
        { field: "address_ranges" },
      );
    }
    next.addressRanges = ranges;
  } else if (!current) {
    throw new KeywardError("missing_field", `missing required field "address_ranges"`, {
      field: "address_ranges",
    });
  }
  if (write.listenPort !== undefined) {
    next.listenPort = integerIn(write.listenPort, "listen_port", 1, 65_535);
  }
  if (write.dns !== undefined) next.dns = stringList(write.dns, "dns").map(validateDnsEntry);
  if (write.mtu !== undefined) {
    if (write.mtu === 0 || write.mtu === null) delete next.mtu;
    else next.mtu = integerIn(write.mtu, "mtu", MIN_MTU, MAX_MTU);
  }
  if (write.persistentKeepalive !== undefined) {
    next.persistentKeepalive = integerIn(
      write.persistentKeepalive,
      "persistent_keepalive",
      0,
      65_535,
    );
  }
  if (write.topology !== undefined) {
    if (!TOPOLOGIES.includes(write.topology as Topology)) {
      throw new KeywardError(
        "invalid_field",
        `"topology" must be one of ${TOPOLOGIES.join(", ")}`,
        {
          field: "topology",
        },
      );
    }
    next.topology = write.topology as Topology;
  }
  if (write.hub !== undefined) {
    if (write.hub === "" || write.hub === null) delete next.hub;
    else next.hub = validateName(String(write.hub), "hub");
  }
  if (write.rotationPeriod !== undefined) {
    next.rotationPeriodSeconds = durationSeconds(write.rotationPeriod, "rotation_period");
  }
  if (write.rotationNotice !== undefined) {
    const notice = durationSeconds(write.rotationNotice, "rotation_notice");
    if (notice > MAX_ROTATION_NOTICE_SECONDS) {
      throw new KeywardError(
        "invalid_field",
        `"rotation_notice" must be at most ${MAX_ROTATION_NOTICE_SECONDS} seconds (30 days)`,
        { field: "rotation_notice" },
      );
    }
    next.rotationNoticeSeconds = notice;
  }

  if (next.topology === "hub-and-spoke" && next.hub === undefined) {
    throw new KeywardError(
      "missing_field",
      `a hub-and-spoke network needs "hub", the hub peer's name`,
      {
        field: "hub",
      },
    );
  }
  if (next.topology === "full-mesh") {
    if (write.hub !== undefined && write.hub !== "" && write.hub !== null) {
      throw new KeywardError("invalid_field", `"hub" applies only to hub-and-spoke networks`, {
        field: "hub",
      });
    }
    delete next.hub;
  }
  return next;
}

export function networkInfo(record: NetworkRecord, peerCount: number): NetworkInfo {
  return {
    name: record.name,
    addressRanges: record.addressRanges,
    listenPort: record.listenPort,
    dns: record.dns,
    mtu: record.mtu ?? null,
    persistentKeepalive: record.persistentKeepalive,
    topology: record.topology,
    hub: record.hub ?? null,
    rotationPeriod: record.rotationPeriodSeconds,
    rotationNotice: record.rotationNoticeSeconds ?? 0,
    revision: record.revision,
    peerCount,
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
  };
}
