import { readFile, stat } from "node:fs/promises";
import { setTimeout as delay } from "node:timers/promises";
import type { Logger } from "pino";
import { colonSerial, normaliseSerialHex } from "../engines/pki/key-pairs.ts";
import { BACKOFF_MIN_MS, backoffDelay } from "./backoff.ts";
import { loadCertificateKeyring, requestCertificate } from "./certificate-artifacts.ts";
import { DeviceApiError, DeviceClient, REQUEST_TIMEOUT_MS } from "./client.ts";
import type { AgentConfig, WireguardArtifactConfig } from "./config.ts";
import {
  enrol,
  enrollmentFromCertificate,
  readBootstrapToken,
  renew,
  tokenDigest,
} from "./enrolment.ts";
import { certificateInfo, type Identity, loadIdentity } from "./identity.ts";
import { type InstallContext, type InstallOutcome, installArtifact } from "./install.ts";
import { type DeviceState, ProtocolError, parseDeviceState } from "./protocol.ts";
import { pendingReports, sendReports } from "./reporting.ts";
import { type AgentState, forgetWithdrawnArtifacts, loadState, saveState } from "./state.ts";
import { type Keyring, loadKeyring } from "./wireguard-keys.ts";
import { registerWireguardKey } from "./wireguard-registration.ts";

/** Options of an agent. Tests can replace `random` and `now`. */
export interface AgentOptions {
  config: AgentConfig;
  log: Logger;
  /** Returns a number in [0, 1) for the backoff jitter. */
  random?: () => number;
  /** Returns the time in Unix milliseconds. */
  now?: () => number;
}

/** Result of one round. */
export interface RoundResult {
  /** True when the state request and every later request of the round succeeded. */
  connected: boolean;
  /** True when every configured artifact is installed at the version due now and reported. */
  inSync: boolean;
}

/**
 * Min time from the start of one long-poll round to the start of the next,
 * in milliseconds. A server, or a proxy in front of it, that responds to the
 * long poll at once instead of waiting would otherwise make the agent send
 * requests in a tight loop.
 */
export const MIN_ROUND_INTERVAL_MS = BACKOFF_MIN_MS;

/** Sleeps `ms` milliseconds. An abort ends the sleep early without an error. */
async function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  try {
    await delay(ms, undefined, signal ? { signal } : {});
  } catch (error) {
    if (!signal?.aborted) throw error;
  }
}

