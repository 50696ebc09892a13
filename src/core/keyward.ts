import type { Logger } from "pino";
import { AUDIT_DEVICE_TABLE_KEY, AuditBroker } from "../audit/index.ts";
import { AppRoleBackend } from "../auth/approle/backend.ts";
import { APPROLE_STORAGE_PREFIX } from "../auth/approle/repository.ts";
import { LoginRateLimiter, type LoginRateLimiterOptions } from "../auth/rate-limiter.ts";
import { RootTokenGenerator } from "../auth/root-generation.ts";
import { checkTokenLength } from "../auth/token-issue.ts";
import { TOKEN_STORAGE_PREFIX } from "../auth/token-repository.ts";
import { TokenStore } from "../auth/token-store.ts";
import { Cluster } from "../cluster/cluster.ts";
import { engineCaches } from "../cluster/invalidation.ts";
import { APPLIED_FOLDER as DEVICE_APPLIED_FOLDER } from "../devices/applied.ts";
import type { DeviceArtifactSource, DeviceChangeNotifier } from "../devices/artifacts.ts";
import { DeviceCertificates } from "../devices/certificates.ts";
import { DEVICE_REGISTRY_FOLDER } from "../devices/context.ts";
import { DeviceService } from "../devices/service.ts";
import { DEVICES_PREFIX, DeviceStore } from "../devices/store.ts";
import { createPkiJobs, PkiService } from "../engines/pki/index.ts";
import { DEFAULT_MOUNT_TTL_SECONDS } from "../engines/pki/validity.ts";
import { SshService } from "../engines/ssh/index.ts";
import { TransitService } from "../engines/transit/service.ts";
import { createWifiJobs, WifiDeviceSource, WifiService } from "../engines/wifi/index.ts";
import {
  createWireguardJobs,
  WireguardDeviceSource,
  WireguardService,
} from "../engines/wireguard/index.ts";
import { KeywardError } from "../errors.ts";
import type { HsmToken } from "../hsm/token.ts";
import { type JobRunHook, Scheduler } from "../jobs/scheduler.ts";
import { registerTransitJobs } from "../jobs/transit-jobs.ts";
import { forgetParsedKeys } from "../keys/index.ts";
import { POLICY_PREFIX, PolicyStore } from "../policy/index.ts";
import { SEAL_RESERVED_PREFIX } from "../seal/barrier.ts";
import { createSealManager, type SealManagerOptions } from "../seal/seal-manager.ts";
import type { InitRequest, InitResult, SealManager } from "../seal/types.ts";
import type { Storage } from "../storage/storage.ts";
import { Mutex } from "../util/mutex.ts";
import {
  type EngineType,
  MOUNT_TABLE_KEY,
  type MountConfig,
  type MountEntry,
  MountTable,
  normaliseMountPath,
} from "./mounts.ts";

/** How often expired tokens and secret IDs are removed from storage. */
const TOKEN_TIDY_INTERVAL_MS = 60 * 60 * 1000;

/** Entries an unmount deletes per transaction: one range read and one commit each. */
const DELETE_PAGE_SIZE = 500;

/**
 * A listener of transit keys that may have new versions (see
 * `Keyward.onTransitKeyChanges`); `names` undefined means any key of the
 * mount.
 */
export type TransitKeyListener = (mount: string, names: readonly string[] | undefined) => void;

export interface KeywardOptions {
  storage: Storage;
  logger: Logger;
  clock?: () => Date;
  /** Scheduler tick for rotation and deletion jobs, in milliseconds. */
  jobIntervalMs?: number;
  /** True for `keyward server --dev`, where conveniences such as EST over plain HTTP apply. */
  devMode?: boolean;
  /** Default time limit of one audit write, for devices without `write_timeout` (5 s unless set). */
  auditWriteTimeoutMs?: number;
  /** Sources of device artifacts besides the built-in shared secrets; more may be added with `addDeviceSource`. */
  deviceSources?: readonly DeviceArtifactSource[];
  /** Limits of failed device enrolments per source address; AppRole's defaults when absent. */
  enrolmentRateLimit?: LoginRateLimiterOptions;
  /**
   * This node's id among nodes sharing the storage. With PostgreSQL storage
   * opened with the same id, the node joins the others: it follows their
   * changes, competes for leadership and reports to `sys/ha-status`.
   */
  nodeId?: string;
  /** The URL clients reach this node's API at, read at each heartbeat. */
  apiAddress?: () => string;
  /** The running version, reported to the other nodes. */
  version?: string;
  /** Creates the seal manager, such as a PKCS#11 seal's; the Shamir seal when absent. */
  createSeal?: (storage: Storage, options: SealManagerOptions) => SealManager;
  /** The HSM token engines keep keys in (transit keys created with `hsm: true`); the caller closes it. */
  hsm?: HsmToken;
}

