import { isAbsolute } from "node:path";
import type { Logger } from "pino";
import { isKeywardError, KeywardError } from "../errors.ts";
import type { Barrier } from "../seal/types.ts";
import { FileSink } from "./sinks/file.ts";
import type { AuditSink } from "./sinks/sink.ts";
import { SocketSink } from "./sinks/socket.ts";
import { StoreSink } from "./sinks/store.ts";
import { parseHostPort, type StreamAddress } from "./sinks/stream.ts";
import {
  isValidSyslogTag,
  MAX_TAG_LENGTH,
  SYSLOG_FACILITIES,
  SyslogSink,
  type SyslogTransport,
} from "./sinks/syslog.ts";
import { DEVICE_TYPES, type DeviceEntry, type DeviceType } from "./types.ts";

/** Options every device type accepts. */
const COMMON_OPTIONS = ["write_timeout", "checkpoint_interval"];

/** Options each device type accepts besides the common ones. */
const TYPE_OPTIONS: Record<DeviceType, readonly string[]> = {
  file: ["file_path"],
  socket: ["address", "socket_type"],
  syslog: ["address", "socket_type", "facility", "tag"],
  store: [],
};

const SOCKET_TYPES = ["tcp", "unix"];
const SYSLOG_TRANSPORTS = ["udp", "tcp", "unix"];
const DEFAULT_SYSLOG_ADDRESS = "127.0.0.1:514";
const DEFAULT_SYSLOG_FACILITY = "auth";
const DEFAULT_SYSLOG_TAG = "keyward";

/** Bounds of `write_timeout`, in milliseconds. */
const MIN_WRITE_TIMEOUT_MS = 1;
const MAX_WRITE_TIMEOUT_MS = 300_000;
const MAX_CHECKPOINT_INTERVAL = 1_000_000;

/** Milliseconds per unit of a duration option. */
const DURATION_UNIT_MS = { ms: 1, s: 1000, m: 60_000 } as const;

const DEVICE_PATH = /^[a-z0-9][a-z0-9_-]{0,63}$/;

/** Per-device settings that override the broker's defaults. */
export interface DeviceSettings {
  writeTimeoutMs?: number;
  checkpointInterval?: number;
}

function invalidOption(name: string, message: string): KeywardError {
  return new KeywardError("invalid_field", message, { field: `options.${name}` });
}

/** Validates a device path as given in `/v1/sys/audit/<path>`; a trailing slash is allowed. */
export function normaliseDevicePath(path: string): string {
  const trimmed = path.endsWith("/") ? path.slice(0, -1) : path;
  if (!DEVICE_PATH.test(trimmed)) {
    throw new KeywardError(
      "invalid_field",
      "audit device path must be 1-64 characters of a-z, 0-9, '-' and '_', starting with a letter or digit",
      { field: "path" },
    );
  }
  return trimmed;
}

export function isDeviceType(value: unknown): value is DeviceType {
  return typeof value === "string" && (DEVICE_TYPES as readonly string[]).includes(value);
}

/**
 * Parses a duration such as `250ms`, `5s` or `1m` into milliseconds. A bare
 * integer is seconds, as in Vault's options.
 */
export function parseDurationMs(value: string): number | undefined {
  const match = /^(\d+)(ms|s|m)?$/.exec(value.trim());
  if (!match) return undefined;
  const unit = (match[2] ?? "s") as keyof typeof DURATION_UNIT_MS;
  return Number(match[1]) * DURATION_UNIT_MS[unit];
}

/**
 * Checks a device's type and options and returns a frozen copy of the
 * options. Unknown options are rejected, so a mistyped name is not ignored.
 */
export function validateDeviceOptions(
  type: DeviceType,
  options: Record<string, unknown>,
): Readonly<Record<string, string>> {
  const allowed = new Set([...COMMON_OPTIONS, ...TYPE_OPTIONS[type]]);
  const copy: Record<string, string> = {};
  for (const [name, value] of Object.entries(options)) {
    if (!allowed.has(name)) {
      throw new KeywardError(
        "unknown_field",
        `unknown option "${name}" for a ${type} audit device; accepted: ${[...allowed].join(", ")}`,
        { field: `options.${name}` },
      );
    }
    if (typeof value !== "string") throw invalidOption(name, `option "${name}" must be a string`);
    copy[name] = value;
  }
  deviceSettings(copy);
  switch (type) {
    case "file":
      filePath(copy);
      break;
    case "socket":
      socketAddress(copy);
      break;
    case "syslog":
      syslogOptions(copy);
      break;
    case "store":
      break;
  }
  return Object.freeze(copy);
}

