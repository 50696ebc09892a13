import { invalidField } from "../errors.ts";
import { resolveAccountId } from "./accounts.ts";
import { CERTIFICATE_KEY_TYPES, type CertificateKeyType } from "./certificate-keys.ts";
import {
  type ConfigObject,
  optionalDuration,
  optionalMode,
  optionalPrivateMode,
  optionalString,
  rejectUnknownFields,
  requireMatching,
  requireString,
  resolvePath,
} from "./config-values.ts";

/**
 * A service certificate whose key the agent makes. `path` is the
 * certificate file, so installed-file records and reports work as for
 * other kinds. `mode` applies to the certificate, chain and CA files.
 */
export interface CertificateArtifactConfig {
  kind: "certificate";
  /** The server's artifact id: `certificate:<name>`. */
  id: string;
  name: string;
  /** Absolute path of the certificate file (`cert_path`). */
  path: string;
  keyPath: string;
  chainPath: string | undefined;
  caPath: string | undefined;
  keyType: CertificateKeyType;
  /** Permission bits of the certificate, chain and CA files (default 0644). */
  mode: number;
  /** Permission bits of the private key file (default 0600). */
  keyMode: number;
  uid: number | undefined;
  gid: number | undefined;
  /** Shell command that validates the candidate certificate, with `{path}` replaced by its quoted path. */
  check: string | undefined;
  reload: string | undefined;
  commandTimeoutMs: number;
}

const CERTIFICATE_FIELDS = [
  "kind",
  "name",
  "key_path",
  "cert_path",
  "chain_path",
  "ca_path",
  "key_type",
  "owner",
  "group",
  "mode",
  "key_mode",
  "check",
  "reload",
  "command_timeout",
];

/** Assignment names, as the server accepts them. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

function filePath(entry: ConfigObject, key: string, prefix: string, baseDir: string): string {
  const field = `${prefix}${key}`;
  const text = requireString(entry, key, field);
  if (text.endsWith("/") || text.endsWith("/.") || text.endsWith("/..")) {
    throw invalidField(field, `"${field}" must name a file, not a directory`);
  }
  return resolvePath(text, baseDir, field);
}

/** Parses one `certificate` entry of `artifacts`. `prefix` is a field path such as `artifacts[2].`. */
export function readCertificate(
  entry: ConfigObject,
  prefix: string,
  baseDir: string,
): CertificateArtifactConfig {
  rejectUnknownFields(entry, CERTIFICATE_FIELDS, prefix);
  const name = requireMatching(
    entry,
    "name",
    `${prefix}name`,
    NAME,
    '1 to 63 of letters, digits, "_", "." and "-", starting with a letter or digit',
  );
  const keyType = entry.key_type ?? "ec-p256";
  if (!(CERTIFICATE_KEY_TYPES as readonly unknown[]).includes(keyType)) {
    throw invalidField(
      `${prefix}key_type`,
      `"${prefix}key_type" must be one of ${CERTIFICATE_KEY_TYPES.join(", ")}`,
    );
  }
  const check = optionalString(entry, "check", `${prefix}check`);
  if (check !== undefined && !check.includes("{path}")) {
    throw invalidField(
      `${prefix}check`,
      `"${prefix}check" must contain {path}, which the agent replaces with the candidate certificate it checks`,
    );
  }
  const optionalPath = (key: string) =>
    entry[key] === undefined || entry[key] === null
      ? undefined
      : filePath(entry, key, prefix, baseDir);
  return {
    kind: "certificate",
    id: `certificate:${name}`,
    name,
    path: filePath(entry, "cert_path", prefix, baseDir),
    keyPath: filePath(entry, "key_path", prefix, baseDir),
    chainPath: optionalPath("chain_path"),
    caPath: optionalPath("ca_path"),
    keyType: keyType as CertificateKeyType,
    mode: optionalMode(entry, "mode", `${prefix}mode`, 0o644),
    keyMode: optionalPrivateMode(entry, "key_mode", `${prefix}key_mode`, 0o600),
    uid:
      entry.owner === undefined || entry.owner === null
        ? undefined
        : resolveAccountId(entry.owner, "passwd", `${prefix}owner`),
    gid:
      entry.group === undefined || entry.group === null
        ? undefined
        : resolveAccountId(entry.group, "group", `${prefix}group`),
    check,
    reload: optionalString(entry, "reload", `${prefix}reload`),
    commandTimeoutMs:
      1000 *
      optionalDuration(entry, "command_timeout", `${prefix}command_timeout`, {
        minSeconds: 1,
        maxSeconds: 3600,
        defaultSeconds: 30,
      }),
  };
}

/** Returns every file a certificate entry writes, with the config field that names it. */
export function certificateFiles(entry: CertificateArtifactConfig): [string, string][] {
  const files: [string, string][] = [
    ["cert_path", entry.path],
    ["key_path", entry.keyPath],
  ];
  if (entry.chainPath !== undefined) files.push(["chain_path", entry.chainPath]);
  if (entry.caPath !== undefined) files.push(["ca_path", entry.caPath]);
  return files;
}
