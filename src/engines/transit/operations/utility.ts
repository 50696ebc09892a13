import { randomBytes } from "node:crypto";
import { digest } from "../../../crypto/hash.ts";
import { KeywardError } from "../../../errors.ts";
import { requireValue } from "../access.ts";
import { decodeBase64 } from "../encoding.ts";

/**
 * Maximum random output per request, in bytes (128 KiB). Vault documents no
 * limit; this one bounds the work and response size of a request.
 */
export const MAX_RANDOM_BYTES = 128 * 1024;
export const DEFAULT_RANDOM_BYTES = 32;

export const OUTPUT_FORMATS = ["base64", "hex"] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/**
 * Random sources as Vault names them. Both use OpenSSL's CSPRNG through
 * node:crypto. Keyward has no second entropy source to mix in for `all`, so
 * it is accepted for compatibility and gives bytes from the same generator.
 */
export const RANDOM_SOURCES = ["platform", "all"] as const;

/** Algorithms of the hash endpoint: Vault's list, which leaves out SHA-1. */
export const HASH_ENDPOINT_ALGORITHMS = [
  "sha2-224",
  "sha2-256",
  "sha2-384",
  "sha2-512",
  "sha3-224",
  "sha3-256",
  "sha3-384",
  "sha3-512",
] as const;

function parseChoice<T extends string>(
  value: string | undefined,
  allowed: readonly T[],
  fallback: T,
  field: string,
): T {
  if (value === undefined) return fallback;
  if (!(allowed as readonly string[]).includes(value)) {
    throw new KeywardError("invalid_field", `"${field}" must be one of ${allowed.join(", ")}`, {
      field,
    });
  }
  return value as T;
}

function encode(bytes: Buffer, format: OutputFormat): string {
  return bytes.toString(format);
}

export interface RandomRequest {
  bytes?: number;
  format?: string;
  source?: string;
}

/** Returns `bytes` random bytes (default 32, at most `MAX_RANDOM_BYTES`) as base64 or hex. */
export function generateRandom(request: RandomRequest): string {
  const bytes = request.bytes ?? DEFAULT_RANDOM_BYTES;
  if (!Number.isInteger(bytes) || bytes < 1 || bytes > MAX_RANDOM_BYTES) {
    throw new KeywardError(
      "invalid_field",
      `"bytes" must be a whole number from 1 to ${MAX_RANDOM_BYTES}`,
      {
        field: "bytes",
      },
    );
  }
  const format = parseChoice(request.format, OUTPUT_FORMATS, "base64", "format");
  parseChoice(request.source, RANDOM_SOURCES, "platform", "source");
  return encode(randomBytes(bytes), format);
}

export interface HashRequest {
  input?: string;
  algorithm?: string;
  format?: string;
}

/** Returns the digest of the base64 `input`, hex-encoded by default as Vault does. */
export function hashInput(request: HashRequest): string {
  const input = decodeBase64(requireValue(request.input, "input"), "input");
  const algorithm = parseChoice(
    request.algorithm,
    HASH_ENDPOINT_ALGORITHMS,
    "sha2-256",
    "algorithm",
  );
  const format = parseChoice(request.format, OUTPUT_FORMATS, "hex", "format");
  return encode(digest(algorithm, input), format);
}
