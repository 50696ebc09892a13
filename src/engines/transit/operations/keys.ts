import { KeywardError } from "../../../errors.ts";
import {
  backupKey,
  configureKey,
  createKey,
  EXPORT_KINDS,
  exportKey,
  MIN_AUTO_ROTATE_PERIOD,
  restoreKey,
  rotateKey,
  transitionState,
  trimKey,
} from "../../../keys/index.ts";
import type { ManagedKey } from "../../../keys/types.ts";
import { assertNotPendingDeletion, checkKeyUse, type OperationContext } from "../access.ts";
import { parseDurationSeconds } from "../encoding.ts";
import { describeKey } from "../key-info.ts";
import { deletionDateAfter } from "../lifecycle.ts";
import { validateKeyName } from "../store.ts";
import {
  type ConfigureKeyRequest,
  type CreateKeyRequest,
  type DeletionSchedule,
  type KeyInfo,
  type Outcome,
  TARGET_KEY_STATES,
  type TargetKeyState,
} from "../types.ts";

/** Keyward's upper bound for `auto_rotate_period`: 100 years of 365.25 days, in seconds. */
export const MAX_AUTO_ROTATE_PERIOD = 100 * 36525 * 86400;

/** Parses `auto_rotate_period`: 0 disables rotation, otherwise one hour to 100 years. */
function parseAutoRotatePeriod(value: number | string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const seconds = parseDurationSeconds(value, "auto_rotate_period");
  if (seconds !== 0 && (seconds < MIN_AUTO_ROTATE_PERIOD || seconds > MAX_AUTO_ROTATE_PERIOD)) {
    throw new KeywardError(
      "invalid_field",
      `"auto_rotate_period" must be 0 (disabled) or from 1h (3600 seconds) to 100 years`,
      { field: "auto_rotate_period" },
    );
  }
  return seconds;
}

function parseActivationDate(value: string | undefined): Date | undefined {
  if (value === undefined) return undefined;
  const time = Date.parse(value);
  if (!/^\d{4}-\d{2}-\d{2}T/.test(value) || Number.isNaN(time)) {
    throw new KeywardError(
      "invalid_field",
      `"activation_date" must be an ISO 8601 date and time such as 2030-01-31T00:00:00Z`,
      { field: "activation_date" },
    );
  }
  return new Date(time);
}

function parseExportVersion(version: string | undefined): number | "latest" | undefined {
  if (version === undefined || version === "") return undefined;
  if (version === "latest") return "latest";
  if (/^[1-9]\d{0,9}$/.test(version) && Number(version) <= 2 ** 31 - 1) return Number(version);
  throw new KeywardError("invalid_field", `"version" must be "latest" or a positive key version`, {
    field: "version",
  });
}

function log(context: OperationContext, fields: Record<string, unknown>, message: string): void {
  context.logger.info({ mount: context.mount, ...fields }, message);
}

/**
 * Creates key `name`. When it exists, nothing changes and the outcome
 * carries a warning, as Vault's create does.
 */
export async function createNamedKey(
  context: OperationContext,
  name: string,
  request: CreateKeyRequest,
): Promise<Outcome<KeyInfo>> {
  const autoRotatePeriod = parseAutoRotatePeriod(request.autoRotatePeriod);
  const activationDate = parseActivationDate(request.activationDate);
  return context.store.withLock(name, async () => {
    const existing = await context.store.find(name);
    if (existing !== undefined) {
      return {
        value: describeKey(existing, context.now),
        warnings: [`key "${name}" already exists; its settings were left unchanged`],
      };
    }
    const type = request.type ?? "aes256-gcm96";
    const key = createKey(
      name,
      type,
      {
        derived: request.derived,
        convergentEncryption: request.convergentEncryption,
        exportable: request.exportable,
        allowPlaintextBackup: request.allowPlaintextBackup,
        autoRotatePeriod,
        keySize: request.keySize,
        activationDate,
      },
      context.now,
    );
    const stored = await context.store.create(key);
    if (!stored.created) {
      // Another node created the key between the check above and the write.
      return {
        value: describeKey(stored.key, context.now),
        warnings: [`key "${name}" already exists; its settings were left unchanged`],
      };
    }
    log(context, { key: name, type }, "key created");
    return { value: describeKey(key, context.now), warnings: [] };
  });
}