/** Formats a serial number as the API shows it: hex byte pairs separated by colons. */
function formatSerial(serial: string): string {
  return colonSerial(normaliseSerialHex(serial));
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * The Keyward agent on one endpoint. Each round it makes sure it has a
 * current identity certificate (enrolment, renewal), fetches the device's
 * state with a long poll, registers WireGuard keys, installs every
 * configured artifact and reports what it applied. Installs always work
 * from the last state the server sent, which state.json keeps, so a
 * scheduled activation still happens while the server is unreachable.
 */
export class KeywardAgent {
  readonly #config: AgentConfig;
  readonly #log: Logger;
  readonly #random: () => number;
  readonly #now: () => number;
  #identity: Identity | undefined;
  #state: AgentState | undefined;
  #keyring: Keyring | undefined;
  #client: DeviceClient | undefined;
  /** The last problem logged per artifact path or topic, so a repeat is not logged every round. */
  readonly #problems = new Map<string, string>();

  constructor(options: AgentOptions) {
    this.#config = options.config;
    this.#log = options.log;
    this.#random = options.random ?? Math.random;
    this.#now = options.now ?? Date.now;
  }

  get #stateOrThrow(): AgentState {
    if (this.#state === undefined) throw new Error("the agent is not open; call open() first");
    return this.#state;
  }

  /**
   * Reads (or on first start creates) the keys in the state directory,
   * state.json and the WireGuard keyring.
   */
  async open(): Promise<void> {
    const config = this.#config;
    const ca = config.caFile === undefined ? undefined : await readFile(config.caFile);
    this.#identity = await loadIdentity(config.stateDir);
    this.#state = await loadState(config.stateDir);
    this.#keyring = await loadKeyring(config.stateDir);
    this.#client = new DeviceClient(config.server, ca);

    const enrollment = this.#state.enrollment;
    if (enrollment !== null && enrollment.device !== config.device) {
      throw new Error(
        `state_dir ${config.stateDir} belongs to device "${enrollment.device}", not "${config.device}"; use another state_dir`,
      );
    }
    const certificate = this.#identity.certificatePem;
    if (certificate !== undefined) {
      // A crash between saving a certificate and saving state.json leaves a stale record.
      if (enrollment === null || enrollment.serial_number !== certificateInfo(certificate).serial) {
        this.#state.enrollment = enrollmentFromCertificate(config.device, certificate, enrollment);
        await this.#save();
      }
      this.#useIdentity(this.#identity);
    }
    const stateDirMode = (await stat(config.stateDir)).mode & 0o777;
    if ((stateDirMode & 0o077) !== 0) {
      this.#log.warn(
        { state_dir: config.stateDir, mode: stateDirMode.toString(8).padStart(4, "0") },
        "the state directory is accessible to other users; chmod 700 it",
      );
    }
    this.#log.info(
      {
        device: config.device,
        server: config.server.origin,
        state_dir: config.stateDir,
        artifacts: config.artifacts.length,
        enrolled: certificate !== undefined,
      },
      "agent started",
    );
  }

  /** Closes the connections to the server. */
  close(): void {
    this.#client?.close();
  }

  /**
   * Runs one round without waiting for changes (`--once`). Returns true
   * when the server was reached and every artifact is installed and
   * reported.
   */
  async runOnce(signal?: AbortSignal): Promise<boolean> {
    const result = await this.round(0, signal);
    return result.connected && result.inSync;
  }

  /**
   * Runs rounds until `signal` aborts. After a round that could not reach
   * the server it waits with exponential backoff and full jitter (1 s to
   * 60 s), but never past the next scheduled activation. Successful long-poll
   * rounds start at least `MIN_ROUND_INTERVAL_MS` apart.
   */
  async run(signal: AbortSignal): Promise<void> {
    let failures = 0;
    while (!signal.aborted) {
      const untilActivation = this.#msUntilNextActivation();
      // The server's wait is whole seconds, so the last second before an activation is slept here.
      if (untilActivation !== undefined && untilActivation < 1000) {
        await sleep(untilActivation, signal);
        if (signal.aborted) break;
      }
      const waitSeconds = this.#waitSeconds();
      const startedAt = performance.now();
      const result = await this.round(waitSeconds, signal);
      if (signal.aborted) break;
      if (result.connected) {
        failures = 0;
        const remaining = MIN_ROUND_INTERVAL_MS - (performance.now() - startedAt);
        // A round without a wait is one just before an activation, which must not be delayed.
        if (waitSeconds > 0 && remaining > 0) {
          await sleep(Math.min(remaining, this.#msUntilNextActivation() ?? remaining), signal);
        }
        continue;
      }
      const pause = Math.min(
        backoffDelay(failures, this.#random),
        this.#msUntilNextActivation() ?? Number.POSITIVE_INFINITY,
      );
      failures += 1;
      this.#log.info({ attempt: failures, retry_in_ms: pause }, "retrying after a failed round");
      await sleep(pause, signal);
    }
    this.#log.info("agent stopped");
  }

  /**
   * Runs one round: identity, state (waiting up to `waitSeconds` for a
   * change), WireGuard keys, installs, reports. Errors of the network part
   * are logged and make `connected` false. Installs still run from the
   * last saved state.
   */
  async round(waitSeconds: number, signal?: AbortSignal): Promise<RoundResult> {
    let connected = false;
    // A second pass runs only after a successful re-enrolment in the first.
    for (let pass = 0; pass < 2 && !connected; pass += 1) {
      try {
        await this.#ensureCertificate(signal);
        await this.#fetchState(pass === 0 ? waitSeconds : 0, signal);
        const keysSent = await this.#registerKeys(signal);
        const csrsSent = await this.#requestCertificates(signal);
        if (keysSent || csrsSent) await this.#fetchState(0, signal);
        connected = true;
        this.#resolved("connection", "the server is reachable again");
      } catch (error) {
        if (signal?.aborted) return { connected: false, inSync: false };
        if (!(await this.#handleRoundError(error))) break;
      }
    }

    const installed = await this.#installAll();
    let reported = true;
    if (connected) {
      try {
        const state = this.#stateOrThrow;
        reported = await sendReports(
          this.#client as DeviceClient,
          pendingReports(this.#config.artifacts, state),
          state,
          this.#log,
          signal,
        );
        await this.#save();
      } catch (error) {
        if (signal?.aborted) return { connected: false, inSync: false };
        connected = false;
        reported = false;
        this.#problem("connection", "error", {}, "round failed", messageOf(error));
      }
    }
    return { connected, inSync: installed && reported };
  }

  async #save(): Promise<void> {
    await saveState(this.#config.stateDir, this.#stateOrThrow);
  }

  #useIdentity(identity: Identity): void {
    this.#identity = identity;
    this.#client?.setIdentity({
      certificateChain: [identity.certificatePem ?? "", identity.chainPem].join("\n"),
      privateKey: identity.privateKeyPem,
    });
  }

  /**
   * Logs a problem unless the same `reason` was the last one logged under
   * `topic`, so a failure that repeats every round is logged once until it
   * changes or clears.
   */
  #problem(
    topic: string,
    level: "info" | "warn" | "error",
    fields: object,
    message: string,
    reason: string,
  ): void {
    if (this.#problems.get(topic) === reason) return;
    this.#problems.set(topic, reason);
    this.#log[level]({ ...fields, reason }, message);
  }

  /** Forgets the problem logged under `topic`, logging `message` if there was one. */
  #resolved(topic: string, message?: string): void {
    if (this.#problems.delete(topic) && message !== undefined) this.#log.info(message);
  }

  /** Logs a failed round and returns true when it re-enrolled, so the round can be tried again. */
  async #handleRoundError(error: unknown): Promise<boolean> {
    this.#problem("connection", "error", {}, "round failed", messageOf(error));
    if (error instanceof DeviceApiError && error.code === "device_authentication_failed") {
      return this.#reEnrol("the server rejected this device's identity certificate");
    }
    return false;
  }

  /**
   * Enrols again when a bootstrap token other than the one already used is
   * configured. Otherwise logs what the operator has to do.
   */
  async #reEnrol(why: string): Promise<boolean> {
    const state = this.#stateOrThrow;
    let token: string | undefined;
    try {
      token = await readBootstrapToken(this.#config);
    } catch (error) {
      this.#log.error({ err: messageOf(error) }, "cannot read the bootstrap token");
      return false;
    }
    if (token === undefined || tokenDigest(token) === state.enrollment?.bootstrap_token_sha256) {
      this.#problem(
        "enrolment",
        "error",
        {},
        "cannot enrol again without a new bootstrap token",
        `${why}. Configure a new bootstrap token to enrol again. If this device was revoked, an operator must first delete it and register it again, because the server issues no bootstrap token to a revoked device`,
      );
      return false;
    }
    try {
      await this.#enrol(token, true);
      return true;
    } catch (error) {
      this.#log.error({ err: messageOf(error) }, "enrolment failed");
      return false;
    }
  }

  async #enrol(token: string, newKey: boolean): Promise<void> {
    const state = this.#stateOrThrow;
    this.#log.info({ device: this.#config.device, new_key: newKey }, "enrolling");
    const result = await enrol(
      {
        device: this.#config.device,
        stateDir: this.#config.stateDir,
        client: this.#client as DeviceClient,
      },
      this.#identity as Identity,
      token,
      newKey,
    );
    state.enrollment = result.enrollment;
    await this.#save();
    this.#useIdentity(result.identity);
    this.#resolved("enrolment");
    this.#log.info(
      {
        device: result.enrollment.device,
        device_id: result.enrollment.device_id,
        serial_number: formatSerial(result.enrollment.serial_number),
        expiration: new Date(result.enrollment.expiration * 1000).toISOString(),
      },
      "enrolled",
    );
  }

  /** Enrols when there is no certificate yet, and renews one that is due. */
  async #ensureCertificate(signal: AbortSignal | undefined): Promise<void> {
    const state = this.#stateOrThrow;
    const identity = this.#identity as Identity;
    if (identity.certificatePem === undefined || state.enrollment === null) {
      const token = await readBootstrapToken(this.#config);
      if (token === undefined) {
        throw new Error(
          "this device is not enrolled and neither bootstrap_token nor bootstrap_token_file is configured",
        );
      }
      await this.#enrol(token, false);
      return;
    }
    const now = this.#now();
    const enrollment = state.enrollment;
    if (now >= enrollment.expiration * 1000) {
      if (await this.#reEnrol("the identity certificate has expired")) return;
      throw new Error(
        `the identity certificate expired at ${new Date(enrollment.expiration * 1000).toISOString()}`,
      );
    }
    if (now < enrollment.renew_after * 1000 || signal?.aborted) return;
    try {
      const result = await renew(
        {
          device: this.#config.device,
          stateDir: this.#config.stateDir,
          client: this.#client as DeviceClient,
        },
        enrollment,
      );
      state.enrollment = result.enrollment;
      await this.#save();
      this.#useIdentity(result.identity);
      this.#resolved("renewal");
      this.#log.info(
        {
          serial_number: formatSerial(result.enrollment.serial_number),
          expiration: new Date(result.enrollment.expiration * 1000).toISOString(),
        },
        "renewed the identity certificate",
      );
    } catch (error) {
      if (error instanceof DeviceApiError && error.code === "device_authentication_failed") {
        throw error;
      }
      this.#problem(
        "renewal",
        "warn",
        { expiration: new Date(enrollment.expiration * 1000).toISOString() },
        "renewing the identity certificate failed; the current certificate stays in use until it expires",
        messageOf(error),
      );
    }
  }

  /** Fetches the state, keeping the last one on a 304. Returns the state in effect. */
  async #fetchState(waitSeconds: number, signal: AbortSignal | undefined): Promise<DeviceState> {
    const state = this.#stateOrThrow;
    const query = new URLSearchParams();
    const since = state.last_state?.etag;
    if (since !== undefined) query.set("since", since);
    query.set("wait", String(waitSeconds));
    const response = await (this.#client as DeviceClient).request(
      "GET",
      `/v1/devices/self/state?${query}`,
      { allowStatus: [304], signal, timeoutMs: waitSeconds * 1000 + REQUEST_TIMEOUT_MS },
    );
    if (response.status === 304) {
      if (state.last_state === null) {
        throw new ProtocolError("the server returned 304 to a state request without an etag");
      }
      return state.last_state;
    }
    const received = parseDeviceState(response.body);
    if (received.device !== this.#config.device) {
      throw new ProtocolError(
        `the server sent the state of device "${received.device}", not "${this.#config.device}"`,
      );
    }
    state.last_state = received;
    const withdrawn = forgetWithdrawnArtifacts(state, received);
    if (withdrawn.length > 0) {
      this.#log.info(
        { artifacts: withdrawn },
        "forgot the installed versions of artifacts the server no longer offers",
      );
    }
    await this.#save();
    this.#log.info(
      { etag: received.etag, artifacts: received.artifacts.length },
      "received a new device state",
    );
    return received;
  }

  /** Registers WireGuard keys where the state calls for it. Returns true when any key was sent. */
  async #registerKeys(signal: AbortSignal | undefined): Promise<boolean> {
    const lastState = this.#stateOrThrow.last_state;
    if (lastState === null) return false;
    const seen = new Set<string>();
    let posted = false;
    for (const entry of this.#config.artifacts) {
      if (entry.kind !== "wireguard" || seen.has(entry.id)) continue;
      seen.add(entry.id);
      const artifact = lastState.artifacts.find((item) => item.id === entry.id);
      if (artifact === undefined) continue;
      const sent = await registerWireguardKey(
        {
          client: this.#client as DeviceClient,
          stateDir: this.#config.stateDir,
          log: this.#log,
          signal,
        },
        entry as WireguardArtifactConfig,
        artifact,
        lastState.etag,
        this.#keyring as Keyring,
      );
      posted ||= sent;
    }
    return posted;
  }

  /** Sends CSRs for certificate artifacts that need a new certificate. Returns true when any was accepted. */
  async #requestCertificates(signal: AbortSignal | undefined): Promise<boolean> {
    const lastState = this.#stateOrThrow.last_state;
    if (lastState === null) return false;
    const entries = this.#config.artifacts.filter((entry) => entry.kind === "certificate");
    if (entries.length === 0) return false;
    const keyring = await loadCertificateKeyring(this.#config.stateDir);
    let accepted = false;
    for (const entry of entries) {
      const artifact = lastState.artifacts.find((item) => item.id === entry.id);
      if (artifact === undefined) continue;
      const sent = await requestCertificate(
        {
          client: this.#client as DeviceClient,
          stateDir: this.#config.stateDir,
          log: this.#log,
          signal,
          now: this.#now,
        },
        entry,
        artifact,
        lastState.etag,
        keyring,
      );
      accepted ||= sent;
    }
    return accepted;
  }

  /** Installs every configured artifact from the last state. Returns true when all are in place. */
  async #installAll(): Promise<boolean> {
    const state = this.#stateOrThrow;
    const lastState = state.last_state;
    if (lastState === null) return this.#config.artifacts.length === 0;
    const context: InstallContext = {
      state,
      keyring: this.#keyring as Keyring,
      encryptionKey: (this.#identity as Identity).encryptionKey,
      shell: this.#config.shell,
      now: this.#now,
      saveState: () => this.#save(),
      stateDir: this.#config.stateDir,
    };
    let allInPlace = true;
    for (const entry of this.#config.artifacts) {
      const fields = { artifact: entry.id, path: entry.path };
      const artifact = lastState.artifacts.find(
        (item) => item.id === entry.id && item.kind === entry.kind,
      );
      if (artifact === undefined) {
        allInPlace = false;
        this.#problem(
          entry.path,
          "warn",
          fields,
          "artifact not installed",
          "the server offers this device no artifact with this id",
        );
        continue;
      }
      let outcome: InstallOutcome;
      try {
        outcome = await installArtifact(context, entry, artifact);
      } catch (error) {
        outcome = { status: "failed", reason: messageOf(error) };
      }
      if (outcome.status === "installed") {
        this.#resolved(entry.path);
        this.#log.info({ ...fields, version: outcome.version }, "installed artifact");
      } else if (outcome.status === "unchanged") {
        this.#resolved(entry.path);
      } else if (outcome.status === "reload_failed") {
        allInPlace = false;
        this.#problem(
          entry.path,
          "error",
          { ...fields, version: outcome.version },
          "installed artifact, but its reload command failed and is retried next round",
          outcome.reason,
        );
      } else if (outcome.status === "waiting") {
        allInPlace = false;
        this.#problem(entry.path, "info", fields, "artifact waiting", outcome.reason);
      } else {
        allInPlace = false;
        this.#problem(entry.path, "error", fields, "artifact not installed", outcome.reason);
      }
    }
    return allInPlace;
  }

  /** Milliseconds until the earliest future activation among configured artifacts, if any. */
  #msUntilNextActivation(): number | undefined {
    const lastState = this.#state?.last_state;
    if (!lastState) return undefined;
    const now = this.#now();
    const ids = new Set(this.#config.artifacts.map((entry) => entry.id));
    let earliest: number | undefined;
    for (const artifact of lastState.artifacts) {
      if (!ids.has(artifact.id) || artifact.next === null) continue;
      const at = Date.parse(artifact.next.activate_at);
      if (at > now && (earliest === undefined || at < earliest)) earliest = at;
    }
    return earliest === undefined ? undefined : earliest - now;
  }

  /** Returns the long-poll wait: poll_wait, shortened so the response arrives before the next activation. */
  #waitSeconds(): number {
    const untilActivation = this.#msUntilNextActivation();
    if (untilActivation === undefined) return this.#config.pollWaitSeconds;
    return Math.min(this.#config.pollWaitSeconds, Math.floor(untilActivation / 1000));
  }
}
