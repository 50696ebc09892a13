/**
 * The KMIP roles and client credentials behind `sys/kmip/`: role settings
 * as the API takes them, and the credentials that Keyward's KMIP CA
 * issues. `generate` makes the private key here. `sign` takes a CSR, so
 * that the key never leaves the client.
 */
import { randomBytes } from "node:crypto";
import { parseDuration } from "../../auth/duration.ts";
import { checkCsr } from "../../engines/pki/csr.ts";
import { generateKeyPair, type KeySpec, keySpec } from "../../engines/pki/key-pairs.ts";
import { splitList } from "../../engines/pki/names.ts";
import { KeywardError, notFound } from "../../errors.ts";
import { ROOT_POLICY } from "../../policy/acl.ts";
import { normalisePolicyName } from "../../policy/builtin.ts";
import { globMatch } from "../../util/glob.ts";
import type { KmipCertificateAuthority } from "./certificate-authority.ts";
import {
  checkRoleName,
  type KmipCredentialRecord,
  type KmipIdentityStore,
  type KmipRole,
  normaliseSerialNumber,
} from "./identity-store.ts";

/** Default lifetime of a credential: 768 hours, as the PKI engine's default TTL. */
export const DEFAULT_CREDENTIAL_TTL_SECONDS = 768 * 3600;
/** Default maximum lifetime of a credential: one year. */
export const DEFAULT_CREDENTIAL_MAX_TTL_SECONDS = 8760 * 3600;
/** Maximum length of a common name, in characters (RFC 5280's upper bound ub-common-name). */
const MAX_COMMON_NAME_LENGTH = 64;
/** Maximum length of a glob in `allowed_common_names`, in characters. */
const MAX_PATTERN_LENGTH = 256;
const MAX_LIST_ENTRIES = 64;

/** Role fields as the API takes them; list fields as arrays or comma-separated strings. */
export interface KmipRoleInput {
  token_policies?: string[] | string;
  policies?: string[] | string;
  allowed_common_names?: string[] | string;
  ttl?: number | string;
  max_ttl?: number | string;
  key_type?: string;
  key_bits?: number;
}

/** Fields of `credential/generate` and `credential/sign`. */
export interface CredentialRequest {
  common_name?: string;
  ttl?: number | string;
  key_type?: string;
  key_bits?: number;
  csr?: string;
}

/** A credential as the API returns it. */
export interface IssuedCredential {
  certificate: string;
  /** PKCS#8 PEM; absent for a signed CSR. */
  privateKey?: string;
  privateKeyType?: string;
  caChain: string[];
  serialNumber: string;
  commonName: string;
  expiration: Date;
}

function invalid(field: string, message: string): KeywardError {
  return new KeywardError("invalid_field", message, { field });
}

function listField(value: string[] | string | undefined, field: string): string[] | undefined {
  if (value === undefined) return undefined;
  const entries = splitList(value);
  if (entries.length > MAX_LIST_ENTRIES) {
    throw invalid(field, `"${field}" may have at most ${MAX_LIST_ENTRIES} entries`);
  }
  return entries;
}

function policyNames(input: KmipRoleInput): string[] | undefined {
  if (input.token_policies !== undefined && input.policies !== undefined) {
    throw invalid("policies", "set token_policies or its alias policies, not both");
  }
  const field = input.token_policies !== undefined ? "token_policies" : "policies";
  const names = listField(input.token_policies ?? input.policies, field);
  if (names === undefined) return undefined;
  return [
    ...new Set(
      names.map((name) => {
        let normalised: string;
        try {
          normalised = normalisePolicyName(name);
        } catch (error) {
          if (error instanceof KeywardError) throw invalid(field, error.message);
          throw error;
        }
        if (normalised === ROOT_POLICY) {
          throw invalid(field, `"${field}" must not contain the root policy`);
        }
        return normalised;
      }),
    ),
  ];
}

function commonNamePatterns(input: KmipRoleInput): string[] | undefined {
  const value = input.allowed_common_names;
  // An empty entry would be dropped, and a list left empty allows every name.
  if (Array.isArray(value) && value.some((entry) => entry.trim() === "")) {
    throw invalid("allowed_common_names", `"allowed_common_names" entries must not be empty`);
  }
  const patterns = listField(value, "allowed_common_names");
  for (const pattern of patterns ?? []) {
    if (pattern.length > MAX_PATTERN_LENGTH) {
      throw invalid(
        "allowed_common_names",
        `"allowed_common_names" entries must be at most ${MAX_PATTERN_LENGTH} characters`,
      );
    }
  }
  return patterns;
}

function credentialKeySpec(type: string | undefined, bits: number | undefined): KeySpec {
  if (type !== undefined && type !== "ec" && type !== "rsa") {
    throw invalid("key_type", `"key_type" must be ec or rsa, not "${type}"`);
  }
  return keySpec(type ?? "ec", bits);
}

/**
 * Builds a role from API fields. Fields left out keep their values in
 * `existing`, or take their defaults for a new role: no policies, no
 * common names, 768h TTL, 8760h maximum TTL, EC P-256 keys.
 */
