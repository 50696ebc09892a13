import { type HashAlgorithm, isHashAlgorithm } from "../../crypto/hash.ts";
import type { PssSaltLength, RsaSignaturePadding } from "../../crypto/rsa.ts";
import { KeywardError } from "../../errors.ts";
import type { MarshalingAlgorithm, Signer, SignParams } from "../key-types/definition.ts";
import { keyTypeDefinition } from "../key-types/index.ts";
import { assertAllowed } from "../lifecycle.ts";
import type { KeyVersion, ManagedKey } from "../types.ts";
import {
  formatVersionedValue,
  parseVersionedValue,
  type ValueEncoding,
} from "../versioned-value.ts";
import { versionForProcessing, versionForProtection } from "../versions.ts";
import { requestContext, requireSupport } from "./checks.ts";

/** Options shared by signing and verification. */
export interface SignatureOptions {
  input: Buffer;
  /** Default sha2-256; ignored by ed25519 keys. */
  hashAlgorithm?: HashAlgorithm;
  /** True when `input` is already the digest under `hashAlgorithm`. */
  prehashed?: boolean;
  /** RSA only; default "pss". */
  signatureAlgorithm?: RsaSignaturePadding;
  /** ECDSA only; default "asn1" (DER). "jws" is raw r || s in base64url. */
  marshalingAlgorithm?: MarshalingAlgorithm;
  /** RSA-PSS only; default "auto" (maximum when signing, any when verifying). */
  saltLength?: PssSaltLength;
  /** Required for derived keys. */
  context?: Buffer;
}

export interface SignRequest extends SignatureOptions {
  keyVersion?: number;
}

export interface VerifyRequest extends SignatureOptions {
  signature: string;
}

const SIGNATURE_ALGORITHMS: readonly string[] = ["pss", "pkcs1v15"];
const MARSHALING_ALGORITHMS: readonly string[] = ["asn1", "jws"];

function signerOf(key: ManagedKey, operation: "sign" | "verify"): Signer {
  requireSupport(key, operation);
  const signer = keyTypeDefinition(key.type).signer;
  if (signer === undefined) throw new KeywardError("internal", "key type has no signer");
  return signer;
}

function invalid(field: string, message: string): KeywardError {
  return new KeywardError("invalid_field", message, { field });
}

/** Applies defaults and checks the option values every key type shares. */
function signParams(key: ManagedKey, options: SignatureOptions): SignParams {
  const hashAlgorithm = options.hashAlgorithm ?? "sha2-256";
  if (!isHashAlgorithm(hashAlgorithm)) {
    throw invalid("hash_algorithm", `unsupported hash_algorithm "${String(hashAlgorithm)}"`);
  }
  const signatureAlgorithm = options.signatureAlgorithm ?? "pss";
  if (!SIGNATURE_ALGORITHMS.includes(signatureAlgorithm)) {
    throw invalid("signature_algorithm", 'signature_algorithm must be "pss" or "pkcs1v15"');
  }
  const marshalingAlgorithm = options.marshalingAlgorithm ?? "asn1";
  if (!MARSHALING_ALGORITHMS.includes(marshalingAlgorithm)) {
    throw invalid("marshaling_algorithm", 'marshaling_algorithm must be "asn1" or "jws"');
  }
  const saltLength = options.saltLength ?? "auto";
  const validSalt =
    saltLength === "auto" ||
    saltLength === "hash" ||
    (typeof saltLength === "number" && Number.isSafeInteger(saltLength) && saltLength >= 0);
  if (!validSalt) {
    throw invalid("salt_length", 'salt_length must be "auto", "hash" or a non-negative integer');
  }
  return {
    input: options.input,
    hashAlgorithm,
    prehashed: options.prehashed ?? false,
    signatureAlgorithm,
    marshalingAlgorithm,
    saltLength,
    context: requestContext(key, options.context),
  };
}

function signatureEncoding(params: SignParams): ValueEncoding {
  return params.marshalingAlgorithm === "jws" ? "base64url" : "base64";
}

/** A checked signing request: the version that signs and the parameters for its key type. */
export interface PreparedSignature {
  version: KeyVersion;
  params: SignParams;
}

/**
 * Checks a signing request as `sign` does and returns the version and
 * parameters, for an engine that signs outside this process (an HSM-held
 * key) and formats the result with `formatSignature`.
 */
export function prepareSignature(
  key: ManagedKey,
  request: SignRequest,
  now: Date,
): PreparedSignature {
  requireSupport(key, "sign");
  assertAllowed(key, "sign", now);
  const version = versionForProtection(key, request.keyVersion);
  return { version, params: signParams(key, request) };
}

/** Returns `keyward:v<N>:<signature>`, base64url-encoded for JWS marshaling and base64 otherwise. */
export function formatSignature(
  version: KeyVersion,
  signature: Uint8Array,
  params: SignParams,
): string {
  return formatVersionedValue(version.version, signature, signatureEncoding(params));
}

/**
 * Signs `input` with version `keyVersion` (default: latest) and returns
 * `keyward:v<N>:<signature>`. Derived ed25519 keys also return the public key
 * for the context.
 */
export function sign(
  key: ManagedKey,
  request: SignRequest,
  now: Date,
): { signature: string; keyVersion: number; publicKeyPem?: string } {
  const signer = signerOf(key, "sign");
  const { version, params } = prepareSignature(key, request, now);

  const output = signer.sign(version, params);
  const signature = formatSignature(version, output.signature, params);
  return output.publicKeyPem === undefined
    ? { signature, keyVersion: version.version }
    : { signature, keyVersion: version.version, publicKeyPem: output.publicKeyPem };
}

/**
 * Verifies a `keyward:v<N>:<signature>` string. A signature that does not
 * match returns `valid: false`; a malformed string is `invalid_signature`.
 */
export function verify(
  key: ManagedKey,
  request: VerifyRequest,
  now: Date,
): { valid: boolean; keyVersion: number } {
  const signer = signerOf(key, "verify");
  assertAllowed(key, "verify", now);
  const params = signParams(key, request);
  const parsed = parseVersionedValue(
    request.signature,
    "signature",
    "invalid_signature",
    signatureEncoding(params),
  );
  const version = versionForProcessing(key, parsed.version, "signature", "invalid_signature");

  return { valid: signer.verify(version, params, parsed.bytes), keyVersion: version.version };
}