/** Reads the common options `write_timeout` and `checkpoint_interval`. */
export function deviceSettings(options: Readonly<Record<string, string>>): DeviceSettings {
  const settings: DeviceSettings = {};
  if (options.write_timeout !== undefined) {
    const ms = parseDurationMs(options.write_timeout);
    if (ms === undefined || ms < MIN_WRITE_TIMEOUT_MS || ms > MAX_WRITE_TIMEOUT_MS) {
      throw invalidOption(
        "write_timeout",
        `write_timeout must be a duration from 1ms to 300s, such as "5s" or "500ms"; got "${options.write_timeout}"`,
      );
    }
    settings.writeTimeoutMs = ms;
  }
  if (options.checkpoint_interval !== undefined) {
    const interval = Number(options.checkpoint_interval);
    if (!/^\d+$/.test(options.checkpoint_interval) || interval < 1) {
      throw invalidOption(
        "checkpoint_interval",
        `checkpoint_interval must be an integer from 1 to ${MAX_CHECKPOINT_INTERVAL} (records between checkpoints); got "${options.checkpoint_interval}"`,
      );
    }
    if (interval > MAX_CHECKPOINT_INTERVAL) {
      throw invalidOption(
        "checkpoint_interval",
        `checkpoint_interval must be at most ${MAX_CHECKPOINT_INTERVAL}`,
      );
    }
    settings.checkpointInterval = interval;
  }
  return settings;
}

function filePath(options: Readonly<Record<string, string>>): string {
  const path = options.file_path;
  if (path === undefined || path === "") {
    throw new KeywardError("missing_field", 'a file audit device needs the option "file_path"', {
      field: "options.file_path",
    });
  }
  if (!isAbsolute(path)) {
    throw invalidOption("file_path", `file_path must be an absolute path; got "${path}"`);
  }
  return path;
}

function streamAddress(name: string, kind: string, address: string): StreamAddress {
  if (kind === "unix") {
    if (address === "") throw invalidOption("address", "address must be a socket path");
    return { kind: "unix", path: address };
  }
  try {
    return { kind: "tcp", ...parseHostPort(address) };
  } catch (error) {
    throw invalidOption(name, `invalid address: ${(error as Error).message}`);
  }
}

function socketAddress(options: Readonly<Record<string, string>>): StreamAddress {
  const kind = options.socket_type ?? "tcp";
  if (!SOCKET_TYPES.includes(kind)) {
    throw invalidOption("socket_type", `socket_type must be tcp or unix; got "${kind}"`);
  }
  if (options.address === undefined) {
    throw new KeywardError("missing_field", 'a socket audit device needs the option "address"', {
      field: "options.address",
    });
  }
  return streamAddress("address", kind, options.address);
}

function syslogOptions(options: Readonly<Record<string, string>>) {
  const transport = options.socket_type ?? "udp";
  if (!SYSLOG_TRANSPORTS.includes(transport)) {
    throw invalidOption("socket_type", `socket_type must be udp, tcp or unix; got "${transport}"`);
  }
  const facilityName = (options.facility ?? DEFAULT_SYSLOG_FACILITY).toLowerCase();
  const facility = SYSLOG_FACILITIES[facilityName];
  if (facility === undefined) {
    throw invalidOption(
      "facility",
      `unknown syslog facility "${options.facility}"; accepted: ${Object.keys(SYSLOG_FACILITIES).join(", ")}`,
    );
  }
  const tag = options.tag ?? DEFAULT_SYSLOG_TAG;
  if (!isValidSyslogTag(tag)) {
    throw invalidOption(
      "tag",
      `tag must be 1-${MAX_TAG_LENGTH} printable ASCII characters without spaces`,
    );
  }
  if (transport === "unix" && options.address === undefined) {
    throw new KeywardError(
      "missing_field",
      'syslog over a Unix socket needs the option "address"',
      {
        field: "options.address",
      },
    );
  }
  const address = streamAddress(
    "address",
    transport === "unix" ? "unix" : "tcp",
    options.address ?? DEFAULT_SYSLOG_ADDRESS,
  );
  return { transport: transport as SyslogTransport, address, facility, tag };
}

/** Builds the sink for a device entry whose options have been validated. */
export function createSink(
  entry: DeviceEntry,
  context: { barrier: Barrier; logger: Logger; nodeId: string },
): AuditSink {
  switch (entry.type) {
    case "file":
      return new FileSink(filePath(entry.options), context.logger);
    case "socket":
      return new SocketSink(socketAddress(entry.options));
    case "syslog":
      return new SyslogSink(syslogOptions(entry.options));
    case "store":
      return new StoreSink(context.barrier, entry.path, context.nodeId);
  }
}

/** Describes why a file, socket or syslog device could not be opened, naming the option at fault. */
export function deviceOpenFailure(entry: DeviceEntry, error: unknown): KeywardError {
  if (isKeywardError(error)) return error;
  const code = (error as NodeJS.ErrnoException).code;
  const reason = code === undefined ? "" : ` (${code})`;
  if (entry.type === "file") {
    return new KeywardError(
      "invalid_request",
      `cannot open the audit file "${entry.options.file_path}"${reason}; check that its folder exists and is writable`,
      { field: "options.file_path", cause: error },
    );
  }
  const address = entry.options.address ?? DEFAULT_SYSLOG_ADDRESS;
  return new KeywardError(
    "invalid_request",
    `cannot connect to "${address}" for the ${entry.type} audit device${reason}; check that the receiver is listening`,
    { field: "options.address", cause: error },
  );
}
