import { createHmac } from "node:crypto";
import { randomBytes } from "../../crypto/random.ts";
import { KEY_BYTES } from "./keys.ts";
import type { PeerRecord } from "./types.ts";

const INFO_LABEL = "keyward wireguard preshared key v1";
const FIRST_BLOCK = Buffer.from([1]);

/** Decoded secrets of the peer records in the service's snapshots, so a render decodes each once. */
const decodedSecrets = new WeakMap<PeerRecord, Buffer>();

function secretOf(peer: PeerRecord): Buffer {
  let secret = decodedSecrets.get(peer);
  if (secret === undefined) {
    secret = Buffer.from(peer.pskSecret, "base64");
    decodedSecrets.set(peer, secret);
  }
  return secret;
}

/** Generates a peer's preshared-key secret; a new one goes with every new key of the peer. */
export function newPskSecret(): string {
  return randomBytes(KEY_BYTES).toString("base64");
}

/**
 * Returns the first 32-byte block of HKDF-Expand with SHA-256 (RFC 5869,
 * section 2.3): HMAC-SHA256(prk, info || 0x01).
 */
export function hkdfExpandBlock(prk: Uint8Array, info: Uint8Array): Buffer {
  return createHmac("sha256", prk).update(info).update(FIRST_BLOCK).digest();
}

/**
 * Derives the preshared key of the pair `a`–`b` from both peers' 32-byte
 * random secrets, ordered by peer id so both sides get the same key. The
 * pair's key therefore changes whenever either peer's key rotates, differs
 * for every pair, and reveals neither secret: a peer that receives its
 * preshared keys learns nothing about other pairs' keys. Both secrets are
 * stored behind the barrier only.
 *
 * The secrets are uniformly random, so HKDF's extract step is skipped and
 * they key the expand step directly, as RFC 5869 section 3.3 allows. This
 * keeps a render of a large mesh, one key per listed peer, cheap:
 * node:crypto's `hkdfSync` costs several HMAC calls' time per key.
 */
export function presharedKey(a: PeerRecord, b: PeerRecord): string {
  const [first, second] = a.id < b.id ? [a, b] : [b, a];
  const prk = Buffer.concat([secretOf(first), secretOf(second)]);
  const info = Buffer.from(`${INFO_LABEL}\0${first.id}\0${second.id}`, "utf8");
  return hkdfExpandBlock(prk, info).toString("base64");
}
