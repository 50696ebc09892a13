import type { Logger } from "pino";
import { DeviceApiError, type DeviceClient } from "./client.ts";
import type { WireguardArtifactConfig } from "./config.ts";
import { type Artifact, parseWireguardKeyResponse } from "./protocol.ts";
import {
  generateWireguardKey,
  type Keyring,
  type PeerKeys,
  saveKeyring,
  type WireguardKey,
} from "./wireguard-keys.ts";

/** Client, keyring location and logger that key registration uses. */
export interface RegistrationContext {
  client: DeviceClient;
  stateDir: string;
  log: Logger;
  signal?: AbortSignal | undefined;
  now?: () => Date;
}

/** Returns the public keys the server shows for a peer: active now, and active from `next.activate_at`. */
function shownKeys(artifact: Artifact): { active: unknown; upcoming: unknown } {
  return {
    active: artifact.fields.public_key ?? null,
    upcoming: artifact.next?.fields.public_key ?? null,
  };
}

/**
 * Promotes the staged key once the server shows it as the active one. Only
 * then is the old private key dropped, because until that moment the
 * configuration in use may still need it.
 */
function promoteActivatedKey(keys: PeerKeys, active: unknown): boolean {
  if (keys.staged === undefined || keys.staged.public_key !== active) return false;
  keys.current = keys.staged;
  delete keys.staged;
  return true;
}

async function postKey(
  context: RegistrationContext,
  entry: WireguardArtifactConfig,
  key: WireguardKey,
  etag: string,
): Promise<void> {
  const log = context.log.child({ artifact: entry.id, public_key: key.public_key });
  try {
    const { body } = await context.client.request("POST", "/v1/devices/self/wireguard/key", {
      body: {
        mount: entry.mount,
        network: entry.network,
        peer: entry.peer,
        public_key: key.public_key,
      },
      signal: context.signal,
    });
    const answer = parseWireguardKeyResponse(body);
    key.key_version = answer.key_version;
    key.activate_at = answer.activate_at;
    log.info(
      { key_version: answer.key_version, activate_at: answer.activate_at },
      "registered WireGuard public key",
    );
  } catch (error) {
    // A network error or 5xx is thrown, so the round is retried with backoff. A
    // rejected key is sent again only after the state changes, not every round.
    if (error instanceof DeviceApiError && !error.transient) {
      log.error({ err: error.message, code: error.code }, "WireGuard key registration rejected");
    } else {
      throw error;
    }
  }
  key.posted_etag = etag;
}

/**
 * Time after a key's announced activation during which the agent trusts
 * the server's acceptance even though the state does not show the key yet,
 * for example because a clock runs slightly behind.
 */
const ACTIVATION_GRACE_MS = 60_000;

/**
 * Decides whether `key` must be sent (again). A key the server shows needs
 * nothing. A key the server accepted needs nothing until its activation
 * time (plus a grace period) has passed, because `next` shows only the
 * soonest activation, which may be another peer's. Otherwise a key is sent
 * once per state etag.
 */
function needsRegistration(
  key: WireguardKey,
  artifact: Artifact,
  etag: string,
  now: Date,
): boolean {
  const { active, upcoming } = shownKeys(artifact);
  if (key.public_key === active || key.public_key === upcoming) return false;
  if (key.activate_at !== undefined) {
    const activation = Date.parse(key.activate_at);
    if (now.getTime() < activation + ACTIVATION_GRACE_MS) return false;
  }
  return key.posted_etag !== etag;
}

/**
 * Brings one peer's keys in line with the server's state, and returns true
 * when it sent a key (the state then changes, so the caller fetches again).
 *
 * - With no key yet, a key pair is generated.
 * - When the server requests a rotation (`rotate_key`) and no key is staged,
 *   a new key pair is generated and staged.
 * - The newest key is sent when the server does not show it and has not
 *   accepted it (see `needsRegistration`).
 *
 * Every new key is saved (and synced) before its public key is sent.
 */
export async function registerWireguardKey(
  context: RegistrationContext,
  entry: WireguardArtifactConfig,
  artifact: Artifact,
  etag: string,
  keyring: Keyring,
): Promise<boolean> {
  const now = context.now?.() ?? new Date();
  keyring.peers[entry.id] ??= {};
  const keys = keyring.peers[entry.id] as PeerKeys;
  const { active } = shownKeys(artifact);
  let changed = promoteActivatedKey(keys, active);
  if (changed) {
    context.log.info(
      { artifact: entry.id, public_key: active },
      "WireGuard key rotation complete; the old private key is deleted",
    );
  }

  if (keys.current === undefined) {
    keys.current = generateWireguardKey(now);
    changed = true;
  } else if (artifact.fields.rotate_key === true && keys.staged === undefined) {
    keys.staged = generateWireguardKey(now);
    changed = true;
    context.log.info({ artifact: entry.id }, "the server requested a WireGuard key rotation");
  }
  if (changed) await saveKeyring(context.stateDir, keyring);

  const newest = keys.staged ?? keys.current;
  if (!needsRegistration(newest, artifact, etag, now)) return false;
  await postKey(context, entry, newest, etag);
  await saveKeyring(context.stateDir, keyring);
  return true;
}
