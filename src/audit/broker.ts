import type { Logger } from "pino";
import { isKeywardError, KeywardError } from "../errors.ts";
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
import {
  addDeviceEntry,
  loadOrCreateDeviceTable,
  rejectConflicts,
  removeDeviceEntry,
  sameDevice,
} from "./device-table.ts";
import { DEFAULT_AUDIT_NODE_ID, validateNodeId } from "./node-id.ts";
import { preparePayload } from "./payload.ts";
import {
  type AuditKeys,
  ChainStateStore,
  loadDeviceTable,
  loadOrCreateKeys,
} from "./persistence.ts";
import { DEFAULT_SENSITIVE_FIELDS, hmacValue } from "./redact.ts";
import { recordFilter, type SearchQuery, type SearchResult, searchLines } from "./search.ts";
import { ChainReader, listStoreChains } from "./sinks/store.ts";
import { chainsToVerify, type StoreVerifyResult, verifyStoreChains } from "./store-verify.ts";
import {
  type AuditRequestEntry,
  type AuditResponseEntry,
  DEVICE_TYPES,
  type DeviceEntry,
  type DeviceType,
} from "./types.ts";

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
  /**
   * Id of the Keyward node this broker runs in: 1 to 64 letters, digits,
   * `.`, `-` and `_`, starting with a letter or digit. Every record names
   * it, and each node writes its own hash chain of every device. Nodes
   * that share one storage need distinct ids. `DEFAULT_AUDIT_NODE_ID`
   * ("local") when absent.
   */
  nodeId?: string;
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
 * calls fail with `sealed` (503), so no request completes unaudited.
 *
 * A new installation gets one device, a `store` device at `store/`, so
 * every request is audited until an operator disables it. With no device
 * enabled, log calls write nothing and succeed, as in Vault.
 *
 * Several nodes may share one storage, each with its own broker and node
 * id. They share the device table in storage, so every node runs every
 * device it lists, and `refresh` applies the changes another node made.
 */
