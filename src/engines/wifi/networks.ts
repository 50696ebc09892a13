import { KeywardError, missingField } from "../../errors.ts";
import { nextCredential } from "./credentials.ts";
import { DEFAULT_PASSPHRASE_POLICY, generatePassphrase } from "./passphrase.ts";
import { checkWpaPskLineLength } from "./psk-line-length.ts";
import {
  type KeyRecord,
  type NetworkRecord,
  SECURITY_MODES,
  type SecurityMode,
  usesPassphrase,
} from "./types.ts";
import {
  durationSeconds,
  passphrasePolicy,
  ssidBytes,
  stringList,
  validateDeviceName,
  validatePassphrase,
  validateVlan,
} from "./validation.ts";

/** Maximum grace window in seconds: 30 days. */
const MAX_GRACE_SECONDS = 30 * 24 * 3600;
const MAX_VLANS = 64;

/** A network write as the routes pass it. Undefined fields keep their values. */
export interface NetworkInput {
  ssid?: unknown;
  ssidHex?: unknown;
  security?: unknown;
  hidden?: unknown;
  vlans?: unknown;
  passphrase?: unknown;
  generatePassphrase?: unknown;
  passphrasePolicy?: unknown;
  rotationPeriod?: unknown;
  graceWindow?: unknown;
  accessPointDevices?: unknown;
  accessPointGroups?: unknown;
  /** A PKI mount path. Null removes it together with `pkiIssuer`. */
  pkiMount?: unknown;
  /** An issuer of `pkiMount` by name or id. Null selects the mount's default issuer again. */
  pkiIssuer?: unknown;
}

function readSecurity(value: unknown): SecurityMode {
  if (!SECURITY_MODES.includes(value as SecurityMode)) {
    throw new KeywardError(
      "invalid_field",
      `"security" must be one of ${SECURITY_MODES.join(", ")}`,
      { field: "security" },
    );
  }
  return value as SecurityMode;
}

function readVlans(value: unknown): number[] {
  if (!Array.isArray(value) || value.length > MAX_VLANS) {
    throw new KeywardError(
      "invalid_field",
      `"vlans" must be a list of at most ${MAX_VLANS} VLAN IDs`,
      {
        field: "vlans",
      },
    );
  }
  const vlans = new Set(value.map((vlan, index) => validateVlan(vlan, `vlans[${index}]`)));
  return [...vlans].sort((a, b) => a - b);
}

function readNames(value: unknown, field: string): string[] {
  return [...new Set(stringList(value, field).map((name) => validateDeviceName(name, field)))];
}

/**
 * Returns the network record that results from applying `input` to
 * `existing` (undefined at creation), checking the result as a whole: the
 * keys' VLANs stay in the list, the shared passphrase suits the security
 * mode, and enterprise networks have no passphrases. Throws before anything
 * is stored. A new network's version starts above `retiredVersion`, the
 * last version of a deleted network of the same name, so agents never see
 * a version again with other files.
 */