export function buildKmipRole(
  name: string,
  input: KmipRoleInput,
  existing: KmipRole | undefined,
): KmipRole {
  checkRoleName(name);
  const ttlSeconds =
    input.ttl === undefined
      ? (existing?.ttlSeconds ?? DEFAULT_CREDENTIAL_TTL_SECONDS)
      : parseDuration(input.ttl, "ttl");
  const maxTtlSeconds =
    input.max_ttl === undefined
      ? (existing?.maxTtlSeconds ?? DEFAULT_CREDENTIAL_MAX_TTL_SECONDS)
      : parseDuration(input.max_ttl, "max_ttl");
  if (ttlSeconds <= 0) throw invalid("ttl", '"ttl" must be more than 0 seconds');
  if (maxTtlSeconds <= 0) throw invalid("max_ttl", '"max_ttl" must be more than 0 seconds');
  if (ttlSeconds > maxTtlSeconds) {
    throw invalid("ttl", `"ttl" (${ttlSeconds}s) must not exceed "max_ttl" (${maxTtlSeconds}s)`);
  }
  const spec = credentialKeySpec(
    input.key_type ?? existing?.keyType,
    input.key_bits ?? (input.key_type === undefined ? existing?.keyBits : undefined),
  );
  return {
    name,
    policies: policyNames(input) ?? existing?.policies ?? [],
    allowedCommonNames: commonNamePatterns(input) ?? existing?.allowedCommonNames ?? [],
    ttlSeconds,
    maxTtlSeconds,
    keyType: spec.type as "ec" | "rsa",
    keyBits: spec.bits,
  };
}

/** Returns Vault's read-role shape of a role. */
export function kmipRoleData(role: KmipRole) {
  return {
    token_policies: [...role.policies],
    policies: [...role.policies],
    allowed_common_names: [...role.allowedCommonNames],
    ttl: role.ttlSeconds,
    max_ttl: role.maxTtlSeconds,
    key_type: role.keyType,
    key_bits: role.keyBits,
  };
}

/** Formats a serial number as Keyward's PKI does: hex byte pairs separated by colons. */
export function colonSerialNumber(serialHex: string): string {
  return (serialHex.match(/../g) ?? []).join(":");
}

/** Returns a credential record in the API's shape. */
export function credentialData(record: KmipCredentialRecord) {
  return {
    serial_number: colonSerialNumber(record.serialNumber),
    role: record.role,
    common_name: record.commonName,
    issue_time: record.issuedAt,
    expiration: record.notAfter,
    revoked: record.revokedAt !== undefined,
    revocation_time: record.revokedAt ?? null,
  };
}

function checkCommonName(role: KmipRole, commonName: string): void {
  if (
    commonName.length === 0 ||
    commonName.length > MAX_COMMON_NAME_LENGTH ||
    // Control characters, and `/`, which would make the audit display name `<role>/<CN>` ambiguous.
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this rejects.
    /[\u0000-\u001f\u007f/]/.test(commonName)
  ) {
    throw invalid(
      "common_name",
      `"common_name" must be 1-${MAX_COMMON_NAME_LENGTH} characters without control characters or "/"`,
    );
  }
  if (
    role.allowedCommonNames.length > 0 &&
    !role.allowedCommonNames.some((pattern) => globMatch(pattern, commonName))
  ) {
    throw new KeywardError(
      "name_not_allowed",
      `common name "${commonName}" is not allowed by the role's allowed_common_names`,
      { field: "common_name" },
    );
  }
}

/**
 * Issues, lists and revokes the client credentials of KMIP roles. Without
 * a CA (an external client CA is configured), roles work but credentials
 * cannot be issued.
 */
export class KmipCredentials {
  readonly store: KmipIdentityStore;
  readonly #ca: KmipCertificateAuthority | undefined;
  readonly #clock: () => Date;

  constructor(options: {
    store: KmipIdentityStore;
    ca: KmipCertificateAuthority | undefined;
    clock?: () => Date;
  }) {
    this.store = options.store;
    this.#ca = options.ca;
    this.#clock = options.clock ?? (() => new Date());
  }

  /** Returns the KMIP CA certificate, PEM; throws `not_found` when Keyward's KMIP CA is not in use. */
  async caCertificate(): Promise<string> {
    const pem = await this.#ca?.caCertificate();
    if (pem === undefined) {
      throw notFound(
        "Keyward's KMIP CA (the server uses the client CA of --kmip-client-ca-file, or has not been unsealed since KMIP was enabled)",
      );
    }
    return pem;
  }

  async writeRole(name: string, input: KmipRoleInput): Promise<KmipRole> {
    checkRoleName(name);
    const role = buildKmipRole(name, input, await this.store.readRole(name));
    await this.store.writeRole(role);
    return role;
  }

