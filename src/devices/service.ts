import type { Logger } from "pino";
import type { LoginRateLimiter } from "../auth/rate-limiter.ts";
import { invalidField } from "../errors.ts";
import type { Barrier } from "../seal/types.ts";
import { AppliedVersions } from "./applied.ts";
import type {
  AppliedVersion,
  AppliedVersionReader,
  DeviceArtifactSource,
  DeviceChangeNotifier,
} from "./artifacts.ts";
import { type AuthenticatedDevice, DeviceAuthentication } from "./authentication.ts";
import { BootstrapTokens } from "./bootstrap-tokens.ts";
import { type DeviceContext, deviceRef } from "./context.ts";
import { DeviceEnrolment } from "./enrolment.ts";
import type { PkiResolver } from "./identity-certificates.ts";
import { DeviceRegistry } from "./registry.ts";
import { SharedSecrets } from "./secrets.ts";
import { type ArtifactView, collectArtifacts, sealArtifacts, stateEtag } from "./state.ts";
import { DeviceStore } from "./store.ts";
import type { DeviceRecord } from "./types.ts";
import { artifactStatus, deviceView, type RolloutArtifact, RolloutCollector } from "./views.ts";
import { DeviceChangeWaiters } from "./waiters.ts";

/** Maximum wait of a long poll of the state request, in seconds. */
export const MAX_STATE_WAIT_SECONDS = 60;

export interface DeviceServiceOptions {
  barrier: Barrier;
  logger: Logger;
  clock?: () => Date;
  /** Resolver of PKI services by mount path. The configured one signs, and each certificate's own one verifies. */
  pki: PkiResolver;
  /** Artifact sources besides the built-in shared secrets, such as the WireGuard engine. */
  sources?: readonly DeviceArtifactSource[];
  /** Counter of failed enrolments per source address. When absent, one with AppRole's limits is used. */
  enrolmentFailures?: LoginRateLimiter;
}

/** The body of a 200 response to the state request. */
export interface DeviceStateResponse {
  device: string;
  device_id: string;
  etag: string;
  artifacts: ArtifactView[];
}

/**
 * The device registry: devices and their bootstrap tokens, enrolment and
 * identity certificates, the artifacts each device must install (from the shared
 * secrets and every registered source), the versions agents applied, and
 * the waiters of long polls. It is built at each unseal and dropped at
 * seal, and does not depend on HTTP.
 */
export class DeviceService implements AppliedVersionReader {
  readonly registry: DeviceRegistry;
  readonly enrolment: DeviceEnrolment;
  readonly authentication: DeviceAuthentication;
  readonly secrets: SharedSecrets;
  readonly applied: AppliedVersions;
  /** Notifier that wakes waiting agents. Sources call it after every change to the artifacts of devices. */
  readonly waiters: DeviceChangeWaiters;
  readonly #context: DeviceContext;
  #longPollsEnded = false;
  readonly #sources: DeviceArtifactSource[];

