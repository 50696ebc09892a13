/**
 * The ACME records stored behind the barrier, under `<mount>/acme/`. Times
 * are ISO 8601 strings. A directory is named by its role (`""` for the
 * mount's default directory), and every account, order and authorization
 * belongs to the directory it was created through.
 */

import type { JWK } from "jose";
import type { ProblemDocument } from "./problems.ts";

export const IDENTIFIER_TYPES = ["dns", "ip"] as const;
export type IdentifierType = (typeof IDENTIFIER_TYPES)[number];

export interface Identifier {
  type: IdentifierType;
  /** Lower-case ASCII DNS name (wildcards keep `*.`), or an IP address in canonical form. */
  value: string;
}

export const CHALLENGE_TYPES = ["http-01", "dns-01", "tls-alpn-01"] as const;
export type ChallengeType = (typeof CHALLENGE_TYPES)[number];

export type AccountStatus = "valid" | "deactivated" | "revoked";
export type OrderStatus = "pending" | "ready" | "processing" | "valid" | "invalid";
export type AuthorizationStatus =
  | "pending"
  | "valid"
  | "invalid"
  | "deactivated"
  | "expired"
  | "revoked";
export type ChallengeStatus = "pending" | "processing" | "valid" | "invalid";

/** An account, at `acme/accounts/<id>`; `acme/account-keys/<thumbprint>` maps its key to the id. */
export interface AccountRecord {
  id: string;
  directory: string;
  status: AccountStatus;
  contact: string[];
  termsOfServiceAgreed: boolean;
  /** The account's public key. */
  jwk: JWK;
  /** RFC 7638 SHA-256 thumbprint of `jwk`, base64url. */
  thumbprint: string;
  /** Id of the external account binding key used at creation. */
  eabKeyId?: string;
  createdAt: string;
  /** When the account was deactivated or revoked; tidy deletes it a safety buffer later. */
  statusChangedAt?: string;
}

/** An order, at `acme/orders/<id>`, listed for its account at `acme/account-orders/<account>/<id>`. */
export interface OrderRecord {
  id: string;
  accountId: string;
  directory: string;
  status: OrderStatus;
  expires: string;
  identifiers: Identifier[];
  authorizationIds: string[];
  notBefore?: string;
  notAfter?: string;
  /** Serial (hex) of the issued certificate, once valid. */
  certificateSerial?: string;
  error?: ProblemDocument;
  /** ARI certificate id of the certificate this order replaces (RFC 9773 section 5). */
  replaces?: string;
  createdAt: string;
}

export interface ChallengeRecord {
  type: ChallengeType;
  /** 128 random bits, base64url (RFC 8555 section 8.1). */
  token: string;
  status: ChallengeStatus;
  validated?: string;
  error?: ProblemDocument;
}

/** An authorization, at `acme/authorizations/<id>`, listed for its account at `acme/account-authorizations/<account>/<id>`. */
export interface AuthorizationRecord {
  id: string;
  accountId: string;
  directory: string;
  /** The identifier without a wildcard prefix; `wildcard` marks an authorization for `*.<value>`. */
  identifier: Identifier;
  wildcard: boolean;
  status: AuthorizationStatus;
  expires: string;
  challenges: ChallengeRecord[];
  createdAt: string;
}

/** A certificate issued over ACME, at `acme/certificates/<serial hex>`. */
export interface AcmeCertificateRecord {
  serialHex: string;
  accountId: string;
  orderId: string;
  directory: string;
  /** The leaf and its chain, PEM, as downloaded. */
  chainPem: string;
  issuerId: string;
  notBefore: string;
  notAfter: string;
}

/** An external account binding key (RFC 8555 section 7.3.4), at `acme/eab/<id>`. */
export interface EabKeyRecord {
  id: string;
  /** The directory that accepts it: a role name, or `""` for the mount's default directory. */
  directory: string;
  keyType: "hs";
  /** The HMAC key, base64url; sent to the operator once, at creation. */
  key: string;
  createdAt: string;
  /** The account bound with this key; a key binds one account only. */
  usedBy?: string;
}
