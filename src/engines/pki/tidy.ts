import {
  type AcmeTidyCounts,
  DEFAULT_ACME_ACCOUNT_SAFETY_BUFFER_SECONDS,
  tidyAcmeRecords,
} from "./acme/tidy.ts";
import type { PkiContext } from "./context.ts";
import type { CrlService } from "./crls.ts";
import { issuerCanSign } from "./issuers.ts";
import type { PkiLogger } from "./service.ts";
import type { RevokedRecord } from "./types.ts";

/** Result of a tidy run, as `tidy-status` reports it. */
export interface TidyResult {
  state: "Finished" | "Error";
  timeStarted: string;
  timeFinished: string;
  certStoreDeletedCount: number;
  revokedCertDeletedCount: number;
  /** Counts of the ACME records tidy deleted; absent when the run did not tidy ACME records. */
  acme?: AcmeTidyCounts;
  error?: string;
}

/** Removal of expired certificates and revocation entries, on demand and on the scheduler. */
export class TidyService {
  readonly #context: PkiContext;
  readonly #crls: CrlService;
  readonly #logger: PkiLogger | undefined;
  #lastTidy: TidyResult | undefined;

  constructor(context: PkiContext, crls: CrlService, logger?: PkiLogger) {
    this.#context = context;
    this.#crls = crls;
    this.#logger = logger;
  }

  /**
   * Removes certificates (and revocation entries) that expired more than
   * `safetyBufferSeconds` ago, then rebuilds the CRLs that lost entries.
   */
  async tidy(options: {
    tidyCertStore: boolean;
    tidyRevokedCerts: boolean;
    safetyBufferSeconds: number;
    /** Also delete ended ACME orders, authorizations and accounts (see `tidyAcmeRecords`). */
    tidyAcme?: boolean;
    /** How long deactivated ACME accounts are kept; Vault's default of 30 days when absent. */
    acmeAccountSafetyBufferSeconds?: number;
  }): Promise<TidyResult> {
    const { store, inventory, clock } = this.#context;
    const started = clock();
    const cutoff = started.getTime() - options.safetyBufferSeconds * 1000;
    let certStoreDeleted = 0;
    let revokedDeleted = 0;
    let acme: AcmeTidyCounts | undefined;
    const touchedIssuers = new Set<string>();
    try {
      if (options.tidyRevokedCerts) {
        for (const serial of await store.list("revoked")) {
          const entry = await store.get<RevokedRecord>(`revoked/${serial}`);
          if (!entry || Date.parse(entry.notAfter) >= cutoff) continue;
          await store.delete(`revoked/${serial}`);
          await inventory.delete(serial);
          touchedIssuers.add(entry.issuerId);
          revokedDeleted++;
        }
      }
      if (options.tidyCertStore) {
        for (const record of await inventory.all()) {
          if (Date.parse(record.notAfter) >= cutoff) continue;
          // Revoked certificates stay listed in the CRL until tidy_revoked_certs removes them.
          if (record.revokedAt !== undefined && !options.tidyRevokedCerts) continue;
          await inventory.delete(record.serialHex);
          certStoreDeleted++;
        }
      }
      if (options.tidyAcme) {
        acme = await tidyAcmeRecords(store, {
          now: started,
          safetyBufferSeconds: options.safetyBufferSeconds,
          accountSafetyBufferSeconds:
            options.acmeAccountSafetyBufferSeconds ?? DEFAULT_ACME_ACCOUNT_SAFETY_BUFFER_SECONDS,
        });
      }
      for (const issuerId of touchedIssuers) {
        const issuer = await this.#context.issuers.resolve(issuerId).catch(() => undefined);
        if (issuer && issuerCanSign(issuer)) await this.#crls.rebuild(issuer);
      }
      this.#lastTidy = {
        state: "Finished",
        timeStarted: started.toISOString(),
        timeFinished: clock().toISOString(),
        certStoreDeletedCount: certStoreDeleted,
        revokedCertDeletedCount: revokedDeleted,
        ...(acme ? { acme } : {}),
      };
    } catch (error) {
      this.#lastTidy = {
        state: "Error",
        timeStarted: started.toISOString(),
        timeFinished: clock().toISOString(),
        certStoreDeletedCount: certStoreDeleted,
        revokedCertDeletedCount: revokedDeleted,
        error: "tidy failed; see the server log",
      };
      throw error;
    }
    this.#logger?.info(
      { mount: this.#context.mount, certStoreDeleted, revokedDeleted, ...(acme ? { acme } : {}) },
      "tidied certificates",
    );
    return this.#lastTidy;
  }

  get lastTidy(): TidyResult | undefined {
    return this.#lastTidy;
  }

  /** Runs tidy for the scheduler when auto-tidy is enabled and its interval has passed since the last run. */
  async tidyIfDue(now: Date): Promise<void> {
    const config = await this.#context.config.tidy();
    if (!config.enabled) return;
    const last = this.#lastTidy ? Date.parse(this.#lastTidy.timeStarted) : 0;
    if (now.getTime() - last < config.intervalSeconds * 1000) return;
    await this.tidy(config);
  }
}
