/** Stored records of the PKI engine. Every record is JSON behind the barrier under `<mount>/`. */

import type { RevocationReason } from "./revocation/types.ts";

export const PKI_KEY_TYPES = ["rsa", "ec", "ed25519"] as const;
export type PkiKeyType = (typeof PKI_KEY_TYPES)[number];

/** A CA's key pair, at `<mount>/keys/<id>`. */
export interface KeyRecord {
  id: string;
  /** Optional operator-chosen name, unique within the mount. */
  name: string;
  type: PkiKeyType;
  /** RSA modulus size or EC curve size in bits; 0 for Ed25519. */
  bits: number;
  /** PKCS#8 DER of the private key, base64. Absent for a certificate imported without its key. */
  pkcs8?: string;
  /** True when the key was returned to the operator at creation (type `exported`). */
  exported: boolean;
  createdAt: string;
}

/** Issuer usages: the kinds of signature an issuer may make, as Vault names them. */
export const ISSUER_USAGES = [
  "read-only",
  "issuing-certificates",
  "crl-signing",
  "ocsp-signing",
] as const;
export type IssuerUsage = (typeof ISSUER_USAGES)[number];

export const LEAF_NOT_AFTER_BEHAVIORS = ["err", "truncate", "permit"] as const;
export type LeafNotAfterBehavior = (typeof LEAF_NOT_AFTER_BEHAVIORS)[number];

/** An issuer: a CA certificate, its chain and the key that signs with it, at `<mount>/issuers/<id>`. */
export interface IssuerRecord {
  id: string;
  name: string;
  /** Id of the key record; empty when the issuer's key is not in Keyward. */
  keyId: string;
  certificatePem: string;
  /** PEM certificates above this one, nearest first; empty for a root. */
  chainPems: string[];
  serialHex: string;
  notAfter: string;
  leafNotAfterBehavior: LeafNotAfterBehavior;
  /**
   * The issuer's usages, or every usage when absent. A phased rotation
   * removes `issuing-certificates` from the new issuer until the switch and
   * from the old issuer at retirement.
   */
  usage?: IssuerUsage[];
  createdAt: string;
  /** The transit key that signs for this issuer, when its private key is kept in transit. */
  transitKey?: TransitKeyRef;
  /** When the issuer was revoked (`issuer/:ref/revoke`); a revoked issuer issues no certificates. */
  revokedAt?: string;
}

/** An issuer's delegated OCSP responder, at `<mount>/ocsp-responders/<issuer id>`. */
export interface OcspResponderRecord {
  issuerId: string;
  serialHex: string;
  /** The responder certificate, signed by the issuer, with id-kp-OCSPSigning and ocsp-nocheck. */
  certificatePem: string;
  keyType: PkiKeyType;
  keyBits: number;
  /** PKCS#8 DER of the responder's private key, base64; never returned by the API. */
  pkcs8: string;
  notAfter: string;
}

/** One version of a transit key that contains an issuer's private key. */
export interface TransitKeyRef {
  /** The transit engine's mount path. */
  mount: string;
  name: string;
  version: number;
}

/** The mount's issuer settings, at `<mount>/config/issuers`. */
export interface IssuersConfig {
  defaultIssuerId: string;
  defaultFollowsLatestIssuer: boolean;
}

/** Phases of an issuer rotation. The phase is `none` before the first rotation and after a rolled back preparation. */
export const ROTATION_PHASES = ["none", "prepared", "switched", "retired"] as const;
export type RotationPhase = (typeof ROTATION_PHASES)[number];

/** The mount's phased issuer rotation, at `<mount>/config/rotation`, which is absent in phase `none`. */
export interface IssuerRotationRecord {
  phase: Exclude<RotationPhase, "none">;
  /** The default issuer when the rotation was prepared. */
  oldIssuerId: string;
  newIssuerId: string;
  /** True when prepare created the new issuer, so rolling back the preparation deletes it. */
  newIssuerCreated: boolean;
  /** Id of the key prepare stored for the new issuer, deleted with it, or empty when the key was stored before. */
  newKeyCreatedId: string;
  /** True once the new issuer has been allowed to sign, which makes dropping it unsafe. */
  newIssuerHasSigned: boolean;
  preparedAt: string;
  switchedAt?: string;
  retiredAt?: string;
}

/** The URLs written into issued certificates, at `<mount>/config/urls`. */
export interface UrlsConfig {
  issuingCertificates: string[];
  crlDistributionPoints: string[];
  ocspServers: string[];
  /** Written as Freshest CRL in base CRLs when delta CRLs are enabled. */
  deltaCrlDistributionPoints?: string[];
}

/** CRL settings, at `<mount>/config/crl`. */
export interface CrlConfig {
  /** Lifetime of each CRL (nextUpdate - thisUpdate), in seconds. */
  expirySeconds: number;
  disable: boolean;
  /** Rebuild CRLs on the scheduler instead of only on revocation. */
  autoRebuild: boolean;
  /** Rebuild a CRL this long before its nextUpdate, in seconds. */
  autoRebuildGraceSeconds: number;
  enableDelta: boolean;
  deltaRebuildIntervalSeconds: number;
  ocspDisable: boolean;
  ocspExpirySeconds: number;
}

/** Tidy settings, at `<mount>/config/auto-tidy`. */
export interface TidyConfig {
  enabled: boolean;
  intervalSeconds: number;
  tidyCertStore: boolean;
  tidyRevokedCerts: boolean;
  safetyBufferSeconds: number;
  /** Also tidy ACME orders, authorizations and accounts; false when absent. */
  tidyAcme?: boolean;
  /** How long deactivated ACME accounts are kept, in seconds; 30 days when absent. */
  acmeAccountSafetyBufferSeconds?: number;
}

// The RFC 5280 reason list lives with the CRL and OCSP code that encodes it.
export { REVOCATION_REASONS } from "./revocation/types.ts";

/** An issued certificate, at `<mount>/certs/<serial hex>`. */
export interface CertificateRecord {
  serialHex: string;
  issuerId: string;
  certificatePem: string;
  /** Subject as an RFC 4514 string, for search. */
  subject: string;
  commonName: string;
  /** Subject alternative names as `dns:…`, `ip:…`, `email:…`, `uri:…`. */
  sans: string[];
  notBefore: string;
  notAfter: string;
  role: string;
  /**
   * The Keyward service that requested the certificate and tracks it, such
   * as `devices` for the device registry; absent for certificates issued
   * through the PKI API. EST does not renew a certificate that has one.
   */
  owner?: string;
  revokedAt?: string;
  revocationReason?: RevocationReason;
}

/** A revoked certificate's entry in the revocation index, at `<mount>/revoked/<serial hex>`. */
export interface RevokedRecord {
  serialHex: string;
  issuerId: string;
  revokedAt: string;
  reason?: RevocationReason;
  notAfter: string;
}

/** The latest CRLs of one issuer, at `<mount>/crls/<issuer id>`. */
export interface CrlRecord {
  issuerId: string;
  crlNumber: string;
  thisUpdate: string;
  nextUpdate: string;
  /** DER, base64. */
  der: string;
  deltaNumber?: string;
  deltaDer?: string;
  deltaThisUpdate?: string;
  /** Revoked serials the base CRL lists, so a delta CRL carries only later ones. */
  baseSerials: string[];
}
