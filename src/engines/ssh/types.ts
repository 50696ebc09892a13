import type { Barrier } from "../../seal/types.ts";
import type { CertificateType } from "./certificate.ts";
import type { KeyAlgorithm, LegacyKeyAlgorithm } from "./public-keys.ts";
import type { RsaSignatureAlgorithm } from "./signatures.ts";

export interface Logger {
  info(fields: object, message?: string): void;
  warn(fields: object, message?: string): void;
  error(fields: object, message?: string): void;
  debug?(fields: object, message?: string): void;
}

export interface SshServiceOptions {
  barrier: Barrier;
  /** The mount path, such as `ssh`; records are stored under `<mount>/`. */
  mount: string;
  clock?: () => Date;
  logger?: Logger;
}

/**
 * The caller as templates see it. Keyward has no identity entities, so
 * `{{identity.entity.name}}` is the token's display name and
 * `{{identity.entity.metadata.KEY}}` the token's metadata.
 */
export interface RequesterIdentity {
  displayName: string;
  metadata: Readonly<Record<string, string>>;
}

/**
 * The CA kinds of a mount. Host certificates use the user CA while no host
 * CA is configured, as Vault's single CA does.
 */
export const CA_KINDS = ["user", "host"] as const;
export type CaKind = (typeof CA_KINDS)[number];

/**
 * A CA key's place in a rotation. The `active` key signs. A `next` key is
 * published but does not sign yet. A `previous` key signed before the last
 * switch and stays published until it is retired.
 */
export type CaKeyState = "active" | "next" | "previous";

/** One CA key as stored behind the barrier. */
export interface CaKeyRecord {
  /** The key's SHA-256 fingerprint, `SHA256:...`. */
  id: string;
  algorithm: KeyAlgorithm;
  bits: number;
  /** The public key in OpenSSH one-line form, without a comment. */
  publicKey: string;
  /** The private key, PKCS#8 PEM. Never returned by the API. */
  privateKeyPem: string;
  state: CaKeyState;
  /** ISO 8601. */
  createdAt: string;
  generated: boolean;
}

/** The keys of one CA kind; empty when the CA is not configured. */
export interface CaSlotRecord {
  keys: CaKeyRecord[];
}

/** The rotation phase of a CA: no rotation, new key published, or signing switched to the new key. */
export type RotationPhase = "none" | "prepared" | "switched";

/** The API's view of a CA key, without the private key. */
export interface CaKeyInfo {
  id: string;
  algorithm: KeyAlgorithm;
  bits: number;
  publicKey: string;
  state: CaKeyState;
  createdAt: string;
  generated: boolean;
}

export interface CaInfo {
  kind: CaKind;
  /** The active key's public key, as Vault's `config/ca` read returns it. */
  publicKey: string;
  /** True when the host CA is not configured and the user CA signs host certificates. */
  sharedWithUserCa: boolean;
  rotationPhase: RotationPhase;
  keys: CaKeyInfo[];
}

/** A request for a CA key: generated (`generateSigningKey`, the default) or imported. */
export interface CaKeyRequest {
  generateSigningKey?: boolean;
  keyType?: string;
  keyBits?: number;
  privateKey?: string;
  publicKey?: string;
}

/** A role as stored, with Vault's SSH CA role fields in camelCase. */
export interface SshRole {
  keyType: "ca";
  allowUserCertificates: boolean;
  allowHostCertificates: boolean;
  allowedUsers: string[];
  allowedUsersTemplate: boolean;
  defaultUser: string;
  defaultUserTemplate: boolean;
  allowedDomains: string[];
  allowedDomainsTemplate: boolean;
  allowSubdomains: boolean;
  allowBareDomains: boolean;
  allowedCriticalOptions: string[];
  defaultCriticalOptions: Record<string, string>;
  allowedExtensions: string[];
  defaultExtensions: Record<string, string>;
  defaultExtensionsTemplate: boolean;
  /** Seconds; 0 means the engine default. */
  ttl: number;
  /** Seconds; 0 means the engine maximum. */
  maxTtl: number;
  /** Seconds to backdate `valid_after` by, against clock skew. */
  notBeforeDuration: number;
  /** Key type to allowed sizes: a number is a minimum size in bits, a list the exact sizes allowed. Empty allows every supported type. */
  allowedUserKeyLengths: Record<string, number | number[]>;
  keyIdFormat: string;
  allowUserKeyIds: boolean;
  allowEmptyPrincipals: boolean;
  /** RSA signature algorithm; empty for the CA key's default. */
  algorithmSigner: RsaSignatureAlgorithm | "";
  /** When true, issued certificates are not kept in the inventory (Keyward extension). */
  noStore: boolean;
}

/** A role write: any subset of the fields, in the API's types before validation. */
export type RoleWrite = Partial<Record<keyof SshRole, unknown>>;

export interface SignRequest {
  publicKey: string;
  validPrincipals?: string;
  certType?: string;
  keyId?: string;
  ttl?: number | string;
  criticalOptions?: Record<string, string>;
  extensions?: Record<string, string>;
}

export interface IssueRequest extends Omit<SignRequest, "publicKey"> {
  keyType?: string;
  keyBits?: number;
}

export interface SignResult {
  /** The serial as 16 hex digits. */
  serialNumber: string;
  /** The certificate in OpenSSH one-line form, with a trailing newline. */
  signedKey: string;
}

export interface IssueResult extends SignResult {
  /** The generated private key, OpenSSH format. Returned once and never stored. */
  privateKey: string;
  /** `rsa`, `ec` or `ed25519`, as Vault names them. */
  privateKeyType: string;
}

/** An issued certificate in the inventory. */
export interface CertificateRecord {
  serialNumber: string;
  keyId: string;
  certType: CertificateType;
  principals: string[];
  /** ISO 8601. */
  validAfter: string;
  /** ISO 8601, or `forever`. */
  validBefore: string;
  role: string;
  /** Fingerprint of the certified public key. */
  publicKeyFingerprint: string;
  /** Fingerprint of the CA key that signed it. */
  caKeyId: string;
  issuedAt: string;
  /** ISO 8601 once revoked. */
  revokedAt?: string;
}

export interface RevokeRequest {
  serialNumber?: string;
  keyId?: string;
  publicKey?: string;
}

export interface RevokeResult {
  /** The request field that selected what to revoke: `serial_number`, `key_id` or `public_key`. */
  revokedBy: string;
  /** The KRL's version after this revocation. */
  krlVersion: number;
  /** Inventoried certificates marked revoked by this request. */
  certificatesRevoked: string[];
}

/** A plain public key in the legacy inventory. */
export interface LegacyKeyRecord {
  name: string;
  publicKey: string;
  algorithm: LegacyKeyAlgorithm;
  bits: number;
  fingerprint: string;
  comment: string;
  /** The reason the key is weak (DSA, RSA under 2048 bits), or empty. */
  weakReason: string;
  registeredAt: string;
}

export interface LegacyKeyInfo extends LegacyKeyRecord {
  weak: boolean;
  revoked: boolean;
}

/** A result together with the warnings to return beside it. */
export interface Outcome<T> {
  value: T;
  warnings: string[];
}
