import type { Logger } from "pino";
import { AuditBroker } from "../audit/index.ts";
import { AppRoleBackend } from "../auth/approle/backend.ts";
import { LoginRateLimiter, type LoginRateLimiterOptions } from "../auth/rate-limiter.ts";
import { RootTokenGenerator } from "../auth/root-generation.ts";
import { TokenStore } from "../auth/token-store.ts";
import type { DeviceArtifactSource, DeviceChangeNotifier } from "../devices/artifacts.ts";
import { DeviceCertificates } from "../devices/certificates.ts";
import { DeviceService } from "../devices/service.ts";
import { DeviceStore } from "../devices/store.ts";
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
import { Scheduler } from "../jobs/scheduler.ts";
import { registerTransitJobs } from "../jobs/transit-jobs.ts";
import { PolicyStore } from "../policy/index.ts";
import { createSealManager } from "../seal/seal-manager.ts";
import type { InitRequest, InitResult, SealManager } from "../seal/types.ts";
import type { Storage } from "../storage/storage.ts";
import {
  type EngineType,
  type MountConfig,
  type MountEntry,
  MountTable,
  normaliseMountPath,
} from "./mounts.ts";

/** How often expired tokens and secret IDs are removed from storage. */
const TOKEN_TIDY_INTERVAL_MS = 60 * 60 * 1000;

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
}

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
  #scheduler: Scheduler | undefined;
  #sealed = true;

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
    this.seal = createSealManager(options.storage, {
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
    this.audit = new AuditBroker({
      barrier: this.seal.barrier,
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
    return new Keyward(options);
  }

  /**
   * Initialises the seal and creates the root token. The barrier is opened
   * with the new shares just long enough to store the token's hash, then
   * closed again, so the server is sealed afterwards as Vault's is.
   */
  async init(request: InitRequest, rootToken?: string): Promise<InitResponse> {
    const result = await this.seal.init(request);
    for (const share of result.keysHex.slice(0, request.threshold)) {
      await this.seal.submitUnsealShare(share);
    }
    const token = await this.tokens.createRootToken(rootToken);
    await this.seal.seal();
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
    const entry: MountEntry = { ...mount.entry, config: { ...mount.entry.config, ...changes } };
    await this.#mountTable.save(
      this.mounts().map((existing) => (existing.path === normalised ? entry : existing)),
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
    if (this.#mounts.has(normalised)) {
      throw new KeywardError(
        "already_exists",
        `a secrets engine is already mounted at "${normalised}/"`,
        {
          field: "path",
        },
      );
    }
    const entry = MountTable.entry(normalised, type, description, this.clock(), config);
    await this.#mountTable.save([...this.mounts(), entry]);
    this.#mounts.set(normalised, this.#createEngine(entry));
    this.logger.info({ mount: normalised, type }, "mounted secrets engine");
    return entry;
  }

  /** Removes a mount and every key stored under it. */
  async unmount(path: string): Promise<void> {
    const normalised = normaliseMountPath(path);
    const mount = this.#mounts.get(normalised);
    if (!mount)
      throw new KeywardError("not_found", `no secrets engine is mounted at "${normalised}/"`);
    await this.#mountTable.save(this.mounts().filter((entry) => entry.path !== normalised));
    this.#mounts.delete(normalised);
    mount.wireguard?.close();
    await this.#deleteTree(`${normalised}/`);
    this.logger.info({ mount: normalised }, "unmounted secrets engine");
  }

  async close(): Promise<void> {
    if (this.audit.isOpen) await this.audit.close();
    await this.#stopEngines();
    await this.storage.close();
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
    return new TransitService({
      barrier: this.seal.barrier,
      mount,
      clock: this.clock,
      logger: this.logger.child({ mount }),
    });
  }

  async #startEngines(): Promise<void> {
    let entries = await this.#mountTable.load();
    if (entries === undefined) {
      entries = [MountTable.entry("transit", "transit", "default transit engine", this.clock())];
      await this.#mountTable.save(entries);
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

    const scheduler = new Scheduler({ logger: this.logger.child({ component: "scheduler" }) });
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
    scheduler.start();
    this.#scheduler = scheduler;
    this.logger.info({ mounts: entries.map((entry) => entry.path) }, "unsealed");
  }

  async #stopEngines(): Promise<void> {
    const scheduler = this.#scheduler;
    this.#scheduler = undefined;
    if (scheduler) await scheduler.stop();
    if (this.#mounts.size > 0) this.logger.info("sealed");
    for (const mount of this.#mounts.values()) mount.wireguard?.close();
    this.#mounts.clear();
    // Waiting agents wake, find the barrier sealed and get 503.
    this.#devices?.close();
    this.#devices = undefined;
  }

  async #deleteTree(prefix: string): Promise<void> {
    const barrier = this.seal.barrier;
    for (const child of await barrier.list(prefix)) {
      if (child.endsWith("/")) await this.#deleteTree(prefix + child);
      else await barrier.delete(prefix + child);
    }
  }
}
