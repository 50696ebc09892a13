/**
 * The agent's side of `certificate` artifacts: service certificates whose
 * private keys the agent makes and keeps. The server's artifact names the
 * certificate (`common_name`, `alt_names`) and carries the certificate it
 * signed, if any. The agent sends a CSR for a key it made, and installs
 * key and certificate together once the artifact carries a certificate
 * for that key.
 *
 * Keys live in `certificate-keys.json` in the state directory (mode
 * 0600): `current` is the key of the installed certificate, `pending` a
 * newer key whose certificate has not arrived yet. During a renewal the
 * installed key and certificate stay untouched until the new certificate
 * arrives. The private keys are never sent anywhere.
 */
import { X509Certificate } from "node:crypto";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "pino";
import { removeStaleCandidates, writeFileAtomic } from "./atomic-file.ts";
import type { CertificateArtifactConfig } from "./certificate-config.ts";
import {
  type CertificateKeyType,
  certificatePublicKey,
  generateCertificateKey,
  makeCertificateCsr,
} from "./certificate-keys.ts";
import { certificateNameMismatch } from "./certificate-names.ts";
import { DeviceApiError, type DeviceClient } from "./client.ts";
import { describeFailure, runShellCommand, substitutePath } from "./commands.ts";
import type { InstallContext, InstallOutcome } from "./install.ts";
import { type Artifact, contentAt } from "./protocol.ts";
import { contentSha256 } from "./state.ts";

export const CERTIFICATE_KEYRING_FILE = "certificate-keys.json";

/** Time after which a CSR is sent again although the state did not change, in milliseconds. */
export const REJECTED_RETRY_MS = 15 * 60_000;

/** One key pair with the names it was made for. */
export interface CertificateKey {
  /** PKCS#8 PEM. */
  private_key: string;
  /** Base64 SubjectPublicKeyInfo DER, compared with the public key of the server's certificate. */
  public_key: string;
  key_type: CertificateKeyType;
  common_name: string;
  alt_names: string[];
  created_at: string;
  /** The state etag when a CSR for this key was last sent. A CSR is sent once per etag. */
  posted_etag?: string;
  /** Time that CSR was sent (RFC 3339). */
  posted_at?: string;
}

/** The keys of one certificate artifact. */
export interface CertificateKeys {
  current?: CertificateKey;
  pending?: CertificateKey;
}

/** Every certificate artifact's keys, by artifact id. */
export interface CertificateKeyring {
  format: 1;
  certificates: Record<string, CertificateKeys>;
}

/** Reads the keyring, or returns an empty one when the file does not exist. */
export async function loadCertificateKeyring(stateDir: string): Promise<CertificateKeyring> {
  const path = join(stateDir, CERTIFICATE_KEYRING_FILE);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return { format: 1, certificates: {} };
    throw error;
  }
  const parsed = JSON.parse(text) as CertificateKeyring;
  if (
    parsed.format !== 1 ||
    parsed.certificates === null ||
    typeof parsed.certificates !== "object"
  ) {
    throw new Error(`${path} has an unknown format`);
  }
  return parsed;
}

/** Writes the keyring atomically with mode 0600 and syncs it, before any CSR for a new key is sent. */
export async function saveCertificateKeyring(
  stateDir: string,
  keyring: CertificateKeyring,
): Promise<void> {
  await writeFileAtomic(
    join(stateDir, CERTIFICATE_KEYRING_FILE),
    `${JSON.stringify(keyring, null, 2)}\n`,
    { mode: 0o600 },
  );
}

/** The names and certificate an artifact carries, checked. */
interface ArtifactNames {
  commonName: string;
  altNames: string[];
  certificate: string | null;
  caChain: string[];
  /** Unix seconds, or null before the first certificate. */
  renewAfter: number | null;
}

/** Reads the artifact's fields at `now` (Unix milliseconds), or returns a message when they are malformed. */
function readFields(artifact: Artifact, now: number): ArtifactNames | string {
  const fields = contentAt(artifact, now).fields;
  const { common_name, alt_names, certificate, ca_chain, renew_after } = fields;
  if (typeof common_name !== "string") return "the artifact has no common_name";
  if (!Array.isArray(alt_names) || alt_names.some((name) => typeof name !== "string")) {
    return "the artifact's alt_names is not a list of strings";
  }
  if (certificate !== null && typeof certificate !== "string") {
    return "the artifact's certificate is neither PEM nor null";
  }
  const chain = Array.isArray(ca_chain) ? ca_chain.filter((item) => typeof item === "string") : [];
  return {
    commonName: common_name,
    altNames: alt_names as string[],
    certificate: certificate as string | null,
    caChain: chain,
    renewAfter: typeof renew_after === "number" ? renew_after : null,
  };
}

function sameNames(key: CertificateKey, names: ArtifactNames): boolean {
  return (
    key.common_name === names.commonName &&
    JSON.stringify(key.alt_names) === JSON.stringify(names.altNames)
  );
}