/**
 * Changes a key's tunable settings. Turning `deletion_allowed` off also
 * cancels a scheduled deletion, which could not run any more.
 */
export async function configureNamedKey(
  context: OperationContext,
  name: string,
  request: ConfigureKeyRequest,
): Promise<Outcome<KeyInfo>> {
  const autoRotatePeriod = parseAutoRotatePeriod(request.autoRotatePeriod);
  const warnings: string[] = [];
  const key = await context.store.update(name, (current) => {
    const configured = configureKey(
      current,
      {
        minDecryptionVersion: request.minDecryptionVersion,
        minEncryptionVersion: request.minEncryptionVersion,
        deletionAllowed: request.deletionAllowed,
        exportable: request.exportable,
        allowPlaintextBackup: request.allowPlaintextBackup,
        autoRotatePeriod,
      },
      context.now,
    );
    if (!configured.deletionAllowed && configured.deletionDate !== undefined) {
      warnings.push(`the deletion scheduled for ${configured.deletionDate} was cancelled`);
      const { deletionDate: _cancelled, ...rest } = configured;
      return rest;
    }
    return configured;
  });
  log(context, { key: name }, "key configured");
  return { value: describeKey(key, context.now), warnings };
}

/** Adds a new key version; new encryptions and signatures use it. */
export async function rotateNamedKey(
  context: OperationContext,
  name: string,
): Promise<Outcome<KeyInfo>> {
  const warnings: string[] = [];
  const key = await context.store.update(name, (current) => {
    checkKeyUse(context, current, "rotate", warnings);
    return rotateKey(current, context.now);
  });
  log(context, { key: name, version: key.latestVersion }, "key rotated");
  return { value: describeKey(key, context.now), warnings };
}

/** Moves a key to another lifecycle state; an illegal transition throws `invalid_state`. */
export async function setNamedKeyState(
  context: OperationContext,
  name: string,
  state: string,
): Promise<Outcome<KeyInfo>> {
  if (!(TARGET_KEY_STATES as readonly string[]).includes(state)) {
    throw new KeywardError(
      "invalid_field",
      `"state" must be one of ${TARGET_KEY_STATES.join(", ")}`,
      {
        field: "state",
      },
    );
  }
  let from = "";
  const key = await context.store.update(name, (current) => {
    from = current.state;
    return transitionState(current, state as TargetKeyState, context.now);
  });
  const fields = { mount: context.mount, key: name, from, to: key.state };
  if (state === "compromised" || state === "destroyed")
    context.logger.warn(fields, "key state changed");
  else context.logger.info(fields, "key state changed");
  return { value: describeKey(key, context.now), warnings: [] };
}

/** Permanently removes the versions below `minAvailableVersion`. */
export async function trimNamedKey(
  context: OperationContext,
  name: string,
  minAvailableVersion: number,
): Promise<void> {
  await context.store.update(name, (current) => trimKey(current, minAvailableVersion, context.now));
  log(context, { key: name, minAvailableVersion }, "key trimmed");
}

/**
 * Schedules the deletion of a key that allows deletion, to run `days` days
 * from now. A key already scheduled keeps its date and the outcome carries a
 * warning.
 */
export async function scheduleKeyDeletion(
  context: OperationContext,
  name: string,
  days: number,
): Promise<Outcome<DeletionSchedule>> {
  const warnings: string[] = [];
  const key = await context.store.update(name, (current) => {
    if (!current.deletionAllowed) {
      throw new KeywardError(
        "deletion_not_allowed",
        `key "${name}" does not allow deletion; set deletion_allowed with the key's config endpoint first`,
      );
    }
    if (current.deletionDate !== undefined) {
      warnings.push(`key "${name}" was already scheduled for deletion; the date is unchanged`);
      return current;
    }
    return {
      ...current,
      deletionDate: deletionDateAfter(context.now, days),
      updatedAt: context.now.toISOString(),
    };
  });
  const deletionDate = key.deletionDate as string;
  context.logger.warn({ mount: context.mount, key: name, deletionDate }, "key deletion scheduled");
  return { value: { name, deletionDate }, warnings };
}

