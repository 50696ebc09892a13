import { privateKeyDerToPem } from "../crypto/asymmetric-keys.ts";
import { KeywardError, notFound } from "../errors.ts";
import { rejectHsmMaterialUse } from "./hsm.ts";
import { keyTypeDefinition } from "./key-types/index.ts";
import { assertAllowed } from "./lifecycle.ts";
import { EXPORT_KINDS, type ExportKind, type KeyVersion, type ManagedKey } from "./types.ts";

function requireKind(key: ManagedKey, kind: ExportKind): void {
  if (!(EXPORT_KINDS as readonly string[]).includes(kind)) {
    throw new KeywardError(
      "invalid_field",
      `unknown export kind "${String(kind)}"; expected one of ${EXPORT_KINDS.join(", ")}`,
      { field: "kind" },
    );
  }
  const kinds = keyTypeDefinition(key.type).exportKinds;
  if (kind !== "hmac-key" && !kinds.includes(kind)) {
    throw new KeywardError("unsupported_operation", `${key.type} keys have no ${kind} to export`);
  }
}

/** Checks that private material may leave: an exportable key in a state that allows export. */
function requireExportable(key: ManagedKey, now: Date | undefined): void {
  if (!key.exportable) {
    throw new KeywardError("invalid_state", `key "${key.name}" is not exportable`);
  }
  if (now !== undefined) {
    assertAllowed(key, "export", now);
  } else if (key.state !== "active") {
    throw new KeywardError(
      "invalid_state",
      `key "${key.name}" is ${key.state}, which does not allow export`,
    );
  }
}

function selectVersions(key: ManagedKey, version: number | "latest" | undefined): KeyVersion[] {
  if (version === undefined) {
    return Object.values(key.versions).sort((a, b) => a.version - b.version);
  }
  const number = version === "latest" ? key.latestVersion : version;
  const found = key.versions[String(number)];
  if (found === undefined) throw notFound(`key version ${String(version)}`);
  return [found];
}

function material(key: ManagedKey, version: KeyVersion, kind: ExportKind): string {
  const value =
    kind === "hmac-key"
      ? version.hmacKey
      : kind === "public-key"
        ? version.publicKeyPem
        : version.secret;
  if (value === undefined) {
    throw new KeywardError("invalid_state", `key version ${version.version} has no ${kind}`);
  }
  if (kind === "encryption-key" || kind === "signing-key") {
    const format = keyTypeDefinition(key.type).secretExportFormat;
    if (format === "pkcs8-pem") return privateKeyDerToPem(Buffer.from(value, "base64"));
  }
  return value;
}

/**
 * Exports key material by version number (as a string key), as Vault's export endpoint does.
 *
 * Symmetric keys and HMAC keys come as base64, asymmetric private keys as
 * PKCS#8 PEM, public keys as SPKI PEM. Everything except `public-key` needs
 * an exportable key that is not held in an HSM, whose state allows export: at `now` when given,
 * otherwise by its stored state. `version` selects one version; absent
 * means every version the key still has.
 */
export function exportKey(
  key: ManagedKey,
  kind: ExportKind,
  version?: number | "latest",
  now?: Date,
): Record<string, string> {
  requireKind(key, kind);
  if (kind !== "public-key") {
    rejectHsmMaterialUse(key, `export of its ${kind}`);
    requireExportable(key, now);
  }
  const exported: Record<string, string> = {};
  for (const selected of selectVersions(key, version)) {
    exported[String(selected.version)] = material(key, selected, kind);
  }
  return exported;
}

export interface VersionInfo {
  /** The curve or algorithm of an asymmetric key, as Vault names it ("P-256", "ed25519", "rsa-2048"). */
  name?: string;
  /** SPKI PEM; absent for symmetric keys and derived ed25519 keys, whose public keys depend on the context. */
  public_key?: string;
  /** ISO 8601 creation time of the version. */
  creation_time: string;
}

/** Returns per-version information for the key read endpoint, without secrets. */
export function publicKeyInfo(key: ManagedKey): Record<string, VersionInfo> {
  const publicKeyName = keyTypeDefinition(key.type).publicKeyName;
  const info: Record<string, VersionInfo> = {};
  for (const version of Object.values(key.versions).sort((a, b) => a.version - b.version)) {
    const entry: VersionInfo = { creation_time: version.createdAt };
    if (publicKeyName !== undefined) entry.name = publicKeyName;
    if (version.publicKeyPem !== undefined && !key.derived) entry.public_key = version.publicKeyPem;
    info[String(version.version)] = entry;
  }
  return info;
}