/** Client, state directory and logger that certificate requests use. */
export interface CertificateRequestContext {
  client: DeviceClient;
  stateDir: string;
  log: Logger;
  signal?: AbortSignal | undefined;
  /** Unix milliseconds. */
  now: () => number;
}

/**
 * Sends a CSR for `entry` when the device needs a new certificate: it has
 * none for a key it has, the names changed, or `renew_after` has
 * passed. The CSR is for the pending key, made (and saved) here when
 * there is none for these names. Returns true when a CSR was accepted, so
 * the caller fetches the state again. A CSR is sent once per state etag.
 * A rejected one is logged and sent again when the state changes or
 * after `REJECTED_RETRY_MS`.
 */
export async function requestCertificate(
  context: CertificateRequestContext,
  entry: CertificateArtifactConfig,
  artifact: Artifact,
  etag: string,
  keyring: CertificateKeyring,
): Promise<boolean> {
  const log = context.log.child({ artifact: entry.id });
  const names = readFields(artifact, context.now());
  if (typeof names === "string") {
    log.error({ reason: names }, "invalid certificate artifact; no CSR is sent");
    return false;
  }
  keyring.certificates[entry.id] ??= {};
  const keys = keyring.certificates[entry.id] as CertificateKeys;
  const served = names.certificate === null ? undefined : certificatePublicKey(names.certificate);
  // The certificate for the pending key has arrived, and installing it promotes the key.
  if (keys.pending !== undefined && served === keys.pending.public_key) return false;

  const current = keys.current;
  const renewDue = names.renewAfter !== null && context.now() >= names.renewAfter * 1000;
  const needed =
    current === undefined ||
    served !== current.public_key ||
    !sameNames(current, names) ||
    renewDue;
  if (!needed) return false;

  if (
    keys.pending === undefined ||
    !sameNames(keys.pending, names) ||
    keys.pending.key_type !== entry.keyType
  ) {
    const pair = generateCertificateKey(entry.keyType);
    keys.pending = {
      private_key: pair.privateKeyPem,
      public_key: pair.publicKeySpki,
      key_type: entry.keyType,
      common_name: names.commonName,
      alt_names: names.altNames,
      created_at: new Date(context.now()).toISOString(),
    };
    await saveCertificateKeyring(context.stateDir, keyring);
    log.info(
      { key_type: entry.keyType, renewal: current !== undefined },
      "made a new key for a certificate",
    );
  }
  const pending = keys.pending;
  // A CSR the server rejected is sent again when the state changes, or after
  // REJECTED_RETRY_MS, because fixing the PKI role changes no artifact.
  const postedAt = pending.posted_at === undefined ? 0 : Date.parse(pending.posted_at);
  if (pending.posted_etag === etag && context.now() < postedAt + REJECTED_RETRY_MS) return false;

  const csr = await makeCertificateCsr(
    { privateKeyPem: pending.private_key, publicKeySpki: pending.public_key },
    pending.key_type,
    { commonName: pending.common_name, altNames: pending.alt_names },
  );
  let accepted = false;
  try {
    await context.client.request("POST", `/v1/devices/self/certificates/${entry.name}`, {
      body: { csr },
      signal: context.signal,
    });
    accepted = true;
    log.info({ common_name: pending.common_name }, "sent a certificate signing request");
  } catch (error) {
    // Network errors and 5xx are thrown, so the round is retried with backoff.
    if (!(error instanceof DeviceApiError) || error.transient) throw error;
    log.error({ err: error.message, code: error.code }, "certificate signing request rejected");
  }
  pending.posted_etag = etag;
  pending.posted_at = new Date(context.now()).toISOString();
  await saveCertificateKeyring(context.stateDir, keyring);
  return accepted;
}

/** Returns the self-issued certificate of a chain (its root), or the last one when none is. */
function rootOf(chain: readonly string[]): string | undefined {
  for (const pem of chain) {
    try {
      const certificate = new X509Certificate(pem);
      if (certificate.subject === certificate.issuer) return pem;
    } catch {
      // A certificate that does not parse cannot be the root, so the next one is tried.
    }
  }
  return chain.at(-1);
}

/**
 * Installs the certificate the artifact carries, with the key it was
 * issued for, when that key is the agent's current or pending key. The
 * order limits the time in which the key file and the certificate file
 * do not match to one rename:
 *
 * 1. The certificate is written to a candidate file next to `cert_path`
 *    and synced, and `check` runs on it.
 * 2. The key is written to a candidate next to `key_path`, synced, and
 *    renamed over `key_path`.
 * 3. The certificate candidate is renamed over `cert_path`.
 * 4. `chain_path` and `ca_path` are replaced, then the pending key
 *    becomes the current one and `reload` runs.
 *
 * A crash between steps 2 and 4 leaves the pending key pending, so the
 * next round installs both files again.
 */