/** Cancels a scheduled deletion; the key becomes usable again. */
export async function cancelKeyDeletion(
  context: OperationContext,
  name: string,
): Promise<Outcome<KeyInfo>> {
  const warnings: string[] = [];
  const key = await context.store.update(name, (current) => {
    if (current.deletionDate === undefined) {
      warnings.push(`key "${name}" had no scheduled deletion`);
      return current;
    }
    const { deletionDate: _cancelled, ...rest } = current;
    return { ...rest, updatedAt: context.now.toISOString() };
  });
  log(context, { key: name }, "key deletion cancelled");
  return { value: describeKey(key, context.now), warnings };
}

export interface ExportedKey {
  name: string;
  type: string;
  /** Version number to encoded key material. */
  keys: Record<string, string>;
}

/**
 * Returns key material of an exportable key. `version` is a version number,
 * `latest`, or absent for all versions.
 */
export async function exportNamedKey(
  context: OperationContext,
  name: string,
  kind: string,
  version: string | undefined,
): Promise<Outcome<ExportedKey>> {
  if (!(EXPORT_KINDS as readonly string[]).includes(kind)) {
    throw new KeywardError(
      "invalid_field",
      `export type must be one of ${EXPORT_KINDS.join(", ")}`,
      {
        field: "type",
      },
    );
  }
  const parsedVersion = parseExportVersion(version);
  const warnings: string[] = [];
  const key = await context.store.get(name);
  // A public key is not secret, so exporting it needs no export permission.
  if (kind === "public-key") assertNotPendingDeletion(key);
  else checkKeyUse(context, key, "export", warnings);
  const keys = exportKey(key, kind as (typeof EXPORT_KINDS)[number], parsedVersion, context.now);
  if (kind !== "public-key") {
    context.logger.warn(
      { mount: context.mount, key: name, kind, version: version ?? "all" },
      "key material exported",
    );
  }
  return { value: { name, type: key.type, keys }, warnings };
}

/** Returns a plaintext backup of a key that allows plaintext backup. */
export async function backupNamedKey(context: OperationContext, name: string): Promise<string> {
  const backup = backupKey(await context.store.get(name), context.now);
  context.logger.warn({ mount: context.mount, key: name }, "key backed up");
  return backup;
}

export interface RestoreRequest {
  backup: string;
  /** The name to restore under; defaults to the name in the backup. */
  name?: string;
  /** Replace an existing key of that name. */
  force?: boolean;
}

/**
 * Restores a backup. An existing key is replaced only with `force`. A
 * deletion scheduled in the backup is dropped, so the deletion job does not
 * remove the key just restored.
 */
export async function restoreNamedKey(
  context: OperationContext,
  request: RestoreRequest,
): Promise<void> {
  if (request.name !== undefined) validateKeyName(request.name);
  const restored = restoreKey(request.backup, request.name);
  validateKeyName(restored.name, "backup");
  const { deletionDate: _dropped, ...key } = restored;
  await context.store.withLock(key.name, async () => {
    const existing = await context.store.find(key.name);
    if (existing !== undefined && request.force !== true) {
      throw new KeywardError(
        "already_exists",
        `key "${key.name}" already exists; set force to replace it, or restore under another name`,
      );
    }
    if (request.force === true) {
      await context.store.put(key as ManagedKey);
      return;
    }
    if (!(await context.store.create(key as ManagedKey)).created) {
      throw new KeywardError(
        "already_exists",
        `key "${key.name}" already exists; set force to replace it, or restore under another name`,
      );
    }
  });
  context.logger.warn(
    { mount: context.mount, key: key.name, replaced: request.force === true },
    "key restored from backup",
  );
}