/** The node id of a server that shares its storage with no other. */
const SINGLE_NODE_ID = "local";

/** A mounted engine: its mount table entry and the service of its type. */
interface MountedEngine {
  entry: MountEntry;
  transit?: TransitService;
  pki?: PkiService;
  ssh?: SshService;
  wireguard?: WireguardService;
  wifi?: WifiService;
}

export interface InitResponse extends InitResult {
  rootToken: string;
}

/**
 * The running installation: storage, seal, token store, mounted engines and
 * scheduled jobs. The HTTP layer and the CLI's server command hold one of
 * these; nothing here depends on HTTP.
 *
 * Engines and jobs exist only while the barrier is open: they are built at
 * each unseal from the mount table and dropped at seal.
 */
export class Keyward {
  readonly storage: Storage;
  readonly seal: SealManager;
  readonly tokens: TokenStore;
  readonly approle: AppRoleBackend;
  readonly rootGenerator: RootTokenGenerator;
  readonly policies: PolicyStore;
  readonly audit: AuditBroker;
  /** This node among the nodes sharing the storage: leadership, their changes, the node table. */
  readonly cluster: Cluster;
  readonly logger: Logger;
  readonly clock: () => Date;
  /** True when the server runs with `--dev`. */
  readonly devMode: boolean;
  readonly #mountTable: MountTable;
  readonly #jobIntervalMs: number;
  readonly #deviceSources: DeviceArtifactSource[];
  /** Certificates for services on devices, whose keys the agents make (`devices/certificates/`). */
  readonly deviceCertificates: DeviceCertificates;
  /** Failed enrolments per source address; kept across seal and unseal, as AppRole's limits are. */
  readonly #enrolmentFailures: LoginRateLimiter;
  readonly #hsm: HsmToken | undefined;
  /**
   * Wakes agents waiting on the device registry of the moment. Sources keep
   * this one object across seal and unseal, while the registry behind it is
   * rebuilt at each unseal. While sealed, it does nothing.
   */
  readonly deviceChanges: DeviceChangeNotifier = {
    changed: (deviceNames) => this.#devices?.waiters.changed(deviceNames),
  };
  #devices: DeviceService | undefined;
  #mounts = new Map<string, MountedEngine>();
  /**
   * Runs mounts and unmounts one at a time, so that a mount never starts
   * while an unmount of the same path is still deleting its entries.
   */
  readonly #mountChanges = new Mutex();
  #scheduler: Scheduler | undefined;
  /** Listeners called after every scheduled job run on this node (`onJobRun`). */
  readonly #jobRunListeners: JobRunHook[] = [];
  /** Listeners of the keys other nodes changed (`onRemoteChanges`). */
  readonly #remoteChangeListeners: ((keys: readonly string[] | undefined) => void)[] = [];
  /** Listeners of rotated or changed transit keys (`onTransitKeyChanges`). */
  readonly #transitKeyListeners: TransitKeyListener[] = [];
  #sealed = true;
  /** Applies other nodes' changes one batch at a time, in arrival order. */
  #remoteChanges: Promise<void> = Promise.resolve();