export async function installCertificate(
  context: InstallContext & { stateDir: string },
  entry: CertificateArtifactConfig,
  artifact: Artifact,
): Promise<InstallOutcome> {
  const version = contentAt(artifact, context.now()).version;
  const names = readFields(artifact, context.now());
  if (typeof names === "string") return { status: "failed", reason: names };
  if (names.certificate === null) {
    return { status: "waiting", reason: "the server has not issued this certificate yet" };
  }
  const keyring = await loadCertificateKeyring(context.stateDir);
  const keys = keyring.certificates[entry.id] ?? {};
  const served = certificatePublicKey(names.certificate);
  if (served === undefined) return { status: "failed", reason: "the certificate is not valid PEM" };
  const promote = keys.pending !== undefined && keys.pending.public_key === served;
  const key = promote ? keys.pending : keys.current;
  if (key === undefined || key.public_key !== served) {
    return {
      status: "waiting",
      reason:
        "the server's certificate is not for a key this agent holds; waiting for the certificate of its new key",
    };
  }
  // The key was made for the names its CSR requested, and a certificate for other names is not installed.
  const mismatch = certificateNameMismatch(names.certificate, key.common_name, key.alt_names);
  if (mismatch !== undefined) {
    return { status: "failed", reason: `${mismatch}; the previous key and certificate are kept` };
  }

  const certificateText = ensureNewline(names.certificate);
  const keyText = ensureNewline(key.private_key);
  const chainText = names.caChain.map(ensureNewline).join("");
  const root = rootOf(names.caChain);
  const rootText = root === undefined ? "" : ensureNewline(root);
  // The hash catches an assignment deleted and created again whose version repeats.
  const sha256 = contentSha256(certificateText, keyText, chainText, rootText);
  const record = context.state.installed[entry.path];
  const inPlace =
    !promote &&
    record?.id === entry.id &&
    record.version === version &&
    record.sha256 === sha256 &&
    [entry.path, entry.keyPath].every((path) => existsSync(path));
  if (inPlace) {
    if (!record.reload_pending) return { status: "unchanged", version };
    return reload(context, entry, version);
  }

  const owner = { uid: entry.uid, gid: entry.gid };
  try {
    await removeStaleCandidates(entry.path);
    await removeStaleCandidates(entry.keyPath);
    await writeFileAtomic(entry.path, certificateText, {
      mode: entry.mode,
      ...owner,
      validate: async (candidate) => {
        if (entry.check !== undefined) await runCheck(context.shell, entry, candidate);
        await writeFileAtomic(entry.keyPath, keyText, {
          mode: entry.keyMode,
          ...owner,
        });
      },
    });
    if (entry.chainPath !== undefined) {
      await removeStaleCandidates(entry.chainPath);
      await writeFileAtomic(entry.chainPath, chainText, {
        mode: entry.mode,
        ...owner,
      });
    }
    if (entry.caPath !== undefined && root !== undefined) {
      await removeStaleCandidates(entry.caPath);
      await writeFileAtomic(entry.caPath, rootText, { mode: entry.mode, ...owner });
    }
  } catch (error) {
    return { status: "failed", reason: (error as Error).message };
  }

  if (promote) {
    keys.current = key;
    delete keys.pending;
    keyring.certificates[entry.id] = keys;
    await saveCertificateKeyring(context.stateDir, keyring);
  }
  context.state.installed[entry.path] = {
    id: entry.id,
    version,
    sha256,
    installed_at: new Date(context.now()).toISOString(),
    reload_pending: entry.reload !== undefined,
  };
  // A new certificate is reported even when its version was reported before.
  delete context.state.reported[entry.id];
  await context.saveState();
  return reload(context, entry, version);
}

function ensureNewline(pem: string): string {
  return pem.endsWith("\n") ? pem : `${pem}\n`;
}

async function runCheck(
  shell: string,
  entry: CertificateArtifactConfig,
  candidate: string,
): Promise<void> {
  const result = await runShellCommand(
    shell,
    substitutePath(entry.check as string, candidate),
    entry.commandTimeoutMs,
  );
  if (!result.ok) {
    throw new Error(
      `the check command ${describeFailure(result, entry.commandTimeoutMs)}; the previous key and certificate are kept`,
    );
  }
}

async function reload(
  context: InstallContext,
  entry: CertificateArtifactConfig,
  version: number,
): Promise<InstallOutcome> {
  if (entry.reload !== undefined) {
    const result = await runShellCommand(context.shell, entry.reload, entry.commandTimeoutMs);
    if (!result.ok) {
      return {
        status: "reload_failed",
        version,
        reason: `the reload command ${describeFailure(result, entry.commandTimeoutMs)}`,
      };
    }
  }
  const record = context.state.installed[entry.path];
  if (record?.reload_pending) {
    record.reload_pending = false;
    await context.saveState();
  }
  return { status: "installed", version };
}
