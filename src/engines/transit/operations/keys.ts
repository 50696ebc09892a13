import { KeywardError } from "../../../errors.ts";
import {
  backupKey,
  type CreateKeyOptions,
  configureKey,
  createKey,
  droppedHsmObjects,
  EXPORT_KINDS,
  exportKey,
  hsmObjectsOf,
  MIN_AUTO_ROTATE_PERIOD,
  rejectHsmMaterialUse,
  restoreKey,
  rotateKey,
  transitionState,
  trimKey,
  type VersionMaterial,
  validateKeyOptions,
} from "../../../keys/index.ts";
import type { HsmObjectRef, KeyType, ManagedKey } from "../../../keys/types.ts";
import { assertNotPendingDeletion, checkKeyUse, type OperationContext } from "../access.ts";
import { parseDurationSeconds } from "../encoding.ts";
import { requireHsm } from "../hsm/access.ts";
import { destroyHsmObjects, discardUnused, generateHsmVersion } from "../hsm/operations.ts";
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
export function parseAutoRotatePeriod(value: number | string | undefined): number | undefined {
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

function alreadyExists(context: OperationContext, key: ManagedKey): Outcome<KeyInfo> {
  return {
    value: describeKey(key, context.now),
    warnings: [`key "${key.name}" already exists; its settings were left unchanged`],
  };
}

/**
 * Creates key `name`. When it exists, nothing changes and the outcome
 * carries a warning, as Vault's create does. With `hsm`, the first
 * version's objects are generated in the HSM before the key is stored, and
 * destroyed again when the key is not stored.
 */
export async function createNamedKey(
  context: OperationContext,
  name: string,
  request: CreateKeyRequest,
): Promise<Outcome<KeyInfo>> {
  const type: KeyType = request.type ?? "aes256-gcm96";
  const options: CreateKeyOptions = {
    derived: request.derived,
    convergentEncryption: request.convergentEncryption,
    exportable: request.exportable,
    allowPlaintextBackup: request.allowPlaintextBackup,
    autoRotatePeriod: parseAutoRotatePeriod(request.autoRotatePeriod),
    keySize: request.keySize,
    activationDate: parseActivationDate(request.activationDate),
    ...(request.hsm === undefined ? {} : { hsm: request.hsm }),
  };
  if (options.hsm === true) {
    // Checked before the HSM makes anything, so a bad request leaves no object behind.
    validateKeyOptions(name, type, options);
    requireHsm(context.hsm);
  }
  return context.store.withLock(name, async () => {
    const existing = await context.store.find(name);
    if (existing !== undefined) return alreadyExists(context, existing);

    let material: VersionMaterial | undefined;
    if (options.hsm === true) material = await generateHsmVersion(context, { name, type }, 1);
    const created = material?.hsmObject === undefined ? [] : [material.hsmObject];
    let stored: { key: ManagedKey; created: boolean };
    try {
      stored = await context.store.create(createKey(name, type, options, context.now, material));
    } catch (error) {
      await discardUnused(context, created, undefined);
      throw error;
    }
    if (!stored.created) {
      // Another node created the key between the check above and the write.
      await discardUnused(context, created, stored.key);
      return alreadyExists(context, stored.key);
    }
    log(context, { key: name, type, hsm: options.hsm === true }, "key created");
    return { value: describeKey(stored.key, context.now), warnings: [] };
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
  if (request.exportable !== undefined || request.allowPlaintextBackup !== undefined) {
    await rejectIfReferenced(
      context,
      name,
      "configure",
      "KMIP's Extractable and Sensitive attributes decide whether it is exportable",
    );
  }
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

/**
 * Adds a new key version; new encryptions and signatures use it. An
 * HSM-held key gets new HSM objects for the version, and objects made for
 * an attempt that was not stored are destroyed again.
 */
export async function rotateNamedKey(
  context: OperationContext,
  name: string,
): Promise<Outcome<KeyInfo>> {
  const warnings: string[] = [];
  const created: HsmObjectRef[] = [];
  let key: ManagedKey;
  try {
    key = await context.store.update(name, async (current) => {
      checkKeyUse(context, current, "rotate", warnings);
      if (current.hsm !== true) return rotateKey(current, context.now);
      const material = await generateHsmVersion(context, current, current.latestVersion + 1);
      if (material.hsmObject !== undefined) created.push(material.hsmObject);
      return rotateKey(current, context.now, material);
    });
  } catch (error) {
    await discardUnused(context, created, undefined);
    throw error;
  }
  await discardUnused(context, created, key);
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
  // A destroyed key keeps its references as metadata; the objects themselves go.
  if (key.state === "destroyed" && from !== "destroyed") {
    await destroyHsmObjects(context, hsmObjectsOf(key), name, "key destroyed");
  }
  return { value: describeKey(key, context.now), warnings: [] };
}

/** Permanently removes the versions below `minAvailableVersion`. */
export async function trimNamedKey(
  context: OperationContext,
  name: string,
  minAvailableVersion: number,
): Promise<void> {
  let dropped: HsmObjectRef[] = [];
  await context.store.update(name, (current) => {
    const trimmed = trimKey(current, minAvailableVersion, context.now);
    dropped = droppedHsmObjects(current, trimmed);
    return trimmed;
  });
  log(context, { key: name, minAvailableVersion }, "key trimmed");
  await destroyHsmObjects(context, dropped, name, "versions trimmed");
}

/**
 * Throws `deletion_not_allowed` (for a deletion) or `invalid_state` when
 * another part of Keyward refers to key `name` (see
 * `KeyStore.referenceOf`): a KMIP object's key follows KMIP's
 * attributes and lifecycle. A deletion is allowed once the key is
 * destroyed, because nothing can use it any more. `remedy` is the next
 * step that the error message names.
 */
async function rejectIfReferenced(
  context: OperationContext,
  name: string,
  action: "delete" | "replace" | "configure",
  remedy: string,
): Promise<void> {
  const holder = await context.store.referenceOf(name);
  if (holder === undefined) return;
  const deletion = action === "delete";
  if (deletion && (await context.store.find(name))?.state === "destroyed") return;
  const owner = holder === "kmip" ? "the key of a KMIP object" : `used by ${holder}`;
  const what =
    action === "configure" ? "change its exportable or allow_plaintext_backup" : `${action} it`;
  throw new KeywardError(
    deletion ? "deletion_not_allowed" : "invalid_state",
    `key "${name}" is ${owner}, so transit cannot ${what}; ${remedy}`,
  );
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
  await rejectIfReferenced(
    context,
    name,
    "delete",
    "destroy the key first: KMIP Destroy of each of its objects (a replaced object before its replacement), or POST keys/:name/state with state destroyed",
  );
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
  if (kind !== "public-key") rejectHsmMaterialUse(key, `export of its ${kind}`, "type");
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
    if (existing?.hsm === true) {
      // Replacing it would leave its HSM objects behind, or destroy them on a mistaken force.
      throw new KeywardError(
        "invalid_state",
        `key "${key.name}" is held in the HSM, so a restore cannot replace it; restore under another name, or delete the key first`,
      );
    }
    if (existing !== undefined) {
      await rejectIfReferenced(context, key.name, "replace", "restore under another name");
    }
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