export function applyNetworkInput(
  name: string,
  existing: NetworkRecord | undefined,
  keys: readonly KeyRecord[],
  input: NetworkInput,
  now: Date,
  retiredVersion = 0,
): NetworkRecord {
  if (!existing && input.ssid === undefined && input.ssidHex === undefined)
    throw missingField("ssid");
  if (!existing && input.security === undefined) throw missingField("security");
  const record: NetworkRecord = existing
    ? structuredClone(existing)
    : {
        name,
        ssidHex: "",
        security: "wpa2-psk",
        hidden: false,
        vlans: [],
        passphrasePolicy: { ...DEFAULT_PASSPHRASE_POLICY },
        rotationPeriodSeconds: 0,
        graceWindowSeconds: 0,
        accessPoints: { devices: [], groups: [] },
        version: retiredVersion,
        createdAt: now.toISOString(),
        updatedAt: now.toISOString(),
      };

  if (input.ssid !== undefined || input.ssidHex !== undefined) {
    record.ssidHex = ssidBytes(input.ssid, input.ssidHex).toString("hex");
  }
  if (input.security !== undefined) record.security = readSecurity(input.security);
  if (input.hidden !== undefined) {
    if (typeof input.hidden !== "boolean") {
      throw new KeywardError("invalid_field", '"hidden" must be true or false', {
        field: "hidden",
      });
    }
    record.hidden = input.hidden;
  }
  if (input.vlans !== undefined) record.vlans = readVlans(input.vlans);
  if (input.passphrasePolicy !== undefined) {
    record.passphrasePolicy = passphrasePolicy(input.passphrasePolicy, record.passphrasePolicy);
  }
  if (input.rotationPeriod !== undefined) {
    record.rotationPeriodSeconds = durationSeconds(input.rotationPeriod, "rotation_period");
  }
  if (input.graceWindow !== undefined) {
    const grace = durationSeconds(input.graceWindow, "grace_window");
    if (grace > MAX_GRACE_SECONDS) {
      throw new KeywardError("invalid_field", '"grace_window" must be at most 30 days', {
        field: "grace_window",
      });
    }
    record.graceWindowSeconds = grace;
  }
  if (input.rotationPeriod !== undefined || input.graceWindow !== undefined) {
    checkGraceWithinPeriod(
      record,
      input.graceWindow !== undefined ? "grace_window" : "rotation_period",
    );
  }
  if (input.accessPointDevices !== undefined) {
    record.accessPoints.devices = readNames(input.accessPointDevices, "access_point_devices");
  }
  if (input.accessPointGroups !== undefined) {
    record.accessPoints.groups = readNames(input.accessPointGroups, "access_point_groups");
  }

  applyEapTlsInput(record, input);

  if (input.passphrase !== undefined && input.generatePassphrase === true) {
    throw new KeywardError("invalid_field", 'set "passphrase" or "generate_passphrase", not both', {
      field: "generate_passphrase",
    });
  }
  if (input.generatePassphrase !== undefined && typeof input.generatePassphrase !== "boolean") {
    throw new KeywardError("invalid_field", '"generate_passphrase" must be true or false', {
      field: "generate_passphrase",
    });
  }
  const passphraseRequested = input.passphrase !== undefined || input.generatePassphrase === true;
  if (passphraseRequested && !usesPassphrase(record.security)) {
    throw new KeywardError("invalid_field", `a ${record.security} network has no passphrase`, {
      field: input.passphrase !== undefined ? "passphrase" : "generate_passphrase",
    });
  }
  if (input.passphrase !== undefined) {
    const passphrase = validatePassphrase(input.passphrase, record.security);
    record.shared = nextCredential(record.shared, passphrase, now, record.graceWindowSeconds);
  } else if (input.generatePassphrase === true) {
    const passphrase = generatePassphrase(record.passphrasePolicy);
    record.shared = nextCredential(record.shared, passphrase, now, record.graceWindowSeconds);
  } else if (record.shared && input.security !== undefined) {
    checkSharedPassphrase(record);
  }

  if (!usesPassphrase(record.security) && keys.length > 0) {
    throw new KeywardError(
      "invalid_state",
      `network "${name}" has per-device keys, which a ${record.security} network cannot use; delete them first`,
      { field: "security" },
    );
  }
  if (!usesPassphrase(record.security) && record.shared) {
    throw new KeywardError(
      "invalid_state",
      `network "${name}" has a shared passphrase, which a ${record.security} network cannot use`,
      { field: "security" },
    );
  }
  if (record.eapTls && usesPassphrase(record.security)) {
    throw new KeywardError(
      "invalid_state",
      `network "${name}" is ${record.security}; "pki_mount" applies only to enterprise networks, so set it to null in the same write`,
      { field: "pki_mount" },
    );
  }
  for (const key of keys) {
    if (key.vlan !== undefined && !record.vlans.includes(key.vlan)) {
      throw new KeywardError(
        "invalid_state",
        `VLAN ${key.vlan} is used by key "${key.name}"; move the key before removing the VLAN`,
        { field: "vlans" },
      );
    }
  }
  if (input.passphrasePolicy !== undefined || input.security !== undefined) {
    const field = input.passphrasePolicy !== undefined ? "passphrase_policy.length" : "security";
    for (const key of keys) checkWpaPskLineLength(record, key, field);
  }
  record.version += 1;
  record.updatedAt = now.toISOString();
  return record;
}

/**
 * Rejects a grace window longer than the rotation period. Only one previous
 * passphrase is kept, so each scheduled rotation would end the window of
 * the one before.
 */
function checkGraceWithinPeriod(record: NetworkRecord, field: string): void {
  const period = record.rotationPeriodSeconds;
  const grace = record.graceWindowSeconds;
  if (period === 0 || grace <= period) return;
  throw new KeywardError(
    "invalid_field",
    `"grace_window" (${grace}s) must not be longer than "rotation_period" (${period}s), because a rotation ends the grace window of the previous one`,
    { field },
  );
}

/** Rejects a security change that the stored shared passphrase cannot follow, such as a raw PSK on an SAE network. */
function checkSharedPassphrase(record: NetworkRecord): void {
  const shared = record.shared;
  if (!shared || !usesPassphrase(record.security)) return;
  try {
    validatePassphrase(shared.passphrase, record.security);
  } catch {
    throw new KeywardError(
      "invalid_state",
      `the shared passphrase of network "${record.name}" cannot be used with ${record.security}; set a new "passphrase" in the same write`,
      { field: "security" },
    );
  }
}

const PKI_MOUNT = /^(?=.{1,128}$)[A-Za-z0-9_-]+(?:\/[A-Za-z0-9_-]+)*$/;
const ISSUER = /^[A-Za-z0-9_-]{1,128}$/;

/** Applies `pki_mount` and `pki_issuer`. The issuer needs a mount, and removing the mount removes the issuer. */
function applyEapTlsInput(record: NetworkRecord, input: NetworkInput): void {
  if (input.pkiMount === null) delete record.eapTls;
  else if (input.pkiMount !== undefined) {
    if (typeof input.pkiMount !== "string" || !PKI_MOUNT.test(input.pkiMount)) {
      throw new KeywardError("invalid_field", '"pki_mount" must be a mount path such as "pki"', {
        field: "pki_mount",
      });
    }
    record.eapTls = { pkiMount: input.pkiMount, issuer: record.eapTls?.issuer ?? "default" };
  }
  if (input.pkiIssuer === undefined) return;
  if (!record.eapTls) {
    throw new KeywardError("invalid_field", '"pki_issuer" needs a "pki_mount"', {
      field: "pki_issuer",
    });
  }
  if (input.pkiIssuer === null) record.eapTls.issuer = "default";
  else if (typeof input.pkiIssuer !== "string" || !ISSUER.test(input.pkiIssuer)) {
    throw new KeywardError(
      "invalid_field",
      '"pki_issuer" must be an issuer name or id: 1 to 128 of letters, digits, "_" and "-"',
      { field: "pki_issuer" },
    );
  } else record.eapTls.issuer = input.pkiIssuer;
}
