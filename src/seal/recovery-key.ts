import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { ROOT_KEY_BYTES } from "./root-key.ts";

/**
 * The recovery key of a PKCS#11 seal: 32 random bytes, split into recovery
 * key shares at initialisation and never stored. It unlocks nothing by
 * itself. A quorum of its shares authorises operations that need share
 * holders' consent (generating a root token, a rekey, unsealing after an
 * operator sealed), while the root key comes from the HSM.
 *
 * It has the root key's length, so its shares are split, encoded and
 * combined by the same functions as root key shares (`root-key.ts`).
 */
export const RECOVERY_KEY_BYTES = ROOT_KEY_BYTES;

/** Fixed HMAC message of the verifier, so the verifier is useful for nothing else. */
const VERIFIER_MESSAGE = Buffer.from("keyward/recovery-key-verifier/v1", "utf8");

export function generateRecoveryKey(): Buffer {
  return randomBytes(RECOVERY_KEY_BYTES);
}

/**
 * Returns the value stored to recognise the recovery key: HMAC-SHA256 keyed
 * with the recovery key over a fixed message. The key is 256 random bits,
 * so the verifier cannot be searched back to it.
 */
export function recoveryKeyVerifier(recoveryKey: Uint8Array): Buffer {
  return createHmac("sha256", recoveryKey).update(VERIFIER_MESSAGE).digest();
}

/** Checks a rebuilt recovery key against the stored verifier in constant time. */
export function recoveryKeyMatches(candidate: Uint8Array, verifier: Uint8Array): boolean {
  if (candidate.length !== RECOVERY_KEY_BYTES) return false;
  const computed = recoveryKeyVerifier(candidate);
  return computed.length === verifier.length && timingSafeEqual(computed, verifier);
}
