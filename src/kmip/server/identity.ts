/**
 * Maps a KMIP client's certificate to a Keyward identity, and checks each
 * operation against that identity's ACL policies.
 *
 * With Keyward's own KMIP CA, a certificate maps to the role of the
 * credential record that matches its role (subject OU), serial number and
 * SHA-256 fingerprint, while that record is not revoked or expired. With an
 * external client CA, a certificate maps to the first role, in name order,
 * whose `allowedCommonNames` globs match its subject CN. When no role
 * exists at all in that mode, every client keeps full access, as before
 * roles existed.
 *
 * An operation on an object needs its capability on
 * `kmip/<operation>/<unique identifier>`, and any other operation on
 * `kmip/<operation>`. The operation is the spec name in lower case with
 * words joined by `-` (`kmip/create`, `kmip/create-key-pair`,
 * `kmip/get/<uid>`). Discover Versions and Query need no policy.
 */

import type { Acl } from "../../policy/acl.ts";
import type { Operation } from "../../policy/types.ts";
import { globMatch } from "../../util/glob.ts";
import { SPEC_ENUMERATIONS } from "../spec-tables.ts";
import { normalizeName } from "../tags.ts";
import type { KmipIdentityStore, KmipRole } from "./identity-store.ts";

/** The certificate a KMIP client presented, as the listener read it. */
export interface KmipPeerCertificate {
  commonName: string | undefined;
  /** The subject's organizational units. */
  organizationalUnits: readonly string[];
  /** Lower-case hex, without leading zero bytes. */
  serialNumber: string;
  /** SHA-256 of the DER, lower-case hex. */
  fingerprint: string;
}

/** An authenticated KMIP client. */
export interface KmipPrincipal {
  /** `<role>/<CN>` for a client that maps to a role, the CN alone otherwise. */
  readonly displayName: string;
  readonly role: string | undefined;
  readonly policies: readonly string[];
  /** The serial number of the credential, for a credential Keyward issued. */
  readonly credential: string | undefined;
  /** The compiled policies; undefined allows every operation (no roles with an external CA). */
  readonly acl: Acl | undefined;
}

/** The outcome of authenticating a client certificate. */
export type KmipAuthentication =
  | { ok: true; principal: KmipPrincipal }
  | { ok: false; message: string };

/** Where client certificates come from, which decides how they map to roles. */
export type KmipClientCaSource = "keyward" | "external";

export interface KmipIdentityResolverOptions {
  store: KmipIdentityStore;
  /** Compiles policy names into an ACL, such as Keyward's `PolicyStore`. */
  policies: { acl(names: readonly string[]): Promise<Acl> };
  source: KmipClientCaSource;
  clock?: () => Date;
}

/** Maximum number of cached role mappings; the cache is emptied when full. */
const MAX_CACHED_MAPPINGS = 1000;

interface CachedMapping {
  generation: number;
  /** The role, `null` for full access, or undefined when the certificate maps to none. */
  role: KmipRole | null | undefined;
  message: string;
  /** The credential's expiry, in milliseconds since the epoch, for issued credentials. */
  notAfter?: number;
}

/**
 * Authenticates client certificates. Mappings are cached by fingerprint
 * until the identity store's generation changes, so a revoked credential or
 * a changed role takes effect at the client's next request message.
 */
export class KmipIdentityResolver {
  readonly #store: KmipIdentityStore;
  readonly #policies: KmipIdentityResolverOptions["policies"];
  readonly #source: KmipClientCaSource;
  readonly #clock: () => Date;
  readonly #cache = new Map<string, CachedMapping>();

  constructor(options: KmipIdentityResolverOptions) {
    this.#store = options.store;
    this.#policies = options.policies;
    this.#source = options.source;
    this.#clock = options.clock ?? (() => new Date());
  }

  /** Maps a certificate to a principal, or explains why it maps to none. */
  async authenticate(certificate: KmipPeerCertificate | undefined): Promise<KmipAuthentication> {
    if (certificate === undefined) {
      return { ok: false, message: "the client presented no certificate" };
    }
    const mapping = await this.#mapping(certificate);
    const commonName = certificate.commonName ?? "";
    if (mapping.notAfter !== undefined && mapping.notAfter <= this.#clock().getTime()) {
      return { ok: false, message: "the client certificate has expired" };
    }
    if (mapping.role === undefined) return { ok: false, message: mapping.message };
    if (mapping.role === null) {
      return {
        ok: true,
        principal: {
          displayName: commonName,
          role: undefined,
          policies: [],
          credential: undefined,
          acl: undefined,
        },
      };
    }
    const role = mapping.role;
    return {
      ok: true,
      principal: {
        displayName: `${role.name}/${commonName}`,
        role: role.name,
        policies: [...role.policies],
        credential: this.#source === "keyward" ? certificate.serialNumber : undefined,
        acl: await this.#policies.acl(role.policies),
      },
    };
  }

