import type { Credential } from "./types.ts";

/**
 * Returns a credential whose current passphrase is `passphrase`. The old
 * passphrase stays valid for `graceSeconds`, or not at all when it is 0.
 */
export function nextCredential(
  current: Credential | undefined,
  passphrase: string,
  now: Date,
  graceSeconds: number,
): Credential {
  const credential: Credential = {
    passphrase,
    generation: (current?.generation ?? 0) + 1,
    createdAt: now.toISOString(),
  };
  if (current && graceSeconds > 0) {
    credential.previous = {
      passphrase: current.passphrase,
      generation: current.generation,
      expiresAt: new Date(now.getTime() + graceSeconds * 1000).toISOString(),
    };
  }
  return credential;
}