export class AuditBroker {
  readonly #barrier: Barrier;
  readonly #logger: Logger;
  readonly #clock: () => Date;
  readonly #writeTimeoutMs: number;
  readonly #checkpointInterval: number;
  readonly #sensitiveFields: ReadonlySet<string>;
  readonly #nodeId: string;
  readonly #chainState: ChainStateStore;
  /** Serialises open, close, enable, disable and refresh. */
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
    this.#nodeId = validateNodeId(options.nodeId ?? DEFAULT_AUDIT_NODE_ID, "nodeId");
    this.#chainState = new ChainStateStore(options.barrier, this.#nodeId);
  }

  /** The id of the node whose chains this broker writes. */
  get nodeId(): string {
    return this.#nodeId;
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
      const entries = await loadOrCreateDeviceTable(this.#barrier, () => [
        this.#entry(BUILT_IN_STORE_PATH, "store", {}, "built-in audit store"),
      ]);
      const devices = await this.#startDevices(entries);
      this.#devices = new Map(devices.map((device) => [device.entry.path, device]));
      this.#state = "open";
      this.#logger.info(
        { devices: entries.map((entry) => entry.path), node: this.#nodeId },
        "audit broker opened",
      );
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
   * unreachable address fails here) and adds it to the stored device table.
   * The table is read and written in one transaction, so a device another
   * node enabled at the same time is kept, and one it enabled at the same
   * path fails this call with `already_exists`.
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
      const entry = this.#entry(
        normalised,
        type,
        validateDeviceOptions(type, options),
        description,
      );
      const stored = (await loadDeviceTable(this.#barrier)) ?? [];
      rejectConflicts(entry, [...this.list(), ...stored]);
      const device = this.#createDevice(entry);
      try {
        await device.open();
      } catch (error) {
        throw entry.type === "store" ? error : deviceOpenFailure(entry, error);
      }
      try {
        await addDeviceEntry(this.#barrier, entry);
      } catch (error) {
        await device.close();
        throw error;
      }
      this.#devices.set(normalised, device);
      this.#logger.info({ device: normalised, deviceType: type }, "audit device enabled");
      return entry;
    });
  }

  /**
   * Removes a device from the stored device table and closes it after its
   * closing checkpoint. A store device keeps its records. Fails with
   * `not_found` only when the device is neither running here nor stored, so
   * a device that another node enabled or disabled a moment ago can still
   * be disabled.
   */
  async disable(path: string): Promise<void> {
    await this.#admin.run(async () => {
      this.#requireOpen();
      const normalised = normaliseDevicePath(path);
      const device = this.#devices.get(normalised);
      const wasStored = await removeDeviceEntry(this.#barrier, normalised);
      if (device === undefined && !wasStored) {
        throw new KeywardError("not_found", `no audit device is enabled at "${normalised}/"`);
      }
      if (device !== undefined) {
        this.#devices.delete(normalised);
        await this.#closeDevice(device);
      }
      this.#logger.info({ device: normalised }, "audit device disabled");
    });
  }

  /**
   * Reads the stored device table again and opens and closes devices until
   * the running set matches it, applying the changes another node made.
   * Call it whenever the device table key (`AUDIT_DEVICE_TABLE_KEY`,
   * `sys/audit/devices`) changes. Does nothing while the broker is not open.
   *
   * A device whose entry changed (disabled and enabled again, perhaps with
   * other options) is closed first, since its new entry writes the same
   * chain. It stays in the running set until its new entry replaces it, so
   * a request meanwhile fails with `audit_failure` instead of going
   * unaudited. Then the new devices open and join the running set, and
   * only then do the removed devices leave it and write their closing
   * checkpoints, so requests that already chose them finish their writes.
   */
  async refresh(): Promise<void> {
    await this.#admin.run(async () => {
      if (this.#state !== "open") return;
      const stored = await loadDeviceTable(this.#barrier);
      if (stored === undefined) {
        this.#logger.error(
          "refresh found no stored audit device table, so the running devices stay as they are",
        );
        return;
      }
      const storedByPath = new Map(stored.map((entry) => [entry.path, entry]));
      const running = [...this.#devices.values()];
      const removed = running.filter((device) => !storedByPath.has(device.entry.path));
      const replaced = running.filter((device) => {
        const entry = storedByPath.get(device.entry.path);
        return entry !== undefined && !sameDevice(entry, device.entry);
      });
      for (const device of replaced) await this.#closeDevice(device);

      const added = await this.#startDevices(
        stored.filter((entry) => {
          const device = this.#devices.get(entry.path);
          return device === undefined || replaced.includes(device);
        }),
      );
      const byPath = new Map<string, AuditDevice>();
      for (const device of running) {
        if (!replaced.includes(device)) byPath.set(device.entry.path, device);
      }
      for (const device of added) byPath.set(device.entry.path, device);
      // Kept in the table's order, which is the order the devices were enabled in.
      this.#devices = new Map(
        stored.flatMap((entry) => {
          const device = byPath.get(entry.path);
          return device === undefined ? [] : [[entry.path, device] as const];
        }),
      );
      for (const device of removed) await this.#closeDevice(device);

      if (added.length > 0 || removed.length > 0) {
        this.#logger.info(
          {
            enabled: added.map((device) => device.entry.path),
            disabled: removed.map((device) => device.entry.path),
            replaced: replaced.map((device) => device.entry.path),
          },
          "audit devices refreshed from the stored device table",
        );
      }
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
   * Returns `hmac-sha256:<hex>` of `input` under the audit HMAC key, as
   * records carry sensitive values, for callers that redact their own
   * entries (the KMIP server). Throws `sealed` while the broker is not open.
   */
  hmac(input: string): string {
    return hmacValue(this.#requireOpen().hmacKey, input);
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

  /**
   * Searches the records of a store device: those of every node's chain
   * (and of the legacy chain) merged by time, or of one node's chain with
   * `query.node`.
   */
  async search(query: SearchQuery = {}): Promise<SearchResult> {
    const filter = recordFilter(query);
    const device = this.#storeDevice(query.device);
    const chains = (await listStoreChains(this.#barrier, device)).filter(
      (chain) => filter.node === undefined || chain.node === filter.node,
    );
    return searchLines(
      chains.map((chain) => new ChainReader(this.#barrier, chain).lines(false)),
      filter,
    );
  }

  /**
   * Verifies each chain of a store device on its own: every node's chain,
   * and the legacy chain written before per-node chains. Checks the hash
   * chain and the checkpoint signatures, and that each chain reaches the
   * last record its node is known to have written, so a truncated or
   * rewritten end is reported too. For this node that is the running
   * device's last record, for another node the head it saved at its last
   * checkpoint. A node whose whole chain is gone but whose saved head
   * remains is reported with its records `removed`.
   */
  async verifyStore(devicePath?: string): Promise<StoreVerifyResult> {
    const keys = this.#requireOpen();
    const device = this.#storeDevice(devicePath);
    // Taken before the chains are read, so records written meanwhile come after it.
    const ownHead = this.#devices.get(device)?.head;
    const chains = await chainsToVerify(this.#barrier, this.#chainState, device, {
      node: this.#nodeId,
      head: ownHead,
    });
    return verifyStoreChains(this.#barrier, device, chains, keys.publicKeyPem);
  }

  async #broadcast(type: "request" | "response", entry: AuditRequestEntry): Promise<void> {
    if (this.#state === "closed") return;
    const keys = this.#keys;
    if (this.#state === "closing" || keys === undefined) {
      // The broker closes only for a seal or a shutdown, so the client gets
      // the 503 of a sealed server and retries later, not a 500.
      throw new KeywardError(
        "sealed",
        "Keyward is sealing or stopping, so the request was rejected; retry once it is unsealed",
      );
    }
    const devices = [...this.#devices.values()];
    if (devices.length === 0) return;
    const payload = preparePayload(
      type,
      entry,
      this.#clock(),
      { hmacKey: keys.hmacKey, sensitiveFields: this.#sensitiveFields },
      this.#nodeId,
    );
    let results: PromiseSettledResult<void>[];
    if (devices.length === 1) {
      // The common case of one device, without allSettled's extra promises.
      try {
        await devices[0]!.write(payload);
        return;
      } catch (error) {
        results = [{ status: "rejected", reason: error }];
      }
    } else {
      results = await Promise.allSettled(devices.map((device) => device.write(payload)));
      if (results.some((result) => result.status === "fulfilled")) return;
    }
    // When only the storage was out of reach (a database restart), the
    // client gets the same 503 as for its own storage calls and retries.
    const unavailable = results.every(
      (result) =>
        result.status === "rejected" &&
        isKeywardError(result.reason) &&
        result.reason.code === "storage_unavailable",
    );
    if (unavailable) {
      throw new KeywardError(
        "storage_unavailable",
        "no audit device could record the request because the storage is unavailable; retry later",
        {
          details: {
            devices: devices.map((device) => device.entry.path),
            requestId: entry.request.id,
          },
        },
      );
    }
    throw new KeywardError("audit_failure", "no audit device could record the request", {
      details: { devices: devices.map((device) => device.entry.path), requestId: entry.request.id },
    });
  }

  /**
   * Creates and opens devices in parallel, so one unreachable receiver
   * delays unseal by at most one write timeout. A device that cannot be
   * opened is logged and returned anyway. It stays enabled and is opened
   * again at its next write.
   */
  async #startDevices(entries: DeviceEntry[]): Promise<AuditDevice[]> {
    const devices = entries.map((entry) => this.#createDevice(entry));
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
    return devices;
  }

  /**
   * Closes a device after its closing checkpoint, and deletes this node's
   * chain head so that a device enabled again at the path starts from what
   * its sink holds. The caller takes the device out of the running set.
   */
  async #closeDevice(device: AuditDevice): Promise<void> {
    const path = device.entry.path;
    await device.close();
    try {
      // A store device's legacy head still checks the legacy chain, so it stays.
      await this.#chainState.delete(path, { legacy: device.entry.type !== "store" });
    } catch (error) {
      this.#logger.warn({ err: error, device: path }, "failed to delete the chain head");
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
    const sink = createSink(entry, {
      barrier: this.#barrier,
      logger: this.#logger,
      nodeId: this.#nodeId,
    });
    return new AuditDevice(entry, sink, {
      logger: this.#logger,
      nodeId: this.#nodeId,
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
