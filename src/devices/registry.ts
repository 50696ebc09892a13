import { randomUUID } from "node:crypto";
import { parseDuration } from "../auth/duration.ts";
import { invalidField, KeywardError, notFound } from "../errors.ts";
import { newBootstrapToken, tokenPath } from "./bootstrap-tokens.ts";
import { CONFIG_PATH, type DeviceContext, devicePath, deviceRef, serialPath } from "./context.ts";
import { revokeIdentityCertificates } from "./identity-certificates.ts";
import { claimDeviceName, DeviceNameBackfill, releaseDeviceName } from "./name-claims.ts";
import { validateName, validateNameList, validateTags } from "./names.ts";
import type { RecordWriter } from "./store.ts";
import type { DeviceRecord, DevicesConfig } from "./types.ts";

/** Fields of `POST /v1/devices/config`. */
export interface DevicesConfigInput {
  pki_mount: string;
  pki_role: string;
  identity_ttl?: number | string;
}

/** Fields of `POST /v1/devices/registry/:name`. Omitted fields keep their value. */
export interface DeviceInput {
  tags?: Record<string, string>;
  groups?: string[];
}

/** Returns the error for an operation a revoked device cannot take part in. */
export function deviceRevokedError(name: string): KeywardError {
  return new KeywardError(
    "device_revoked",
    `device "${name}" is revoked; delete it and register it again to enrol it anew`,
  );
}

/**
 * Reads device `device.name` again inside `writer` and returns it. Throws
 * `not_found` when it was deleted, or deleted and created anew, since
 * `device` was read. A change that read the device before its transaction
 * builds on this copy, so it neither undoes a change made meanwhile by
 * another node nor stores again a device deleted there, which would then
 * have no name claim.
 */
export async function readDeviceAgain(
  writer: RecordWriter,
  device: DeviceRecord,
): Promise<DeviceRecord> {
  const current = await writer.get<DeviceRecord>(devicePath(device.name));
  if (current === undefined || current.id !== device.id) throw notFound(`device "${device.name}"`);
  return current;
}

/**
 * The registry's settings and its devices: creation, update, bootstrap
 * tokens, revocation and deletion. Changes to one device run under that
 * device's lock.
 */
export class DeviceRegistry {
  readonly #context: DeviceContext;
  readonly #backfill: DeviceNameBackfill;

  constructor(context: DeviceContext) {
    this.#context = context;
    this.#backfill = new DeviceNameBackfill(context.store, context.clock, context.logger);
  }

  async readConfig(): Promise<DevicesConfig | undefined> {
    return this.#context.store.get<DevicesConfig>(CONFIG_PATH);
  }

  /** Returns the settings, or throws `invalid_state` when `devices/config` was never written. */
  async requireConfig(): Promise<DevicesConfig> {
    const config = await this.readConfig();
    if (!config) {
      throw new KeywardError(
        "invalid_state",
        "the device registry is not configured; set pki_mount and pki_role with POST /v1/devices/config",
      );
    }
    return config;
  }

