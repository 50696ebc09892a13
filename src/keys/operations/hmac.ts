import {
  hmac as computeHmac,
  type HashAlgorithm,
  hmacVerify,
  isHashAlgorithm,
} from "../../crypto/hash.ts";
import { KeywardError } from "../../errors.ts";
import { rejectHsmMaterialUse } from "../hsm.ts";
import { hmacKeyBytes } from "../key-types/material.ts";
import { assertAllowed } from "../lifecycle.ts";
import type { ManagedKey } from "../types.ts";
import { formatVersionedValue, parseVersionedValue } from "../versioned-value.ts";
import { versionForProcessing, versionForProtection } from "../versions.ts";

export interface HmacRequest {
  input: Buffer;
  /** Default sha2-256. */
  algorithm?: HashAlgorithm;
  keyVersion?: number;
}

export interface HmacVerifyRequest {
  input: Buffer;
  hmac: string;
  algorithm?: HashAlgorithm;
}

function hashOf(algorithm: HashAlgorithm | undefined): HashAlgorithm {
  const resolved = algorithm ?? "sha2-256";
  if (!isHashAlgorithm(resolved)) {
    throw new KeywardError("invalid_field", `unsupported algorithm "${String(resolved)}"`, {
      field: "algorithm",
    });
  }
  return resolved;
}

/** Computes the HMAC of `input` with a version's HMAC key, which every key not held in an HSM has. */
export function hmac(
  key: ManagedKey,
  request: HmacRequest,
  now: Date,
): { hmac: string; keyVersion: number } {
  rejectHsmMaterialUse(key, "HMAC");
  assertAllowed(key, "hmac", now);
  const algorithm = hashOf(request.algorithm);
  const version = versionForProtection(key, request.keyVersion);
  const tag = computeHmac(algorithm, hmacKeyBytes(version), request.input);
  return { hmac: formatVersionedValue(version.version, tag), keyVersion: version.version };
}

/**
 * Checks a `keyward:v<N>:<base64>` HMAC in constant time. A mismatch returns
 * `valid: false`; a malformed string is `invalid_signature` naming "hmac".
 */
export function verifyHmac(
  key: ManagedKey,
  request: HmacVerifyRequest,
  now: Date,
): { valid: boolean; keyVersion: number } {
  rejectHsmMaterialUse(key, "HMAC");
  assertAllowed(key, "hmac-verify", now);
  const algorithm = hashOf(request.algorithm);
  const parsed = parseVersionedValue(request.hmac, "hmac", "invalid_signature");
  const version = versionForProcessing(key, parsed.version, "hmac", "invalid_signature");
  const valid = hmacVerify(algorithm, hmacKeyBytes(version), request.input, parsed.bytes);
  return { valid, keyVersion: version.version };
}
