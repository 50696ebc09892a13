import { randomBytes } from "node:crypto";
import type { Logger } from "pino";
import { invalidField, notFound } from "../errors.ts";
import type {
  DeviceArtifact,
  DeviceArtifactSource,
  DeviceChangeNotifier,
  DeviceRef,
} from "./artifacts.ts";
import { validateName, validateNameList } from "./names.ts";
import type { DeviceStore } from "./store.ts";
import { SECRET_ENCODINGS, type SecretEncoding, type SharedSecretRecord } from "./types.ts";

/** The artifact kind of shared secrets. */
export const SECRET_ARTIFACT_KIND = "secret";

/** Minimum and maximum secret lengths, in bytes. */
export const MIN_SECRET_LENGTH = 16;
export const MAX_SECRET_LENGTH = 128;
const DEFAULT_SECRET_LENGTH = 32;

const FOLDER = "secrets";

/** Returns the artifact id of shared secret `name`: `secret:<name>`. */
export function secretArtifactId(name: string): string {
  return `${SECRET_ARTIFACT_KIND}:${name}`;
}

/** Fields of a create or update. Omitted fields keep their value (or take the default on create). */
export interface SharedSecretInput {
  groups?: string[];
  devices?: string[];
  length?: number;
  encoding?: SecretEncoding;
}

/** Returns the names of the devices in an audience (groups and device names). */
export type AudienceResolver = (
  groups: readonly string[],
  devices: readonly string[],
) => Promise<string[]>;

export interface SharedSecretsOptions {
  store: DeviceStore;
  clock: () => Date;
  logger: Logger;
  notifier: DeviceChangeNotifier;
  audience: AudienceResolver;
}

function inAudience(record: SharedSecretRecord, device: DeviceRef): boolean {
  return (
    record.devices.includes(device.name) ||
    record.groups.some((group) => device.groups.includes(group))
  );
}

function encodeValue(record: SharedSecretRecord): string {
  const bytes = Buffer.from(record.value, "base64");
  return record.encoding === "hex" ? bytes.toString("hex") : bytes.toString("base64");
}

/** Returns what the admin API shows of a shared secret: everything but its value. */
export function secretMetadata(record: SharedSecretRecord) {
  return {
    name: record.name,
    artifact_id: secretArtifactId(record.name),
    version: record.version,
    length: record.length,
    encoding: record.encoding,
    groups: record.groups,
    devices: record.devices,
    created_at: record.createdAt,
    updated_at: record.updatedAt,
    rotated_at: record.rotatedAt,
  };
}

/**
 * Shared secrets: random values generated on the server and delivered to
 * an audience of devices (by group or by name) as `secret:<name>`
 * artifacts, with fields `{name, encoding}` and the sealed secret `value`.
 * Each rotation draws a new value and raises the version. The value never
 * leaves the server except sealed to a device's encryption key.
 */
export class SharedSecrets implements DeviceArtifactSource {
  readonly kind = SECRET_ARTIFACT_KIND;
  readonly #store: DeviceStore;
  readonly #clock: () => Date;
  readonly #logger: Logger;
  readonly #notifier: DeviceChangeNotifier;
  readonly #audience: AudienceResolver;

  constructor(options: SharedSecretsOptions) {
    this.#store = options.store;
    this.#clock = options.clock;
    this.#logger = options.logger;
    this.#notifier = options.notifier;
    this.#audience = options.audience;
  }

