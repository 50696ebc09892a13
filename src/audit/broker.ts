import { resolve } from "node:path";
import type { Logger } from "pino";
import { KeywardError } from "../errors.ts";
import type { Barrier } from "../seal/types.ts";
import { Mutex } from "../util/mutex.ts";
import { AuditDevice, type DeviceStats } from "./device.ts";
import {
  createSink,
  deviceOpenFailure,
  deviceSettings,
  isDeviceType,
  normaliseDevicePath,
  validateDeviceOptions,
} from "./device-options.ts";
import { buildPayload } from "./payload.ts";
import {
  type AuditKeys,
  ChainStateStore,
  loadDeviceTable,
  loadOrCreateKeys,
  saveDeviceTable,
} from "./persistence.ts";
import { DEFAULT_SENSITIVE_FIELDS, hmacValue } from "./redact.ts";
import { recordFilter, type SearchQuery, type SearchResult, searchLines } from "./search.ts";
import { StoreSink } from "./sinks/store.ts";
import {
  type AuditPayload,
  type AuditRequestEntry,
  type AuditResponseEntry,
  DEVICE_TYPES,
  type DeviceEntry,
  type DeviceType,
} from "./types.ts";
import { type VerifyResult, verifyAuditLog } from "./verify.ts";

export const DEFAULT_WRITE_TIMEOUT_MS = 5000;
export const DEFAULT_CHECKPOINT_INTERVAL = 100;

/** The device a new installation starts with, at this path. */
export const BUILT_IN_STORE_PATH = "store";

export interface AuditBrokerOptions {
  barrier: Barrier;
  logger: Logger;
  clock?: () => Date;
  /** Time limit of each device write unless the device sets `write_timeout`, in milliseconds. */
  writeTimeoutMs?: number;
  /** Records between signed checkpoints unless the device sets `checkpoint_interval`. */
  checkpointInterval?: number;
  /** Fields whose string values are HMAC'd; `DEFAULT_SENSITIVE_FIELDS` when absent. */
  sensitiveFields?: Iterable<string>;
}

type BrokerState = "closed" | "open" | "closing";

/**
 * Sends every audit record to every enabled device, and owns the device
 * table, the HMAC key and the checkpoint signing key.
 *
 * The broker is open only while the barrier is: `open` after each unseal,
 * `close` before each seal and at shutdown. While closed it records
 * nothing and every log call succeeds, as in Vault, where a sealed server
 * serves only unaudited seal-status and unseal requests. While closing, log
 * calls fail with `audit_failure`, so no request completes unaudited.
 *
 * A new installation gets one device, a `store` device at `store/`, so
 * every request is audited until an operator disables it. With no device
 * enabled, log calls write nothing and succeed, as in Vault.
 */
export class AuditBroker {
  readonly #barrier: Barrier;
  readonly #logger: Logger;
  readonly #clock: () => Date;
  readonly #writeTimeoutMs: number;
  readonly #checkpointInterval: number;
  readonly #sensitiveFields: ReadonlySet<string>;
  readonly #chainState: ChainStateStore;
  /** Serialises open, close, enable and disable. */
  readonly #admin = new Mutex();
  #state: BrokerState = "closed";
  #keys: AuditKeys | undefined;
  #devices = new Map<string, AuditDevice>();

  constructor(options: AuditBrokerOptions) {
    this.#barrier = options.barrier;
    this.#logger = options.logger;
    this.#clock = options.clock ?? (() => new Date());
    this.#writeTimeoutMs = options.writeTimeoutMs ?? DEFAULT_WRITE_TIMEOUT_MS;
    this.#checkpointInterval = options.checkpointInterval ?? DEFAULT_CHECKPOINT_INTERVAL;
    this.#sensitiveFields = new Set(options.sensitiveFields ?? DEFAULT_SENSITIVE_FIELDS);
    this.#chainState = new ChainStateStore(options.barrier);
  }

  /** True between `open` and `close`. */
  get isOpen(): boolean {
    return this.#state === "open";
  }