  private constructor(options: KeywardOptions) {
    this.storage = options.storage;
    this.logger = options.logger;
    this.clock = options.clock ?? (() => new Date());
    this.devMode = options.devMode === true;
    this.#jobIntervalMs = options.jobIntervalMs ?? 60_000;
    this.#deviceSources = [
      ...(options.deviceSources ?? []),
      new WireguardDeviceSource(() => this.#wireguardServices()),
      new WifiDeviceSource(() => this.#wifiServices()),
    ];
    this.#enrolmentFailures = new LoginRateLimiter(options.enrolmentRateLimit);
    this.#hsm = options.hsm;
    this.seal = (options.createSeal ?? createSealManager)(options.storage, {
      clock: this.clock,
      logger: options.logger.child({ component: "seal" }),
    });
    this.deviceCertificates = new DeviceCertificates({
      store: new DeviceStore(this.seal.barrier),
      clock: this.clock,
      logger: options.logger.child({ component: "device-certificates" }),
      notifier: this.deviceChanges,
      audience: (groups, devices) => this.devices.registry.members(groups, devices),
      pki: (mount) => this.pki(mount),
    });
    this.#deviceSources.push(this.deviceCertificates);
    this.tokens = new TokenStore(this.seal.barrier, {
      clock: this.clock,
      logger: options.logger.child({ component: "tokens" }),
    });
    this.approle = new AppRoleBackend(this.seal.barrier, this.tokens, {
      clock: this.clock,
      logger: options.logger.child({ component: "approle" }),
    });
    this.rootGenerator = new RootTokenGenerator(this.seal, this.tokens);
    this.policies = new PolicyStore(this.seal.barrier);
    const nodeId = options.nodeId ?? SINGLE_NODE_ID;
    this.cluster = new Cluster({
      nodeId,
      ...(options.storage.openCoordination === undefined
        ? {}
        : { coordination: options.storage.openCoordination() }),
      apiAddress: options.apiAddress ?? (() => ""),
      version: options.version ?? "",
      sealed: () => this.#sealed,
      logger: options.logger.child({ component: "cluster" }),
    });
    this.cluster.onLeadershipChange((leader) => this.#leadershipChanged(leader));
    this.audit = new AuditBroker({
      barrier: this.seal.barrier,
      nodeId,
      logger: options.logger.child({ component: "audit" }),
      clock: this.clock,
      ...(options.auditWriteTimeoutMs === undefined
        ? {}
        : { writeTimeoutMs: options.auditWriteTimeoutMs }),
    });
    this.#mountTable = new MountTable(this.seal.barrier);
    this.seal.onChange(async (sealed) => {
      if (sealed) {
        this.#sealed = true;
        // The audit devices write their final checkpoints while the barrier is still open.
        await this.audit.close();
        this.tokens.clearCache();
        this.approle.clearCache();
        this.policies.clearCache();
        await this.#stopEngines();
      } else {
        await this.audit.open();
        await this.#startEngines();
        this.#sealed = false;
      }
    });
  }

  static async open(options: KeywardOptions): Promise<Keyward> {
    const keyward = new Keyward(options);
    await keyward.cluster.start((keys) => keyward.#queueRemoteChanges(keys));
    return keyward;
  }

  /**
   * Initialises the seal and creates the root token. The barrier is opened
   * with the new shares just long enough to store the token's hash, then
   * closed again, so the server is sealed afterwards as Vault's is.
   */
  async init(request: InitRequest, rootToken?: string): Promise<InitResponse> {
    // Checked before anything is stored.
    if (rootToken !== undefined) checkTokenLength(rootToken, "root_token");
    let token = "";
    // The seal opens the barrier with the new root key itself, so an unseal
    // request sent meanwhile cannot join in, and it deletes what it stored
    // when creating the root token fails.
    const result = await this.seal.init(request, async () => {
      token = await this.tokens.createRootToken(rootToken);
    });
    this.logger.info({ shares: request.shares, threshold: request.threshold }, "initialised");
    return { ...result, rootToken: token };
  }

  /** True while the barrier is closed (also before initialisation). */
  get sealed(): boolean {
    return this.#sealed;
  }

  /** Returns the transit service mounted at `path`, or undefined. */
  transit(path: string): TransitService | undefined {
    return this.#mounts.get(path)?.transit;
  }

  /** Returns the PKI service mounted at `path`, or undefined. */
  pki(path: string): PkiService | undefined {
    return this.#mounts.get(path)?.pki;
  }

  /** Returns the SSH service mounted at `path`, or undefined. */
  ssh(path: string): SshService | undefined {
    return this.#mounts.get(path)?.ssh;
  }

  /** Returns the WireGuard service mounted at `path`, or undefined. */
  wireguard(path: string): WireguardService | undefined {
    return this.#mounts.get(path)?.wireguard;
  }

  /** Returns the Wi-Fi service mounted at `path`, or undefined. */
  wifi(path: string): WifiService | undefined {
    return this.#mounts.get(path)?.wifi;
  }

  /** The device registry. Throws `sealed` while sealed, because it exists only while unsealed. */
  /** Ends the device state long polls, for a server that is stopping (see `DeviceService.endLongPolls`). */
  endLongPolls(): void {
    this.#devices?.endLongPolls();
  }

  get devices(): DeviceService {
    if (!this.#devices) throw new KeywardError("sealed", "Keyward is sealed");
    return this.#devices;
  }

  /**
   * Adds a source of device artifacts, such as the WireGuard engine. It
   * applies to the running registry at once and to every registry built
   * at a later unseal.
   */
  addDeviceSource(source: DeviceArtifactSource): void {
    if (this.#deviceSources.includes(source)) return;
    this.#deviceSources.push(source);
    this.#devices?.addSource(source);
  }

  /** Returns the engine type mounted at `path`, or undefined (also while sealed). Synchronous, for the router. */
  engineType(path: string): EngineType | undefined {
    return this.#mounts.get(path)?.entry.type;
  }

  /**
   * Changes a mount's lease TTLs (`sys/mounts/<path>/tune`). The PKI
   * engine reads them at each request, so the change applies at once.
   */
  async tuneMount(path: string, changes: MountConfig): Promise<MountEntry> {
    const normalised = normaliseMountPath(path);
    const mount = this.#mounts.get(normalised);
    if (!mount)
      throw new KeywardError("not_found", `no secrets engine is mounted at "${normalised}/"`);
    let entry: MountEntry = mount.entry;
    await this.#mountTable.update((stored) =>
      (stored ?? this.mounts()).map((existing) => {
        if (existing.path !== normalised) return existing;
        entry = { ...existing, config: { ...existing.config, ...changes } };
        return entry;
      }),
    );
    mount.entry = entry;
    return entry;
  }

  mounts(): MountEntry[] {
    return [...this.#mounts.values()].map((mount) => mount.entry);
  }

  async mount(
    path: string,
    type: EngineType,
    description = "",
    config?: MountConfig,
  ): Promise<MountEntry> {
    const normalised = normaliseMountPath(path);
    const taken = () =>
      new KeywardError(
        "already_exists",
        `a secrets engine is already mounted at "${normalised}/"`,
        {
          field: "path",
        },
      );
    return this.#mountChanges.run(async () => {
      if (this.#mounts.has(normalised)) throw taken();
      const leftovers = await this.#deleteUnmountedTree(normalised);
      if (leftovers > 0) {
        this.logger.warn(
          { mount: normalised, entries: leftovers },
          "deleted the entries an interrupted unmount left before mounting again",
        );
      }
      const entry = MountTable.entry(normalised, type, description, this.clock(), config);
      // The stored table is checked too: another node may have mounted the path a moment ago.
      await this.#mountTable.update((stored) => {
        const entries = stored ?? this.mounts();
        if (entries.some((existing) => existing.path === normalised)) throw taken();
        return [...entries, entry];
      });
      this.#mounts.set(normalised, this.#createEngine(entry));
      this.logger.info({ mount: normalised, type }, "mounted secrets engine");
      return entry;
    });
  }

  /**
   * Removes a mount and every key stored under it. Unmounting a path that
   * is no longer mounted finishes an unmount that a crash or a seal
   * interrupted, and gets `not_found` when nothing is left.
   */
  async unmount(path: string): Promise<void> {
    const normalised = normaliseMountPath(path);
    await this.#mountChanges.run(async () => {
      const mount = this.#mounts.get(normalised);
      if (!mount) {
        const leftovers = await this.#deleteUnmountedTree(normalised);
        if (leftovers > 0) {
          this.logger.warn(
            { mount: normalised, entries: leftovers },
            "deleted the entries an interrupted unmount left",
          );
          return;
        }
        throw new KeywardError("not_found", `no secrets engine is mounted at "${normalised}/"`);
      }
      if (await this.#holdsKmipKeys(normalised, mount.transit)) {
        throw new KeywardError(
          "deletion_not_allowed",
          `the mount "${normalised}/" holds keys of KMIP objects that are not destroyed; destroy those objects through KMIP before unmounting`,
        );
      }
      await this.#mountTable.update((stored) =>
        (stored ?? this.mounts()).filter((entry) => entry.path !== normalised),
      );
      this.#mounts.delete(normalised);
      closeRemovedEngine(mount);
      await this.#deleteUnmountedTree(normalised);
      this.logger.info({ mount: normalised }, "unmounted secrets engine");
    });
  }

  async close(): Promise<void> {
    if (this.audit.isOpen) await this.audit.close();
    await this.#stopEngines();
    await this.cluster.close();
    await this.#remoteChanges;
    await this.storage.close();
  }

  /**
   * Registers a listener of the storage keys other nodes changed, for caches
   * kept outside the engines (the KMIP object store). `undefined` means
   * changes may have been missed, so everything cached must go.
   */
  onRemoteChanges(listener: (keys: readonly string[] | undefined) => void): void {
    this.#remoteChangeListeners.push(listener);
  }

  /**
   * Registers a listener of transit keys that may have new versions: the
   * keys this node rotates (through the API or automatic rotation), and
   * the keys of transit mounts that another node changed, once this node
   * has dropped its cached copies. `names` undefined means that another
   * node's changes may have been missed, so any key of the mount may have
   * changed. The KMIP server uses it to show new versions of its keys. A
   * listener must not throw.
   */
  onTransitKeyChanges(listener: TransitKeyListener): void {
    this.#transitKeyListeners.push(listener);
  }

  #transitKeysChanged(mount: string, names: readonly string[] | undefined): void {
    for (const listener of this.#transitKeyListeners) {
      try {
        listener(mount, names);
      } catch (error) {
        this.logger.error({ err: error, mount }, "transit key change listener failed");
      }
    }
  }

  /**
   * Registers a listener called after each run of a scheduled job on this
   * node, with the job's name, outcome and duration in milliseconds. Jobs
   * run only while this node leads.
   */
  onJobRun(listener: JobRunHook): void {
    this.#jobRunListeners.push(listener);
  }

  /** Starts or stops the scheduled jobs as this node gains or loses leadership. */
  #leadershipChanged(leader: boolean): void {
    const scheduler = this.#scheduler;
    if (scheduler === undefined) return;
    if (leader) scheduler.start();
    else
      scheduler.stop().catch((error: unknown) => {
        this.logger.error({ err: error }, "failed to stop the job scheduler");
      });
  }

  #queueRemoteChanges(keys: readonly string[] | undefined): void {
    this.#remoteChanges = this.#remoteChanges
      .then(() => this.#applyRemoteChanges(keys))
      .catch((error: unknown) => {
        this.logger.error({ err: error }, "failed to apply changes made on another node");
      });
  }

  /**
   * Drops or reloads this node's in-memory copies of the storage keys that
   * another node changed. `undefined` means changes may have been missed,
   * so everything is reloaded.
   */
  async #applyRemoteChanges(keys: readonly string[] | undefined): Promise<void> {
    for (const listener of this.#remoteChangeListeners) listener(keys);
    const touched = (prefix: string) =>
      keys === undefined || keys.some((key) => key.startsWith(prefix));
    if (touched(SEAL_RESERVED_PREFIX)) await this.seal.refresh();
    if (this.#sealed) return;
    if (touched(TOKEN_STORAGE_PREFIX)) this.tokens.clearCache();
    if (touched(APPROLE_STORAGE_PREFIX)) this.approle.clearCache();
    if (touched(POLICY_PREFIX)) this.policies.clearCache();
    if (touched(AUDIT_DEVICE_TABLE_KEY)) await this.audit.refresh();
    if (touched(MOUNT_TABLE_KEY)) await this.#reloadMounts();

    const stale = new Set<string>();
    const rebuild = new Set<string>();
    for (const [path, mount] of this.#mounts) {
      const prefix = `${path}/`;
      const cached =
        keys?.filter(
          (key) =>
            key.startsWith(prefix) && engineCaches(mount.entry.type, key.slice(prefix.length)),
        ) ?? [];
      // Transit keys are dropped from the running engine's cache in place.
      // Requests still running on a replaced engine would write through its
      // cache, and this node gets no notice of its own writes, so a new
      // engine's cache would keep an older copy.
      const keysPrefix = `${prefix}keys/`;
      if (
        keys !== undefined &&
        mount.transit !== undefined &&
        cached.every((key) => key.startsWith(keysPrefix))
      ) {
        mount.transit.keyStore.forgetCached(cached.map((key) => key.slice(keysPrefix.length)));
        if (cached.length > 0) stale.add(path);
        continue;
      }
      if (keys === undefined || cached.length > 0) {
        stale.add(path);
        rebuild.add(path);
      }
    }
    for (const path of rebuild) this.#rebuildEngine(path);
    this.#wakeDevices(keys, stale);
    for (const path of stale) {
      if (this.#mounts.get(path)?.transit === undefined) continue;
      const prefix = `${path}/keys/`;
      const names = keys
        ?.filter((key) => key.startsWith(prefix))
        .map((key) => key.slice(prefix.length));
      if (names === undefined || names.length > 0) this.#transitKeysChanged(path, names);
    }
  }

  /** Makes the running engines match the stored mount table: new mounts start, removed ones stop, tuned ones take their new settings. */
  async #reloadMounts(): Promise<void> {
    const entries = (await this.#mountTable.load()) ?? [];
    const stored = new Map(entries.map((entry) => [entry.path, entry]));
    for (const [path, mount] of this.#mounts) {
      if (stored.has(path)) continue;
      this.#mounts.delete(path);
      closeRemovedEngine(mount);
      this.logger.info({ mount: path }, "secrets engine unmounted on another node");
    }
    for (const entry of entries) {
      const mount = this.#mounts.get(entry.path);
      if (mount === undefined) {
        this.#mounts.set(entry.path, this.#createEngine(entry));
        this.logger.info(
          { mount: entry.path, type: entry.type },
          "secrets engine mounted on another node",
        );
      } else if (mount.entry.type !== entry.type) {
        closeRemovedEngine(mount);
        this.#mounts.set(entry.path, this.#createEngine(entry));
      } else {
        mount.entry = entry;
      }
    }
  }

  /** Replaces a mount's engine with a new one, dropping everything it cached. */
  #rebuildEngine(path: string): void {
    const mount = this.#mounts.get(path);
    if (mount === undefined) return;
    mount.wireguard?.close();
    this.#mounts.set(path, this.#createEngine(mount.entry));
  }

  /**
   * Wakes the agents waiting on this node whose state another node may have
   * changed: the device named by a changed registry record, or every agent
   * for other registry changes and for changes in WireGuard and Wi-Fi
   * mounts. Recorded applied versions change no device's state.
   */
  #wakeDevices(keys: readonly string[] | undefined, staleMounts: ReadonlySet<string>): void {
    const devices = this.#devices;
    if (devices === undefined) return;
    const sharedMounts = [...staleMounts].some((path) => {
      const type = this.#mounts.get(path)?.entry.type;
      return type === "wireguard" || type === "wifi";
    });
    if (keys === undefined || sharedMounts) {
      devices.waiters.wakeAll();
      return;
    }
    const named: string[] = [];
    for (const key of keys) {
      if (!key.startsWith(DEVICES_PREFIX)) continue;
      const rest = key.slice(DEVICES_PREFIX.length);
      if (rest.startsWith(`${DEVICE_APPLIED_FOLDER}/`)) continue;
      if (rest.startsWith(`${DEVICE_REGISTRY_FOLDER}/`)) {
        named.push(rest.slice(DEVICE_REGISTRY_FOLDER.length + 1));
        continue;
      }
      devices.waiters.wakeAll();
      return;
    }
    if (named.length > 0) devices.waiters.changed(named);
  }

  #createEngine(entry: MountEntry): MountedEngine {
    if (entry.type === "wireguard") {
      const logger = this.logger.child({ mount: entry.path });
      const options = {
        barrier: this.seal.barrier,
        mount: entry.path,
        clock: this.clock,
        logger,
        notifier: this.deviceChanges,
      };
      return { entry, wireguard: new WireguardService(options) };
    }
    if (entry.type === "wifi") {
      const wifi = new WifiService({
        barrier: this.seal.barrier,
        mount: entry.path,
        clock: this.clock,
        logger: this.logger.child({ mount: entry.path }),
        notifier: this.deviceChanges,
        groupMembers: (groups, devices) => this.devices.registry.members(groups, devices),
      });
      return { entry, wifi };
    }
    if (entry.type === "ssh") {
      const ssh = new SshService({
        barrier: this.seal.barrier,
        mount: entry.path,
        clock: this.clock,
        logger: this.logger.child({ mount: entry.path }),
      });
      return { entry, ssh };
    }
    if (entry.type === "pki") {
      const mounted: MountedEngine = { entry };
      mounted.pki = new PkiService({
        barrier: this.seal.barrier,
        mount: entry.path,
        clock: this.clock,
        logger: this.logger.child({ mount: entry.path }),
        // Read at each request, so a tune applies at once.
        mountTtls: () => ({
          defaultSeconds: mounted.entry.config?.defaultLeaseTtlSeconds || DEFAULT_MOUNT_TTL_SECONDS,
          maxSeconds: mounted.entry.config?.maxLeaseTtlSeconds || DEFAULT_MOUNT_TTL_SECONDS,
        }),
        // An issuer whose key is kept in a transit key signs through that mount.
        transit: (mount) => this.transit(mount),
      });
      return mounted;
    }
    return { entry, transit: this.#createTransit(entry.path) };
  }

  #wireguardServices(): WireguardService[] {
    return [...this.#mounts.values()].flatMap((mount) => mount.wireguard ?? []);
  }

  #wifiServices(): WifiService[] {
    return [...this.#mounts.values()].flatMap((mount) => mount.wifi ?? []);
  }

  #createTransit(mount: string): TransitService {
    const transit = new TransitService({
      barrier: this.seal.barrier,
      mount,
      clock: this.clock,
      // The transit engine names its mount in every line it logs.
      logger: this.logger,
      ...(this.#hsm === undefined ? {} : { hsm: this.#hsm }),
    });
    transit.onRotation((names) => this.#transitKeysChanged(mount, names));
    return transit;
  }

  async #startEngines(): Promise<void> {
    let entries = await this.#mountTable.load();
    if (entries === undefined) {
      // In a transaction, so nodes unsealing a new installation together make one default table.
      entries = await this.#mountTable.update(
        (stored) =>
          stored ?? [
            MountTable.entry("transit", "transit", "default transit engine", this.clock()),
          ],
      );
    }
    this.#mounts.clear();
    for (const entry of entries) {
      this.#mounts.set(entry.path, this.#createEngine(entry));
    }
    this.#devices = new DeviceService({
      barrier: this.seal.barrier,
      logger: this.logger.child({ component: "devices" }),
      clock: this.clock,
      pki: (mount) => this.pki(mount),
      sources: this.#deviceSources,
      enrolmentFailures: this.#enrolmentFailures,
    });

    const scheduler = new Scheduler({
      logger: this.logger.child({ component: "scheduler" }),
      // Confirmed with the database before each run, so a node that lost the
      // leader lock while paused runs no job when it resumes.
      beforeRun: () => this.cluster.confirmLeadership(),
      onRun: (job, outcome, durationMs) => {
        for (const listener of this.#jobRunListeners) listener(job, outcome, durationMs);
      },
    });
    registerTransitJobs(scheduler, {
      services: () => [...this.#mounts.values()].flatMap((mount) => mount.transit ?? []),
      intervalMs: this.#jobIntervalMs,
    });
    for (const job of createPkiJobs({
      services: () => [...this.#mounts.values()].flatMap((mount) => mount.pki ?? []),
      intervalMs: this.#jobIntervalMs,
      logger: this.logger.child({ component: "pki-jobs" }),
    })) {
      scheduler.register(job);
    }
    for (const job of createWireguardJobs({
      services: () => this.#wireguardServices(),
      intervalMs: this.#jobIntervalMs,
      logger: this.logger.child({ component: "wireguard-jobs" }),
    })) {
      scheduler.register(job);
    }
    for (const job of createWifiJobs({
      services: () => this.#wifiServices(),
      intervalMs: this.#jobIntervalMs,
      logger: this.logger.child({ component: "wifi-jobs" }),
    })) {
      scheduler.register(job);
    }
    scheduler.register({
      name: "token-tidy",
      intervalMs: TOKEN_TIDY_INTERVAL_MS,
      run: async () => {
        // Expired tokens are already rejected on use; this removes their records.
        await this.tokens.revokeExpired();
        await this.approle.tidy();
      },
    });
    this.#scheduler = scheduler;
    // The jobs run on the leader only: at once on a single node, and on the
    // node that takes the leader lock when several share the storage.
    this.cluster.campaign();
    if (this.cluster.isLeader) scheduler.start();
    this.logger.info({ mounts: entries.map((entry) => entry.path) }, "unsealed");
  }

  async #stopEngines(): Promise<void> {
    const scheduler = this.#scheduler;
    this.#scheduler = undefined;
    await this.cluster.resign();
    if (scheduler) await scheduler.stop();
    if (this.#mounts.size > 0) this.logger.info("sealed");
    for (const mount of this.#mounts.values()) closeRemovedEngine(mount);
    this.#mounts.clear();
    forgetParsedKeys();
    // Waiting agents wake, find the barrier sealed and get 503.
    this.#devices?.close();
    this.#devices = undefined;
  }

  /**
   * True when a transit mount holds a key that a KMIP object refers to (it
   * has a reference record at `<mount>/references/<name>`) and that is not
   * destroyed, so that unmounting would destroy the object's key material.
   */
  async #holdsKmipKeys(path: string, transit: TransitService | undefined): Promise<boolean> {
    if (transit === undefined) return false;
    const prefix = `${path}/references/`;
    const pageSize = 500;
    let after: string | undefined;
    for (;;) {
      const names = await this.seal.barrier.scan(prefix, {
        ...(after === undefined ? {} : { after }),
        limit: pageSize,
      });
      for (const name of names) {
        const key = await transit.keyStore.find(name);
        if (key !== undefined && key.state !== "destroyed") return true;
      }
      if (names.length < pageSize) return false;
      after = names.at(-1);
    }
  }

  /**
   * Deletes every entry under `<path>/`, a page of `DELETE_PAGE_SIZE` per
   * transaction, and returns how many it deleted. It deletes nothing while
   * the stored mount table lists the path: an unmount removes the path
   * from the table first, so entries found here belong to no mount.
   * Each page's transaction reads the table again, so it stops when
   * another node has mounted the same path meanwhile. The new mount
   * writes its entries after its table entry, and a transaction that
   * deletes one of them conflicts with the one that wrote it.
   */
  async #deleteUnmountedTree(path: string): Promise<number> {
    const barrier = this.seal.barrier;
    const prefix = `${path}/`;
    let deleted = 0;
    for (;;) {
      const names = await barrier.scan(prefix, { limit: DELETE_PAGE_SIZE });
      if (names.length === 0) return deleted;
      const mounted = await barrier.transaction(async (tx) => {
        const stored = await MountTable.loadIn(tx);
        if (stored?.some((entry) => entry.path === path)) return true;
        for (const name of names) await tx.delete(prefix + name);
        return false;
      });
      if (mounted) return deleted;
      deleted += names.length;
    }
  }
}

/**
 * Stops the background work of an engine whose mount was removed or
 * sealed, so none of it writes under the mount's path afterwards, where a
 * new mount at the same path would find it.
 */
function closeRemovedEngine(mount: MountedEngine): void {
  mount.wireguard?.close();
  mount.transit?.close();
}
