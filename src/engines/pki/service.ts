import { KeywardError } from "../../errors.ts";
import type { Barrier } from "../../seal/types.ts";
import { importBundle } from "./ca-import.ts";
import {
  type CaRequest,
  generateIntermediateCsr,
  generateRoot,
  signIntermediate,
} from "./ca-operations.ts";
import {
  importTransitIssuer,
  type TransitImportRequest,
  type TransitResolver,
} from "./ca-transit.ts";
import { PkiConfig } from "./config.ts";
import type { PkiContext } from "./context.ts";
import { CertificateInventory } from "./inventory.ts";
import { type IssueRequest, issueCertificate } from "./issuance.ts";
import { IssuerRegistry } from "./issuers.ts";
import { RevocationService } from "./revocation-service.ts";
import { buildRole, type Role, type RoleInput } from "./roles.ts";
import { IssuerRotation } from "./rotation.ts";
import { PkiStore } from "./store.ts";
import { DEFAULT_MOUNT_TTL_SECONDS, type MountTtls } from "./validity.ts";

/** Role names: letters, digits, `_`, `.` and `-`, one path segment. */
const ROLE_NAME = /^[\w.-]{1,128}$/;

/** The subset of pino's logger the engine uses. */
export interface PkiLogger {
  info(fields: object, message?: string): void;
  warn(fields: object, message?: string): void;
  error(fields: object, message?: string): void;
}

export interface PkiServiceOptions {
  barrier: Barrier;
  mount: string;
  clock?: () => Date;
  logger?: PkiLogger;
  /** The mount's default and maximum TTLs, read at each request so a tune applies at once. */
  mountTtls?: () => MountTtls;
  /** Finds transit engines by mount path, for issuers whose keys are transit keys. */
  transit?: TransitResolver;
}

function validateRoleName(name: string): void {
  if (!ROLE_NAME.test(name) || name === "." || name === "..") {
    throw new KeywardError(
      "invalid_field",
      'role names must be 1-128 letters, digits, "_", "." or "-"',
      {
        field: "name",
      },
    );
  }
}

/**
 * One PKI mount: its CAs (issuers and keys), roles, issued certificates and
 * revocation state, stored behind the barrier under `<mount>/`. The HTTP
 * routes call it, and it does not depend on HTTP.
 */
export class PkiService {
  readonly mount: string;
  readonly context: PkiContext;
  readonly revocation: RevocationService;
  /** The phased rotation of the default issuer (`issuers/rotate/*`). */
  readonly rotation: IssuerRotation;
  readonly logger: PkiLogger | undefined;
  readonly #transit: TransitResolver | undefined;

  constructor(options: PkiServiceOptions) {
    this.mount = options.mount;
    this.logger = options.logger;
    const store = new PkiStore(options.barrier, options.mount);
    const clock = options.clock ?? (() => new Date());
    this.context = {
      mount: options.mount,
      store,
      issuers: new IssuerRegistry(store, clock, options.transit),
      config: new PkiConfig(store),
      inventory: new CertificateInventory(store, {
        mount: options.mount,
        ...(options.logger ? { logger: options.logger } : {}),
      }),
      clock,
      mountTtls:
        options.mountTtls ??
        (() => ({
          defaultSeconds: DEFAULT_MOUNT_TTL_SECONDS,
          maxSeconds: DEFAULT_MOUNT_TTL_SECONDS,
        })),
    };
    this.revocation = new RevocationService(this.context, options.logger);
    this.rotation = new IssuerRotation(this.context, options.logger);
    this.#transit = options.transit;
  }

  get issuers(): IssuerRegistry {
    return this.context.issuers;
  }

  get inventory(): CertificateInventory {
    return this.context.inventory;
  }

  get config(): PkiConfig {
    return this.context.config;
  }

  // Roles.

  async readRole(name: string): Promise<Role | undefined> {
    validateRoleName(name);
    return this.context.store.get<Role>(`roles/${name}`);
  }

  async writeRole(name: string, input: RoleInput): Promise<Role> {
    validateRoleName(name);
    const role = buildRole(input);
    await this.context.store.put(`roles/${name}`, role);
    return role;
  }

  async deleteRole(name: string): Promise<void> {
    validateRoleName(name);
    await this.context.store.delete(`roles/${name}`);
  }

  async listRoles(): Promise<string[]> {
    return this.context.store.list("roles");
  }

  // CAs.

  async generateRoot(type: string, request: CaRequest) {
    const result = await generateRoot(this.context, type, request);
    this.logger?.info({ mount: this.mount, issuer: result.issuer_id }, "generated root CA");
    return result;
  }

  async generateIntermediate(type: string, request: CaRequest) {
    return generateIntermediateCsr(this.context, type, request);
  }

  async setSigned(certificate: string) {
    return importBundle(this.context, certificate, "certificate", {
      requireKeyForFirst: true,
      keysAlone: false,
    });
  }

  async importBundle(pemBundle: string) {
    return importBundle(this.context, pemBundle, "pem_bundle", {
      requireKeyForFirst: false,
      keysAlone: true,
    });
  }

  /** Imports an external CA certificate whose private key is a transit key (see `importTransitIssuer`). */
  async importTransitIssuer(request: TransitImportRequest) {
    return importTransitIssuer(this.context, this.#transit, request);
  }

  async signIntermediate(issuerRef: string, request: CaRequest) {
    const issuer = await this.issuers.resolve(issuerRef);
    return signIntermediate(this.context, issuer, request);
  }

  // Issuance.

  async issue(roleName: string, request: IssueRequest, issuerRef?: string) {
    const role = await this.readRole(roleName);
    return issueCertificate(this.context, {
      role,
      roleName,
      issuerRef,
      request,
      mode: { kind: "issue" },
    });
  }

  /**
   * Signs the CSR of `request` under role `roleName`. `owner` names the
   * Keyward service that requests and tracks the certificate (see
   * `CertificateRecord.owner`); the PKI API leaves it out.
   */
  async sign(roleName: string, request: IssueRequest, issuerRef?: string, owner?: string) {
    const role = await this.readRole(roleName);
    return issueCertificate(this.context, {
      role,
      roleName,
      issuerRef,
      request,
      mode: { kind: "sign" },
      owner,
    });
  }

  async signVerbatim(roleName: string | undefined, request: IssueRequest, issuerRef?: string) {
    let role: Role | undefined;
    if (roleName !== undefined) {
      role = await this.readRole(roleName);
      if (!role)
        throw new KeywardError("not_found", `role "${roleName}" not found`, { field: "role" });
    }
    return issueCertificate(this.context, {
      role,
      roleName: roleName ?? "",
      issuerRef,
      request,
      mode: { kind: "verbatim" },
    });
  }
}