  /**
   * Loads the key material (creating it on first use) and the device table,
   * and opens every device. A device that cannot be opened stays enabled,
   * is logged, and is opened again at its next write.
   */
  async open(): Promise<void> {
    await this.#admin.run(async () => {
      if (this.#state !== "closed") return;
      this.#keys = await loadOrCreateKeys(this.#barrier);
      let entries = await loadDeviceTable(this.#barrier);
      if (entries === undefined) {
        entries = [this.#entry(BUILT_IN_STORE_PATH, "store", {}, "built-in audit store")];
        await saveDeviceTable(this.#barrier, entries);
      }
      const devices = entries.map((entry) => this.#createDevice(entry));
      // Devices open in parallel, so one unreachable receiver delays unseal
      // by at most one write timeout.
      await Promise.all(
        devices.map((device) =>
          device.open().catch((error: unknown) => {
            this.#logger.error(
              { err: error, device: device.entry.path, deviceType: device.entry.type },
              "cannot open audit device; it stays enabled and is retried at its next write",
            );
          }),
        ),
      );
      this.#devices = new Map(devices.map((device) => [device.entry.path, device]));
      this.#state = "open";
      this.#logger.info({ devices: entries.map((entry) => entry.path) }, "audit broker opened");
    });
  }

  /** Writes a closing checkpoint to every device, closes them and drops the key material. */
  async close(): Promise<void> {
    await this.#admin.run(async () => {
      if (this.#state !== "open") return;
      this.#state = "closing";
      const devices = [...this.#devices.values()];
      this.#devices = new Map();
      await Promise.all(devices.map((device) => device.close()));
      this.#keys = undefined;
      this.#state = "closed";
      this.#logger.info("audit broker closed");
    });
  }

  /** Enabled devices, in the order they were enabled. */
  list(): DeviceEntry[] {
    this.#requireOpen();
    return [...this.#devices.values()].map((device) => device.entry);
  }

  /** Per-device counters since the broker opened. */
  stats(): Record<string, DeviceStats> {
    const stats: Record<string, DeviceStats> = {};
    for (const [path, device] of this.#devices) stats[path] = { ...device.stats };
    return stats;
  }

  /**
   * Enables a device: checks its options, opens it (so a wrong path or an
   * unreachable address fails here) and stores the device table.
   */
  async enable(
    path: string,
    type: DeviceType,
    options: Record<string, unknown> = {},
    description = "",
  ): Promise<DeviceEntry> {
    return this.#admin.run(async () => {
      this.#requireOpen();
      const normalised = normaliseDevicePath(path);
      if (!isDeviceType(type)) {
        throw new KeywardError("invalid_field", `type must be one of ${DEVICE_TYPES.join(", ")}`, {
          field: "type",
        });
      }
      if (this.#devices.has(normalised)) {
        throw new KeywardError(
          "already_exists",
          `an audit device is already enabled at "${normalised}/"`,
          { field: "path" },
        );
      }
      const entry = this.#entry(
        normalised,
        type,
        validateDeviceOptions(type, options),
        description,
      );
      this.#rejectSharedFile(entry);
      const device = this.#createDevice(entry);
      try {
        await device.open();
      } catch (error) {
        throw entry.type === "store" ? error : deviceOpenFailure(entry, error);
      }
      try {
        await saveDeviceTable(this.#barrier, [...this.list(), entry]);
      } catch (error) {
        await device.close();
        throw error;
      }
      this.#devices.set(normalised, device);
      this.#logger.info({ device: normalised, deviceType: type }, "audit device enabled");
      return entry;
    });
  }

  /** Disables a device after writing its closing checkpoint. A store device keeps its records. */
  async disable(path: string): Promise<void> {
    await this.#admin.run(async () => {
      this.#requireOpen();
      const normalised = normaliseDevicePath(path);
      const device = this.#devices.get(normalised);
      if (device === undefined) {
        throw new KeywardError("not_found", `no audit device is enabled at "${normalised}/"`);
      }
      const remaining = this.list().filter((entry) => entry.path !== normalised);
      await saveDeviceTable(this.#barrier, remaining);
      this.#devices.delete(normalised);
      await device.close();
      try {
        await this.#chainState.delete(normalised);
      } catch (error) {
        this.#logger.warn({ err: error, device: normalised }, "failed to delete the chain head");
      }
      this.#logger.info({ device: normalised }, "audit device disabled");
    });
  }

  /**
   * Records a request before it is handled. Resolves once every device has
   * written the record, failed or timed out, provided at least one wrote
   * it; throws `audit_failure` when none did.
   */
  async logRequest(entry: AuditRequestEntry): Promise<void> {
    await this.#broadcast("request", entry);
  }

  /** Records a response before it is sent, with the same outcome rules as `logRequest`. */
  async logResponse(entry: AuditResponseEntry): Promise<void> {
    await this.#broadcast("response", entry);
  }

  /** Returns the HMAC of `input` as the devices write it, for `sys/audit-hash/<path>`. */
  hash(path: string, input: string): string {
    const keys = this.#requireOpen();
    const normalised = normaliseDevicePath(path);
    if (!this.#devices.has(normalised)) {
      throw new KeywardError("not_found", `no audit device is enabled at "${normalised}/"`);
    }
    return hmacValue(keys.hmacKey, input);
  }

  /**
   * Reopens every device that writes a file, after a log rotator renamed
   * the files. Each old file ends with a checkpoint and each chain
   * continues in the new file. A device that fails is logged and skipped.
   */
  async reopenFiles(): Promise<void> {
    if (this.#state !== "open") return;
    const devices = [...this.#devices.values()].filter((device) => device.entry.type === "file");
    for (const device of devices) {
      try {
        await device.reopen();
      } catch (error) {
        this.#logger.error(
          { err: error, device: device.entry.path },
          "failed to reopen the audit file; records go on to the old file until the next reopen",
        );
      }
    }
  }

  /** Returns the checkpoint signing key's public half (SPKI PEM) and its id. */
  publicKey(): { publicKeyPem: string; keyId: string } {
    const keys = this.#requireOpen();
    return { publicKeyPem: keys.publicKeyPem, keyId: keys.signer.keyId };
  }

  /** Searches the records of a store device. */
  async search(query: SearchQuery = {}): Promise<SearchResult> {
    const filter = recordFilter(query);
    const device = this.#storeDevice(query.device);
    return searchLines(new StoreSink(this.#barrier, device).lines(), filter);
  }

  /**
   * Verifies the hash chain and checkpoint signatures of a store device's
   * records, and that they reach the last record the device wrote, so a
   * truncated or rewritten end is reported too.
   */
  async verifyStore(devicePath?: string): Promise<VerifyResult> {
    const keys = this.#requireOpen();
    const device = this.#storeDevice(devicePath);
    // Taken before reading: records written while the log is read come after it.
    const head = this.#devices.get(device)?.head;
    const expectedHead = head === undefined || head.seq === 0 ? undefined : head;
    return verifyAuditLog(new StoreSink(this.#barrier, device).lines(), keys.publicKeyPem, {
      expectedHead,
    });
  }

  async #broadcast(type: "request" | "response", entry: AuditRequestEntry): Promise<void> {
    if (this.#state === "closed") return;
    const keys = this.#keys;
    if (this.#state === "closing" || keys === undefined) {
      throw new KeywardError(
        "audit_failure",
        "the audit log is closing, so the request was rejected",
      );
    }
    const devices = [...this.#devices.values()];
    if (devices.length === 0) return;
    const payload: AuditPayload = buildPayload(type, entry, this.#clock(), {
      hmacKey: keys.hmacKey,
      sensitiveFields: this.#sensitiveFields,
    });
    const results = await Promise.allSettled(devices.map((device) => device.write(payload)));
    if (results.some((result) => result.status === "fulfilled")) return;
    throw new KeywardError("audit_failure", "no audit device could record the request", {
      details: { devices: devices.map((device) => device.entry.path), requestId: entry.request.id },
    });
  }

  /** Rejects a file device whose file another device writes, since two chains in one file cannot verify. */
  #rejectSharedFile(entry: DeviceEntry): void {
    if (entry.type !== "file") return;
    const target = resolve(entry.options.file_path ?? "");
    for (const device of this.#devices.values()) {
      const other = device.entry;
      if (other.type === "file" && resolve(other.options.file_path ?? "") === target) {
        throw new KeywardError(
          "invalid_field",
          `the audit device at "${other.path}/" already writes to "${target}"`,
          { field: "options.file_path" },
        );
      }
    }
  }

  /** Returns the path of the named store device, or of the first enabled one. */
  #storeDevice(path: string | undefined): string {
    this.#requireOpen();
    if (path === undefined) {
      const first = [...this.#devices.values()].find((device) => device.entry.type === "store");
      if (first === undefined) {
        throw new KeywardError("not_found", "no store audit device is enabled");
      }
      return first.entry.path;
    }
    const normalised = normaliseDevicePath(path);
    const device = this.#devices.get(normalised);
    if (device === undefined || device.entry.type !== "store") {
      throw new KeywardError("not_found", `no store audit device is enabled at "${normalised}/"`);
    }
    return normalised;
  }

  #requireOpen(): AuditKeys {
    if (this.#state !== "open" || this.#keys === undefined) {
      throw new KeywardError("sealed", "Keyward is sealed");
    }
    return this.#keys;
  }

  #entry(
    path: string,
    type: DeviceType,
    options: Readonly<Record<string, string>>,
    description: string,
  ): DeviceEntry {
    return { path, type, description, options, createdAt: this.#clock().toISOString() };
  }

  #createDevice(entry: DeviceEntry): AuditDevice {
    const settings = deviceSettings(entry.options);
    const sink = createSink(entry, { barrier: this.#barrier, logger: this.#logger });
    return new AuditDevice(entry, sink, {
      logger: this.#logger,
      signer: this.#requireKeys().signer,
      chainState: this.#chainState,
      clock: this.#clock,
      writeTimeoutMs: settings.writeTimeoutMs ?? this.#writeTimeoutMs,
      checkpointInterval: settings.checkpointInterval ?? this.#checkpointInterval,
    });
  }

  #requireKeys(): AuditKeys {
    if (this.#keys === undefined) throw new KeywardError("sealed", "Keyward is sealed");
    return this.#keys;
  }
}
