import {
  type AcmeTidyCounts,
  DEFAULT_ACME_ACCOUNT_SAFETY_BUFFER_SECONDS,
  tidyAcmeRecords,
} from "./acme/tidy.ts";
import {
  EXPIRY_INDEX,
  entryId,
  type IndexEntry,
  indexTime,
  REVOKED_INDEX,
} from "./certificate-index.ts";
import type { PkiContext } from "./context.ts";
import type { CrlService } from "./crls.ts";
import { unrevokedEntries, walkEntries, yieldToEventLoop } from "./index-walk.ts";
import { deleteCertificate, deleteRevocation } from "./inventory.ts";
import { issuerCanSign } from "./issuers.ts";
import type { PkiLogger } from "./service.ts";
import type { CertificateRecord, RevokedRecord } from "./types.ts";

/**
 * Certificates or revocation entries deleted per transaction. Tidy yields
 * to the event loop between batches, so other requests wait for at most
 * one batch before their storage calls run.
 */
const TIDY_BATCH = 200;

/**
 * Tidy's commits are not synced to the disk one by one: a deletion lost in
 * a power failure is made again by the next run, and the next synced
 * commit of any request covers them.
 */
const TIDY_COMMITS = { syncToDisk: false } as const;

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
    const cutoff = indexTime(started.getTime() - options.safetyBufferSeconds * 1000);
    let certStoreDeleted = 0;
    let revokedDeleted = 0;
    let acme: AcmeTidyCounts | undefined;
    const touchedIssuers = new Set<string>();
    try {
      await inventory.index.ready();
      if (options.tidyRevokedCerts) {
        revokedDeleted = await this.#tidyRevoked(cutoff, touchedIssuers);
      }
      if (options.tidyCertStore) {
        certStoreDeleted = await this.#tidyCertStore(cutoff, options.tidyRevokedCerts);
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

  /**
   * Deletes the revocation entries (and the certificates they name) whose
   * notAfter is before `cutoff`, walking the revoked index in batches of
   * `TIDY_BATCH`, one transaction each. Returns how many entries it deleted.
   */
  async #tidyRevoked(cutoff: string, touchedIssuers: Set<string>): Promise<number> {
    const { store } = this.#context;
    const entries = walkEntries(store, REVOKED_INDEX, { before: cutoff });
    return this.#inBatches(entries, async (batch) => {
      const issuers = await store.transaction(async (tx) => {
        const deletedFor: string[] = [];
        for (const indexed of batch) {
          const entry = await tx.get<RevokedRecord>(`revoked/${indexed.serialHex}`);
          // The walked index entry goes even when its revocation entry is gone or names another notAfter.
          const own = entry && entryId(entry.notAfter, entry.issuerId, entry.serialHex);
          if (own !== indexed.id) await tx.delete(`${REVOKED_INDEX}/${indexed.id}`);
          if (!entry) continue;
          await deleteRevocation(tx, entry);
          const record = await tx.get<CertificateRecord>(`certs/${indexed.serialHex}`);
          if (record) await deleteCertificate(tx, record);
          deletedFor.push(entry.issuerId);
        }
        return deletedFor;
      }, TIDY_COMMITS);
      for (const issuer of issuers) touchedIssuers.add(issuer);
      return issuers.length;
    });
  }

  /**
   * Deletes the certificates whose notAfter is before `cutoff`, walking the
   * expiry index in batches, one transaction each. Revoked certificates
   * stay listed in their CRL until `tidyRevoked` is set. Returns how many
   * certificates it deleted.
   */
  async #tidyCertStore(cutoff: string, tidyRevoked: boolean): Promise<number> {
    const { store } = this.#context;
    const entries = tidyRevoked
      ? walkEntries(store, EXPIRY_INDEX, { before: cutoff })
      : unrevokedEntries(store, { before: cutoff });
    return this.#inBatches(entries, (batch) =>
      store.transaction(async (tx) => {
        let deleted = 0;
        for (const indexed of batch) {
          const record = await tx.get<CertificateRecord>(`certs/${indexed.serialHex}`);
          if (record?.revokedAt !== undefined && !tidyRevoked) continue;
          // The walked entry goes even when its record is gone or names another notAfter.
          const own = record && entryId(record.notAfter, record.issuerId, record.serialHex);
          if (own !== indexed.id) await tx.delete(`${EXPIRY_INDEX}/${indexed.id}`);
          if (!record) continue;
          await deleteCertificate(tx, record);
          deleted += 1;
        }
        return deleted;
      }, TIDY_COMMITS),
    );
  }

  /**
   * Runs `work` on the entries in batches of `TIDY_BATCH` and yields to
   * the event loop after each, so requests are served while tidy runs.
   * Returns the sum of what `work` returns.
   */
  async #inBatches(
    entries: AsyncIterable<IndexEntry>,
    work: (batch: IndexEntry[]) => Promise<number>,
  ): Promise<number> {
    let total = 0;
    let batch: IndexEntry[] = [];
    for await (const entry of entries) {
      batch.push(entry);
      if (batch.length < TIDY_BATCH) continue;
      total += await work(batch);
      batch = [];
      await yieldToEventLoop();
    }
    if (batch.length > 0) total += await work(batch);
    return total;
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