  async #mapping(certificate: KmipPeerCertificate): Promise<CachedMapping> {
    const generation = this.#store.generation;
    const cached = this.#cache.get(certificate.fingerprint);
    if (cached !== undefined && cached.generation === generation) return cached;
    const mapping =
      this.#source === "keyward"
        ? await this.#issuedMapping(certificate, generation)
        : await this.#externalMapping(certificate, generation);
    if (this.#cache.size >= MAX_CACHED_MAPPINGS) this.#cache.clear();
    this.#cache.set(certificate.fingerprint, mapping);
    return mapping;
  }

  async #issuedMapping(
    certificate: KmipPeerCertificate,
    generation: number,
  ): Promise<CachedMapping> {
    const unknown = {
      generation,
      role: undefined,
      message: "the client certificate is not a KMIP credential that Keyward issued",
    };
    // An issued certificate has one OU, the role's name.
    if (certificate.organizationalUnits.length !== 1) return unknown;
    const roleName = certificate.organizationalUnits[0]!;
    const record = await this.#store.readCredential(roleName, certificate.serialNumber);
    if (record === undefined || record.fingerprint !== certificate.fingerprint) return unknown;
    if (record.revokedAt !== undefined) {
      return { generation, role: undefined, message: "the client credential has been revoked" };
    }
    const role = await this.#store.readRole(roleName);
    if (role === undefined) {
      return { generation, role: undefined, message: `the KMIP role "${roleName}" was deleted` };
    }
    return { generation, role, message: "", notAfter: Date.parse(record.notAfter) };
  }

  async #externalMapping(
    certificate: KmipPeerCertificate,
    generation: number,
  ): Promise<CachedMapping> {
    const names = await this.#store.listRoles();
    if (names.length === 0) return { generation, role: null, message: "" };
    const commonName = certificate.commonName;
    if (commonName !== undefined) {
      for (const name of names) {
        const role = await this.#store.readRole(name);
        if (role?.allowedCommonNames.some((pattern) => globMatch(pattern, commonName))) {
          return { generation, role, message: "" };
        }
      }
    }
    return {
      generation,
      role: undefined,
      message: "the client certificate's common name matches no KMIP role",
    };
  }
}

/** Operations every authenticated client may use, whatever its policies. */
export const UNCHECKED_OPERATIONS: ReadonlySet<string> = new Set(["DiscoverVersions", "Query"]);

/** Operations that act on one existing object, named by its Unique Identifier or the ID Placeholder. */
const OBJECT_OPERATIONS: ReadonlySet<string> = new Set([
  // Not a KMIP operation: the use of a key to wrap another in a Get, checked on the wrapping key.
  "WrapKey",
  "ReKey",
  "ReKeyKeyPair",
  "Certify",
  "ReCertify",
  "Check",
  "Get",
  "GetAttributes",
  "GetAttributeList",
  "AddAttribute",
  "ModifyAttribute",
  "DeleteAttribute",
  "SetAttribute",
  "AdjustAttribute",
  "ObtainLease",
  "GetUsageAllocation",
  "Activate",
  "Revoke",
  "Destroy",
  "Archive",
  "Recover",
  "Encrypt",
  "Decrypt",
  "Sign",
  "SignatureVerify",
  "MAC",
  "MACVerify",
  "Export",
  "ReProvision",
]);

/** The capability each operation needs; `update` for every operation not listed. */
const CAPABILITIES: Readonly<Record<string, Operation>> = {
  Create: "create",
  CreateKeyPair: "create",
  Register: "create",
  ReKey: "create",
  ReKeyKeyPair: "create",
  DeriveKey: "create",
  Certify: "create",
  ReCertify: "create",
  CreateSplitKey: "create",
  JoinSplitKey: "create",
  Import: "create",
  Get: "read",
  GetAttributes: "read",
  GetAttributeList: "read",
  Check: "read",
  Export: "read",
  Locate: "list",
  Destroy: "delete",
};

/** The path segment of each operation: its spec name in lower case, words joined by `-`. */
const PATH_SEGMENTS: ReadonlyMap<string, string> = new Map([
  ...(SPEC_ENUMERATIONS.Operation ?? []).map(([specName]): [string, string] => [
    normalizeName(specName),
    specName
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, "-")
      .replace(/^-|-$/g, ""),
  ]),
  ["WrapKey", "wrap-key"],
]);

/** Returns the capability an operation needs (see the file comment). */
export function operationCapability(operation: string): Operation {
  return CAPABILITIES[operation] ?? "update";
}

/** True for operations whose policy path names the object they act on. */
export function actsOnObject(operation: string): boolean {
  return OBJECT_OPERATIONS.has(operation);
}

/** Returns the policy path of an operation, with the object's Unique Identifier when it acts on one. */
export function kmipPolicyPath(operation: string, uniqueIdentifier: string | undefined): string {
  const segment = PATH_SEGMENTS.get(operation) ?? operation.toLowerCase();
  return uniqueIdentifier === undefined || !actsOnObject(operation)
    ? `kmip/${segment}`
    : `kmip/${segment}/${uniqueIdentifier}`;
}