  constructor(options: DeviceServiceOptions) {
    const store = new DeviceStore(options.barrier);
    this.waiters = new DeviceChangeWaiters();
    this.applied = new AppliedVersions(store);
    this.#context = {
      store,
      clock: options.clock ?? (() => new Date()),
      logger: options.logger,
      pki: options.pki,
      waiters: this.waiters,
      tokens: new BootstrapTokens(store),
      applied: this.applied,
      sources: () => this.#sources,
      lastSeenWrites: new Map(),
    };
    this.registry = new DeviceRegistry(this.#context);
    this.enrolment = new DeviceEnrolment(this.#context, this.registry, options.enrolmentFailures);
    this.authentication = new DeviceAuthentication(this.#context);
    this.secrets = new SharedSecrets({
      store,
      clock: this.#context.clock,
      logger: options.logger,
      notifier: this.waiters,
      audience: (groups, devices) => this.registry.members(groups, devices),
    });
    this.#sources = [this.secrets, ...(options.sources ?? [])];
  }

  /** The notifier that sources call, the same object as `waiters`. */
  get notifier(): DeviceChangeNotifier {
    return this.waiters;
  }

  /** Adds an artifact source, whose artifacts appear at the next state request. */
  addSource(source: DeviceArtifactSource): void {
    if (!this.#sources.includes(source)) this.#sources.push(source);
  }

  get sources(): readonly DeviceArtifactSource[] {
    return this.#sources;
  }

  appliedVersion(deviceName: string, artifactId: string): Promise<AppliedVersion | undefined> {
    return this.applied.appliedVersion(deviceName, artifactId);
  }

  /**
   * Returns the state of an authenticated device, or undefined for "not
   * modified". When `since` equals the current etag, waits up to
   * `waitSeconds` for a change, and returns undefined if none came or
   * `signal` aborted. The device is checked again at each wake-up and
   * after its secrets are sealed, so a device revoked meanwhile gets
   * `device_authentication_failed` and never the secrets rotated at its
   * revocation.
   */
  async state(
    device: AuthenticatedDevice,
    since: string | undefined,
    waitSeconds: number,
    signal?: AbortSignal,
  ): Promise<DeviceStateResponse | undefined> {
    const deadline = Date.now() + Math.min(waitSeconds, MAX_STATE_WAIT_SECONDS) * 1000;
    for (;;) {
      const subscription = this.waiters.subscribe(device.ref.name);
      let record: DeviceRecord;
      let etag: string;
      let artifacts: Awaited<ReturnType<typeof collectArtifacts>>;
      try {
        record = await this.authentication.current(device.serial);
        artifacts = await collectArtifacts(this.#sources, deviceRef(record));
        etag = stateEtag(artifacts);
      } catch (error) {
        subscription.cancel();
        throw error;
      }
      if (etag !== since) {
        subscription.cancel();
        const key = record.encryptionKey;
        if (!key) throw new Error(`enrolled device "${record.name}" has no encryption key`);
        const views = await sealArtifacts(artifacts, key);
        await this.authentication.current(device.serial);
        return { device: record.name, device_id: record.id, etag, artifacts: views };
      }
      const remaining = deadline - Date.now();
      if (remaining <= 0 || this.#longPollsEnded) {
        subscription.cancel();
        return undefined;
      }
      if ((await subscription.wait(remaining, signal)) !== "changed") return undefined;
    }
  }

  /**
   * Records the versions an authenticated device applied. Each id must be
   * one of its artifacts, at most once, with a version no higher than the
   * server offers (the current content's, or the announced next one's).
   */
  async recordApplied(
    device: AuthenticatedDevice,
    entries: readonly { id: string; version: number }[],
  ): Promise<void> {
    const record = await this.authentication.current(device.serial);
    const artifacts = await collectArtifacts(this.#sources, deviceRef(record));
    const seen = new Set<string>();
    entries.forEach((entry, index) => {
      const artifact = artifacts.find((candidate) => candidate.id === entry.id);
      if (!artifact) {
        throw invalidField(
          `artifacts[${index}].id`,
          `artifact "${entry.id}" is not one of device "${record.name}"'s artifacts`,
        );
      }
      if (seen.has(entry.id)) {
        throw invalidField(`artifacts[${index}].id`, `artifact "${entry.id}" is listed twice`);
      }
      seen.add(entry.id);
      const offered = Math.max(artifact.version, artifact.next?.version ?? 0);
      if (entry.version > offered) {
        throw invalidField(
          `artifacts[${index}].version`,
          `version ${entry.version} of artifact "${entry.id}" is higher than the version the server offers (${offered})`,
        );
      }
    });
    await this.applied.record(record.name, entries, this.#context.clock().toISOString());
  }

  /** Returns a device with its artifacts and the versions its agent applied. Throws `not_found`. */
  async status(name: string) {
    const device = await this.registry.require(name);
    const artifacts =
      device.state === "revoked" ? [] : await collectArtifacts(this.#sources, deviceRef(device));
    const applied = await this.applied.all(name);
    return {
      device: deviceView(device),
      artifacts: artifacts.map((artifact) =>
        artifactStatus(
          artifact,
          Object.hasOwn(applied, artifact.id) ? applied[artifact.id] : undefined,
        ),
      ),
    };
  }

  /** Returns every artifact of every enrolled device, with each device's applied version. */
  async rollout(): Promise<{ artifacts: RolloutArtifact[] }> {
    const collector = new RolloutCollector();
    for (const name of await this.registry.list()) {
      const device = await this.registry.read(name);
      if (device?.state !== "enrolled") continue;
      const applied = await this.applied.all(name);
      for (const artifact of await collectArtifacts(this.#sources, deviceRef(device))) {
        collector.add(
          name,
          artifact,
          Object.hasOwn(applied, artifact.id) ? applied[artifact.id] : undefined,
        );
      }
    }
    return { artifacts: collector.result() };
  }

  /** Wakes every waiting agent. Called when the registry is dropped at seal. */
  close(): void {
    this.waiters.wakeAll();
  }

  /**
   * Ends every long poll of the device state with "no change" (304), now
   * and from now on, so a stopping server does not wait out the polls. An
   * agent polls again, reaching another node behind a load balancer or
   * this one once it is back.
   */
  endLongPolls(): void {
    this.#longPollsEnded = true;
    this.waiters.wakeAll();
  }
}