  /**
   * Creates secret `name` (version 1, a new random value) or updates the
   * audience of an existing one. `length` and `encoding` are fixed at
   * creation. Wakes the devices of the old and the new audience.
   */
  async write(name: string, input: SharedSecretInput): Promise<SharedSecretRecord> {
    validateName(name, "name");
    const groups =
      input.groups === undefined ? undefined : validateNameList(input.groups, "groups");
    const devices =
      input.devices === undefined ? undefined : validateNameList(input.devices, "devices");
    const { record, previous } = await this.#store.withLock(this.#lockName(name), async () => {
      const existing = await this.#store.get<SharedSecretRecord>(this.#path(name));
      const now = this.#clock().toISOString();
      let updated: SharedSecretRecord;
      if (existing) {
        checkFixed(existing, input);
        updated = {
          ...existing,
          groups: groups ?? existing.groups,
          devices: devices ?? existing.devices,
          updatedAt: now,
        };
      } else {
        const length = checkLength(input.length ?? DEFAULT_SECRET_LENGTH);
        const encoding = checkEncoding(input.encoding ?? "base64");
        updated = {
          name,
          version: 1,
          length,
          encoding,
          groups: groups ?? [],
          devices: devices ?? [],
          value: randomBytes(length).toString("base64"),
          createdAt: now,
          updatedAt: now,
          rotatedAt: now,
        };
      }
      await this.#store.put(this.#path(name), updated);
      return { record: updated, previous: existing };
    });
    if (!previous) this.#logger.info({ secret: name }, "created shared secret");
    await this.#notify([record, ...(previous ? [previous] : [])]);
    return record;
  }

  /** Draws a new value for `name` and raises its version. Throws `not_found`. */
  async rotate(name: string): Promise<SharedSecretRecord> {
    validateName(name, "name");
    const record = await this.#store.withLock(this.#lockName(name), async () => {
      const existing = await this.#store.get<SharedSecretRecord>(this.#path(name));
      if (!existing) throw notFound(`shared secret "${name}"`);
      const now = this.#clock().toISOString();
      const rotated: SharedSecretRecord = {
        ...existing,
        version: existing.version + 1,
        value: randomBytes(existing.length).toString("base64"),
        updatedAt: now,
        rotatedAt: now,
      };
      await this.#store.put(this.#path(name), rotated);
      return rotated;
    });
    this.#logger.info({ secret: name, version: record.version }, "rotated shared secret");
    await this.#notify([record]);
    return record;
  }

  async read(name: string): Promise<SharedSecretRecord | undefined> {
    validateName(name, "name");
    return this.#store.get<SharedSecretRecord>(this.#path(name));
  }

  async list(): Promise<string[]> {
    return this.#store.list(FOLDER);
  }

  /** Deletes `name`, and its devices drop the artifact at their next poll. Deleting a missing secret is no error. */
  async delete(name: string): Promise<void> {
    validateName(name, "name");
    const existing = await this.#store.withLock(this.#lockName(name), async () => {
      const record = await this.#store.get<SharedSecretRecord>(this.#path(name));
      if (record) await this.#store.transaction((writer) => writer.delete(this.#path(name)));
      return record;
    });
    if (!existing) return;
    this.#logger.info({ secret: name }, "deleted shared secret");
    await this.#notify([existing]);
  }

  async artifactsFor(device: DeviceRef): Promise<DeviceArtifact[]> {
    const artifacts: DeviceArtifact[] = [];
    // NOTE: this reads every shared secret on each state request. That suits
    // tens of secrets, but thousands would need an index by group and device.
    for (const name of await this.list()) {
      const record = await this.#store.get<SharedSecretRecord>(this.#path(name));
      if (!record || !inAudience(record, device)) continue;
      artifacts.push({
        id: secretArtifactId(record.name),
        kind: SECRET_ARTIFACT_KIND,
        version: record.version,
        // created_at distinguishes a secret created again at version 1 from the one it replaced.
        fields: { name: record.name, encoding: record.encoding, created_at: record.createdAt },
        secrets: { value: encodeValue(record) },
      });
    }
    return artifacts;
  }

  /** Rotates every secret whose audience includes `device`, so the values it had stop being current. */
  async deviceRevoked(device: DeviceRef): Promise<void> {
    for (const name of await this.list()) {
      const record = await this.#store.get<SharedSecretRecord>(this.#path(name));
      if (record && inAudience(record, device)) await this.rotate(name);
    }
  }

  async #notify(records: readonly SharedSecretRecord[]): Promise<void> {
    const names = new Set<string>();
    for (const record of records) {
      for (const name of await this.#audience(record.groups, record.devices)) names.add(name);
    }
    if (names.size > 0) this.#notifier.changed([...names]);
  }

  #path(name: string): string {
    return `${FOLDER}/${name}`;
  }

  #lockName(name: string): string {
    return `secret:${name}`;
  }
}

function checkLength(length: number): number {
  if (!Number.isInteger(length) || length < MIN_SECRET_LENGTH || length > MAX_SECRET_LENGTH) {
    throw invalidField(
      "length",
      `"length" must be an integer from ${MIN_SECRET_LENGTH} to ${MAX_SECRET_LENGTH} (bytes)`,
    );
  }
  return length;
}

function checkEncoding(encoding: string): SecretEncoding {
  if (!(SECRET_ENCODINGS as readonly string[]).includes(encoding)) {
    throw invalidField("encoding", `"encoding" must be one of ${SECRET_ENCODINGS.join(", ")}`);
  }
  return encoding as SecretEncoding;
}

/** Rejects a change of `length` or `encoding`, which are fixed when a secret is created. */
function checkFixed(existing: SharedSecretRecord, input: SharedSecretInput): void {
  if (input.length !== undefined && input.length !== existing.length) {
    throw invalidField(
      "length",
      `"length" is fixed at creation (${existing.length}); delete the secret and create it again to change it`,
    );
  }
  if (input.encoding !== undefined && input.encoding !== existing.encoding) {
    throw invalidField(
      "encoding",
      `"encoding" is fixed at creation (${existing.encoding}); delete the secret and create it again to change it`,
    );
  }
}
