import { KeywardError } from "../../errors.ts";
import type { KeyVersion } from "../types.ts";

/** Length of the HMAC key every version of a non-`hmac` key carries, in bytes. */
export const VERSION_HMAC_KEY_LENGTH = 32;

function missingMaterial(version: KeyVersion, what: string): KeywardError {
  // Lifecycle checks run first, so this means the stored key is inconsistent.
  return new KeywardError("internal", "key material is missing", {
    details: { version: version.version, missing: what },
  });
}

/** Returns the decoded secret of a version; throws `internal` when it is absent. */
export function secretBytes(version: KeyVersion): Buffer {
  if (version.secret === undefined) throw missingMaterial(version, "secret");
  return Buffer.from(version.secret, "base64");
}

/** Returns the decoded HMAC key of a version; throws `internal` when it is absent. */
export function hmacKeyBytes(version: KeyVersion): Buffer {
  if (version.hmacKey === undefined) throw missingMaterial(version, "hmacKey");
  return Buffer.from(version.hmacKey, "base64");
}

/** Returns the public key PEM of a version; throws `internal` when it is absent. */
export function publicKeyPem(version: KeyVersion): string {
  if (version.publicKeyPem === undefined) throw missingMaterial(version, "publicKeyPem");
  return version.publicKeyPem;
}
