import { KeywardError } from "../errors.ts";
import { isCanonicalBase64 } from "../util/base64.ts";
import { rejectHsmMaterialUse } from "./hsm.ts";
import { assertAllowed } from "./lifecycle.ts";
import { validateKeyName } from "./names.ts";
import type { ManagedKey } from "./types.ts";
import { validateManagedKey } from "./validate.ts";

/** Marks a document as a Keyward key backup. */
const BACKUP_FORMAT = "keyward-key-backup";

/** Version of the backup document layout; restore rejects other versions. */
const BACKUP_FORMAT_VERSION = 1;

interface BackupDocument {
  format: typeof BACKUP_FORMAT;
  formatVersion: number;
  key: ManagedKey;
}

/**
 * Returns a plaintext backup of the key: base64 of a versioned JSON document
 * holding every version's material. The key must be exportable and allow
 * plaintext backups, as in Vault, and not be held in an HSM.
 */
export function backupKey(key: ManagedKey, now: Date): string {
  rejectHsmMaterialUse(key, "plaintext backups");
  if (!key.exportable || !key.allowPlaintextBackup) {
    throw new KeywardError(
      "invalid_state",
      `key "${key.name}" needs exportable=true and allow_plaintext_backup=true for a backup`,
    );
  }
  // A backup carries the key material, so the key's state must allow export
  // too; a destroyed key has no material left and may still be backed up.
  if (key.state !== "destroyed") assertAllowed(key, "export", now);
  const document: BackupDocument = {
    format: BACKUP_FORMAT,
    formatVersion: BACKUP_FORMAT_VERSION,
    key,
  };
  return Buffer.from(JSON.stringify(document), "utf8").toString("base64");
}

function invalidBackup(reason: string): KeywardError {
  return new KeywardError("invalid_field", `backup is invalid: ${reason}`, { field: "backup" });
}

/**
 * Parses and checks a backup from `backupKey`, which is untrusted input:
 * the encoding, the document version, every field, and that each version's
 * material fits the key type. `name`, when given, replaces the stored name.
 * Throws `invalid_field` ("backup" or "name").
 */
export function restoreKey(backup: string, name?: string): ManagedKey {
  if (typeof backup !== "string" || backup.length === 0 || !isCanonicalBase64(backup)) {
    throw invalidBackup("expected base64 text");
  }
  let document: unknown;
  try {
    document = JSON.parse(Buffer.from(backup, "base64").toString("utf8"));
  } catch (error) {
    throw new KeywardError("invalid_field", "backup is invalid: not a JSON document", {
      field: "backup",
      cause: error,
    });
  }
  if (typeof document !== "object" || document === null || Array.isArray(document)) {
    throw invalidBackup("expected a JSON object");
  }
  const fields = document as Record<string, unknown>;
  if (fields.format !== BACKUP_FORMAT) throw invalidBackup(`format must be "${BACKUP_FORMAT}"`);
  if (fields.formatVersion !== BACKUP_FORMAT_VERSION) {
    throw invalidBackup(
      `formatVersion ${JSON.stringify(fields.formatVersion)} is not supported; expected the number ${BACKUP_FORMAT_VERSION}`,
    );
  }
  const unknown = Object.keys(fields).filter(
    (field) => !["format", "formatVersion", "key"].includes(field),
  );
  if (unknown.length > 0) throw invalidBackup(`unknown field "${unknown[0]}"`);

  const key = validateManagedKey(fields.key, "backup");
  if (name !== undefined) key.name = validateKeyName(name);
  return key;
}