  /** Issues a credential with a new private key of the role's (or the request's) key type. */
  async generate(roleName: string, request: CredentialRequest): Promise<IssuedCredential> {
    const role = await this.store.requireRole(roleName);
    const ca = this.#requireCa();
    const spec =
      request.key_type === undefined && request.key_bits === undefined
        ? { type: role.keyType, bits: role.keyBits }
        : credentialKeySpec(request.key_type ?? role.keyType, request.key_bits);
    const commonName = request.common_name ?? defaultCommonName(role);
    checkCommonName(role, commonName);
    const ttlSeconds = this.#ttl(role, request.ttl);
    const pair = await generateKeyPair(spec);
    const credential = await this.#issue(ca, role, pair.spki, spec, commonName, ttlSeconds);
    return {
      ...credential,
      privateKey: pair.privateKey.export({ format: "pem", type: "pkcs8" }) as string,
      privateKeyType: spec.type,
    };
  }

  /** Issues a credential for the public key of a CSR; the CSR's subject is replaced. */
  async sign(roleName: string, request: CredentialRequest): Promise<IssuedCredential> {
    const role = await this.store.requireRole(roleName);
    const ca = this.#requireCa();
    if (request.csr === undefined) {
      throw new KeywardError("missing_field", 'missing required field "csr"', { field: "csr" });
    }
    const csr = await checkCsr(request.csr, "csr");
    if (csr.keySpec.type !== "ec" && csr.keySpec.type !== "rsa") {
      throw new KeywardError(
        "unsupported_key_type",
        `"csr" contains a ${csr.keySpec.type} key; KMIP credentials use EC or RSA keys`,
        { field: "csr" },
      );
    }
    const commonName =
      request.common_name ?? (csr.commonName === "" ? defaultCommonName(role) : csr.commonName);
    checkCommonName(role, commonName);
    const ttlSeconds = this.#ttl(role, request.ttl);
    return this.#issue(ca, role, csr.publicKey, csr.keySpec, commonName, ttlSeconds);
  }

  async listCredentials(roleName: string): Promise<string[]> {
    await this.store.requireRole(roleName);
    return (await this.store.listCredentials(roleName)).map(colonSerialNumber);
  }

  async lookup(roleName: string, serialNumber: string): Promise<KmipCredentialRecord> {
    await this.store.requireRole(roleName);
    const serial = normaliseSerialNumber(serialNumber);
    const record = await this.store.readCredential(roleName, serial);
    if (record === undefined) {
      throw notFound(`credential ${colonSerialNumber(serial)} of KMIP role "${roleName}"`);
    }
    return record;
  }

  /** Revokes a credential: its certificate maps to no role from the next request message on. */
  async revoke(roleName: string, serialNumber: string): Promise<KmipCredentialRecord> {
    const record = await this.lookup(roleName, serialNumber);
    if (record.revokedAt !== undefined) return record;
    const revoked = { ...record, revokedAt: this.#clock().toISOString() };
    await this.store.writeCredential(revoked);
    return revoked;
  }

  #requireCa(): KmipCertificateAuthority {
    if (this.#ca === undefined) {
      throw new KeywardError(
        "unsupported_operation",
        "this server takes KMIP client certificates from --kmip-client-ca-file, so Keyward does not issue KMIP credentials; issue them from that CA and map them to roles with allowed_common_names",
      );
    }
    return this.#ca;
  }

  #ttl(role: KmipRole, requested: number | string | undefined): number {
    const ttlSeconds = requested === undefined ? role.ttlSeconds : parseDuration(requested, "ttl");
    if (ttlSeconds <= 0) throw invalid("ttl", '"ttl" must be more than 0 seconds');
    if (ttlSeconds > role.maxTtlSeconds) {
      throw new KeywardError(
        "ttl_too_long",
        `"ttl" (${ttlSeconds}s) exceeds the role's max_ttl (${role.maxTtlSeconds}s)`,
        { field: "ttl" },
      );
    }
    return ttlSeconds;
  }

  async #issue(
    ca: KmipCertificateAuthority,
    role: KmipRole,
    publicKey: Uint8Array,
    spec: KeySpec,
    commonName: string,
    ttlSeconds: number,
  ): Promise<IssuedCredential> {
    const issued = await ca.issueClientCertificate({
      publicKey,
      keySpec: spec,
      role: role.name,
      commonName,
      ttlSeconds,
    });
    await this.store.writeCredential({
      serialNumber: issued.serialNumber,
      role: role.name,
      commonName,
      fingerprint: issued.fingerprint,
      issuedAt: this.#clock().toISOString(),
      notAfter: issued.notAfter.toISOString(),
    });
    return {
      certificate: issued.certificate,
      caChain: [await ca.ensureCa()],
      serialNumber: colonSerialNumber(issued.serialNumber),
      commonName,
      expiration: issued.notAfter,
    };
  }
}

/** Returns a random common name for a credential whose request names none: `<role>-<16 hex digits>`, cut to 64 characters. */
function defaultCommonName(role: KmipRole): string {
  const suffix = randomBytes(8).toString("hex");
  return `${role.name.slice(0, MAX_COMMON_NAME_LENGTH - suffix.length - 1)}-${suffix}`;
}
