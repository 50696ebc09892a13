import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { generateX25519KeyPair } from "../crypto/x25519.ts";
import { writeFileAtomic } from "./atomic-file.ts";

/**
 * A WireGuard key as `wg genkey` and `wg pubkey` print it: canonical padded
 * base64 of 32 bytes. 32 bytes fill 42 characters and 4 bits of the 43rd,
 * whose 2 low bits must be zero, and one `=` follows.
 */
const KEY_TEXT = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/;

/** True when `text` is a WireGuard key in canonical base64 (44 characters, 32 bytes). */
export function isWireguardKey(text: unknown): text is string {
  return typeof text === "string" && KEY_TEXT.test(text);
}

/** An X25519 key pair in WireGuard's base64 form. */
export interface WireguardKey {
  private_key: string;
  public_key: string;
  created_at: string;
  /** The state etag when this key was last sent to the server. A key is sent once per etag. */
  posted_etag?: string;
  /** Key version the server returned for this key. */
  key_version?: number;
  /** Activation time the server returned for this key (RFC 3339). */
  activate_at?: string;
}

/** The keys of one peer: the active one, and a newer one waiting for activation. */
export interface PeerKeys {
  current?: WireguardKey;
  staged?: WireguardKey;
}

/** Every peer's keys, stored in the state directory as wireguard-keys.json (mode 0600). */
export interface Keyring {
  format: 1;
  /** Keys by artifact id, `wireguard:<mount>:<network>:<peer>`. */
  peers: Record<string, PeerKeys>;
}

export const KEYRING_FILE = "wireguard-keys.json";

/** Generates an X25519 key pair in base64, as `wg genkey | tee priv | wg pubkey` gives. */
export function generateWireguardKey(now = new Date()): WireguardKey {
  const { publicKey, privateKey } = generateX25519KeyPair();
  return {
    private_key: privateKey.toString("base64"),
    public_key: publicKey.toString("base64"),
    created_at: now.toISOString(),
  };
}

/** Returns the private key of the pair whose public key is `publicKey`, if the peer has it. */
export function privateKeyFor(keys: PeerKeys, publicKey: unknown): string | undefined {
  if (typeof publicKey !== "string") return undefined;
  for (const key of [keys.current, keys.staged]) {
    if (key?.public_key === publicKey) return key.private_key;
  }
  return undefined;
}

/** Reads the keyring, or returns an empty one when the file does not exist. */
export async function loadKeyring(stateDir: string): Promise<Keyring> {
  const path = join(stateDir, KEYRING_FILE);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return { format: 1, peers: {} };
    throw error;
  }
  const parsed = JSON.parse(text) as Keyring;
  if (parsed.format !== 1 || parsed.peers === null || typeof parsed.peers !== "object") {
    throw new Error(`${path} has an unknown format`);
  }
  return parsed;
}

/**
 * Writes the keyring atomically with mode 0600 and syncs it. A new key is
 * saved this way before its public key is sent to the server, so the server
 * never activates a key whose private half a crash could lose.
 */
export async function saveKeyring(stateDir: string, keyring: Keyring): Promise<void> {
  await writeFileAtomic(join(stateDir, KEYRING_FILE), `${JSON.stringify(keyring, null, 2)}\n`, {
    mode: 0o600,
  });
}