  /**
   * Replaces the settings. The mount must be a PKI mount, and its role must
   * exist and store the certificates it issues, so they can be revoked.
   */
  async writeConfig(input: DevicesConfigInput): Promise<DevicesConfig> {
    const pki = this.#context.pki(input.pki_mount);
    if (!pki) {
      throw invalidField("pki_mount", `no PKI engine is mounted at "${input.pki_mount}/"`);
    }
    const role = await pki.readRole(input.pki_role).catch((error: unknown) => {
      if (error instanceof KeywardError && error.code === "invalid_field") {
        throw invalidField("pki_role", error.message);
      }
      throw error;
    });
    if (!role) {
      throw invalidField(
        "pki_role",
        `role "${input.pki_role}" does not exist in PKI mount "${input.pki_mount}"`,
      );
    }
    if (role.no_store) {
      throw invalidField(
        "pki_role",
        `role "${input.pki_role}" has no_store set, so identity certificates could not be revoked; use a role that stores certificates`,
      );
    }
    const config: DevicesConfig = { pkiMount: input.pki_mount, pkiRole: input.pki_role };
    if (input.identity_ttl !== undefined) {
      const seconds = parseDuration(input.identity_ttl, "identity_ttl");
      if (seconds <= 0) throw invalidField("identity_ttl", `"identity_ttl" must be positive`);
      config.identityTtlSeconds = seconds;
    }
    await this.#context.store.put(CONFIG_PATH, config);
    this.#context.logger.info(
      { pkiMount: config.pkiMount, pkiRole: config.pkiRole },
      "configured the device registry",
    );
    return config;
  }

  async read(name: string): Promise<DeviceRecord | undefined> {
    validateName(name, "name");
    return this.#context.store.get<DeviceRecord>(devicePath(name));
  }

  /** Returns device `name`, or throws `not_found`. */
  async require(name: string): Promise<DeviceRecord> {
    const device = await this.read(name);
    if (!device) throw notFound(`device "${name}"`);
    return device;
  }

  async list(): Promise<string[]> {
    return this.#context.store.list("registry");
  }

  /**
   * Creates device `name` in state `registered`, or updates its tags and
   * groups. A new device claims its name in lower case in the transaction
   * that stores it (see `name-claims.ts`), so a device whose name differs
   * only in case gets `already_exists` on every node.
   */
  async write(name: string, input: DeviceInput): Promise<DeviceRecord> {
    validateName(name, "name");
    const tags = input.tags === undefined ? undefined : validateTags(input.tags);
    const groups =
      input.groups === undefined ? undefined : validateNameList(input.groups, "groups");
    const { store, clock, logger, waiters } = this.#context;
    await this.#backfill.ensure();
    // The claim keeps names unique across nodes. The lock shared by names
    // that differ only in case (device names have no ":") spares this
    // node's own concurrent requests a storage conflict and its retry.
    const caseLock = `case:${name.toLowerCase()}`;
    const { device, created } = await store.withLock(caseLock, () =>
      store.withLock(name, () =>
        store.transaction(async (writer) => {
          const existing = await writer.get<DeviceRecord>(devicePath(name));
          if (existing === undefined) await claimDeviceName(writer, name);
          const now = clock().toISOString();
          const record: DeviceRecord = existing
            ? {
                ...existing,
                tags: tags ?? existing.tags,
                groups: groups ?? existing.groups,
                updatedAt: now,
              }
            : {
                name,
                id: randomUUID(),
                tags: tags ?? {},
                groups: groups ?? [],
                state: "registered",
                certificates: [],
                bootstrapTokens: [],
                createdAt: now,
                updatedAt: now,
              };
          await writer.put(devicePath(name), record);
          return { device: record, created: existing === undefined };
        }),
      ),
    );
    if (created) logger.info({ device: name, deviceId: device.id }, "registered device");
    // Tags and groups decide which artifacts the device receives.
    else waiters.changed([name]);
    return device;
  }

  /**
   * Creates a bootstrap token for device `name` and returns it with its
   * record. Expired and used-up tokens of the device are deleted on the
   * way. Throws `device_revoked` for a revoked device.
   */
  async createBootstrapToken(name: string, ttlSeconds: number, numUses: number) {
    validateName(name, "name");
    const { store, clock, logger, tokens } = this.#context;
    const created = await store.withLock(name, async () => {
      const device = await this.require(name);
      if (device.state === "revoked") throw deviceRevokedError(name);
      const now = clock();
      const issued = newBootstrapToken(device, now, ttlSeconds, numUses);
      await store.transaction(async (writer) => {
        const current = await readDeviceAgain(writer, device);
        if (current.state === "revoked") throw deviceRevokedError(name);
        const unexpired = await tokens.prune(writer, current, now);
        await writer.put(tokenPath(issued.record.tokenSha256), issued.record);
        await writer.put(devicePath(name), {
          ...current,
          bootstrapTokens: [...unexpired, issued.record.tokenSha256],
        });
      });
      return issued;
    });
    logger.info(
      { device: name, expiresAt: created.record.expiresAt, numUses: created.record.numUses },
      "created bootstrap token",
    );
    return created;
  }

  /**
   * Revokes device `name`: marks it revoked (so it no longer
   * authenticates), deletes its bootstrap tokens, revokes its identity
   * certificates in the PKI, calls every source's `deviceRevoked`, and
   * wakes its waiting agent. Revoking a revoked device runs every step
   * again, which retries a step that failed before.
   */
  async revoke(name: string): Promise<DeviceRecord> {
    validateName(name, "name");
    const { store, clock, logger, tokens, pki, waiters } = this.#context;
    const device = await store.withLock(name, async () => {
      const existing = await this.require(name);
      const now = clock().toISOString();
      const revoked = await store.transaction(async (writer) => {
        const current = await readDeviceAgain(writer, existing);
        const record: DeviceRecord = {
          ...current,
          state: "revoked",
          revokedAt: current.revokedAt ?? now,
          bootstrapTokens: [],
          updatedAt: now,
        };
        await tokens.prune(writer, current);
        await writer.put(devicePath(name), record);
        return record;
      });
      await revokeIdentityCertificates(pki, revoked.certificates, undefined, logger);
      return revoked;
    });
    logger.info(
      { device: name, certificates: device.certificates.map((certificate) => certificate.serial) },
      "revoked device",
    );

    const failures: unknown[] = [];
    for (const source of this.#context.sources()) {
      try {
        await source.deviceRevoked(deviceRef(device));
      } catch (error) {
        logger.error(
          { device: name, kind: source.kind, err: error },
          "artifact source failed to handle a revoked device",
        );
        failures.push(error);
      }
    }
    waiters.changed([name]);
    if (failures.length > 0) throw failures[0];
    return device;
  }

  /** Deletes device `name`, revoking it first when it is enrolled. Throws `not_found`. */
  async delete(name: string): Promise<void> {
    validateName(name, "name");
    const { store, logger, tokens, applied, waiters } = this.#context;
    let deleted = false;
    while (!deleted) {
      const first = await this.require(name);
      if (first.state === "enrolled") await this.revoke(name);
      deleted = await store.withLock(name, async () => {
        const device = await this.require(name);
        // An enrolment that held the lock during the check above may have
        // enrolled the device since. Revoke it in the next pass, so its new
        // certificate does not outlive the record. Revocation deletes the
        // device's tokens, so no later enrolment can start another pass.
        if (device.state === "enrolled") return false;
        return store.transaction(async (writer) => {
          // Another node may have enrolled the device since it was read.
          const current = await readDeviceAgain(writer, device);
          if (current.state === "enrolled") return false;
          await tokens.prune(writer, current);
          for (const certificate of current.certificates)
            await writer.delete(serialPath(certificate.serial));
          await applied.delete(writer, name);
          await releaseDeviceName(writer, name);
          await writer.delete(devicePath(name));
          return true;
        });
      });
    }
    this.#context.lastSeenWrites.delete(name);
    logger.info({ device: name }, "deleted device");
    waiters.changed([name]);
  }

  /** Returns the names of the devices in any of `groups` or named in `devices`. */
  async members(groups: readonly string[], devices: readonly string[]): Promise<string[]> {
    if (groups.length === 0) return [...devices];
    const names = new Set(devices);
    for (const name of await this.list()) {
      if (names.has(name)) continue;
      const device = await this.#context.store.get<DeviceRecord>(devicePath(name));
      if (device?.groups.some((group) => groups.includes(group))) names.add(name);
    }
    return [...names];
  }
}
