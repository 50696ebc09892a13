import { KeywardError } from "../../errors.ts";
import type { PkiContext } from "./context.ts";
import { issuerCanSign, type LoadedIssuer } from "./issuers.ts";
import { buildCrl } from "./revocation/index.ts";
import type { CrlRecord, IssuerRecord, RevokedRecord } from "./types.ts";

/**
 * Each issuer's CRLs, at `crls/<issuer id>`: a base CRL and, when delta
 * CRLs are enabled, a delta CRL over it. Base and delta CRLs share one
 * CRL number sequence (RFC 5280 section 5.2.3).
 */
export class CrlService {
  readonly #context: PkiContext;

  constructor(context: PkiContext) {
    this.#context = context;
  }

  async #revokedFor(issuerId: string): Promise<RevokedRecord[]> {
    const entries: RevokedRecord[] = [];
    for (const serial of await this.#context.store.list("revoked")) {
      const entry = await this.#context.store.get<RevokedRecord>(`revoked/${serial}`);
      if (entry && entry.issuerId === issuerId) entries.push(entry);
    }
    return entries;
  }

  async #signer(issuer: IssuerRecord): Promise<LoadedIssuer> {
    return this.#context.issuers.load(issuer);
  }

  /** Builds a new base CRL for an issuer (and an empty delta over it when deltas are on) and stores it. */
  async rebuild(issuer: IssuerRecord): Promise<CrlRecord> {
    const { store, clock, config } = this.#context;
    return store.withLock(`crls/${issuer.id}`, async () => {
      const crlConfig = await config.crl();
      const urls = await config.urls();
      const previous = await store.get<CrlRecord>(`crls/${issuer.id}`);
      const loaded = await this.#signer(issuer);
      const entries = await this.#revokedFor(issuer.id);
      const number = nextNumber(previous);
      const thisUpdate = clock();
      const nextUpdate = new Date(thisUpdate.getTime() + crlConfig.expirySeconds * 1000);
      const deltaUrl = crlConfig.enableDelta ? urls.deltaCrlDistributionPoints?.[0] : undefined;
      const der = await buildCrl({
        signer: { certificate: loaded.certificate, dataSigner: loaded.signer },
        entries: entries.map(toEntry),
        crlNumber: number,
        thisUpdate,
        nextUpdate,
        ...(deltaUrl ? { deltaUrl } : {}),
      });
      let record: CrlRecord = {
        issuerId: issuer.id,
        crlNumber: number.toString(),
        thisUpdate: thisUpdate.toISOString(),
        nextUpdate: nextUpdate.toISOString(),
        der: Buffer.from(der).toString("base64"),
        baseSerials: entries.map((entry) => entry.serialHex),
      };
      if (crlConfig.enableDelta)
        record = await this.#withDelta(record, loaded, [], thisUpdate, nextUpdate, number + 1n);
      await store.put(`crls/${issuer.id}`, record);
      return record;
    });
  }

  /** Builds a new delta CRL with the revocations since the base CRL. Builds the base first when there is none. */
  async rebuildDelta(issuer: IssuerRecord): Promise<CrlRecord> {
    const { store, clock, config } = this.#context;
    const existing = await store.get<CrlRecord>(`crls/${issuer.id}`);
    if (!existing) return this.rebuild(issuer);
    return store.withLock(`crls/${issuer.id}`, async () => {
      const crlConfig = await config.crl();
      const base = (await store.get<CrlRecord>(`crls/${issuer.id}`)) ?? existing;
      const loaded = await this.#signer(issuer);
      const entries = (await this.#revokedFor(issuer.id)).filter(
        (entry) => !base.baseSerials.includes(entry.serialHex),
      );
      const thisUpdate = clock();
      const nextUpdate = new Date(thisUpdate.getTime() + crlConfig.expirySeconds * 1000);
      const record = await this.#withDelta(
        base,
        loaded,
        entries,
        thisUpdate,
        nextUpdate,
        nextNumber(base),
      );
      await store.put(`crls/${issuer.id}`, record);
      return record;
    });
  }

  async #withDelta(
    base: CrlRecord,
    loaded: LoadedIssuer,
    entries: RevokedRecord[],
    thisUpdate: Date,
    nextUpdate: Date,
    number: bigint,
  ): Promise<CrlRecord> {
    const der = await buildCrl({
      signer: { certificate: loaded.certificate, dataSigner: loaded.signer },
      entries: entries.map(toEntry),
      crlNumber: number,
      thisUpdate,
      nextUpdate,
      deltaOf: BigInt(base.crlNumber),
    });
    return {
      ...base,
      deltaNumber: number.toString(),
      deltaDer: Buffer.from(der).toString("base64"),
      deltaThisUpdate: thisUpdate.toISOString(),
    };
  }

  /** Returns an issuer's current CRL, building it first when there is none. */
  async crl(issuer: IssuerRecord, delta: boolean): Promise<Buffer> {
    let record = await this.#context.store.get<CrlRecord>(`crls/${issuer.id}`);
    if (!record) record = await this.rebuild(issuer);
    if (delta) {
      if (!record.deltaDer) {
        if (!(await this.#context.config.crl()).enableDelta) {
          throw new KeywardError(
            "not_found",
            "delta CRLs are disabled; enable them with config/crl enable_delta",
          );
        }
        record = await this.rebuildDelta(issuer);
      }
      return Buffer.from(record.deltaDer!, "base64");
    }
    return Buffer.from(record.der, "base64");
  }

  /** Rebuilds the CRLs of every issuer whose private key is stored in Keyward. */
  async rotateAll(): Promise<void> {
    for (const issuer of await this.#context.issuers.list()) {
      if (issuerCanSign(issuer)) await this.rebuild(issuer);
    }
  }

  /**
   * Rebuilds, for the scheduler, each CRL that is within the grace period
   * of its nextUpdate (when `auto_rebuild` is on) and each delta CRL older
   * than the delta rebuild interval.
   */
  async rebuildDue(now: Date): Promise<void> {
    const crlConfig = await this.#context.config.crl();
    if (crlConfig.disable) return;
    for (const issuer of await this.#context.issuers.list()) {
      if (!issuerCanSign(issuer)) continue;
      const record = await this.#context.store.get<CrlRecord>(`crls/${issuer.id}`);
      const nextUpdate = record ? Date.parse(record.nextUpdate) : 0;
      const due = !record || nextUpdate - crlConfig.autoRebuildGraceSeconds * 1000 <= now.getTime();
      // An expired CRL makes relying parties fail closed, so it is rebuilt even without auto_rebuild.
      const expired = record !== undefined && nextUpdate <= now.getTime();
      if ((crlConfig.autoRebuild && due) || expired) {
        await this.rebuild(issuer);
      } else if (crlConfig.enableDelta && record) {
        const deltaAge = now.getTime() - Date.parse(record.deltaThisUpdate ?? record.thisUpdate);
        if (deltaAge >= crlConfig.deltaRebuildIntervalSeconds * 1000) {
          await this.rebuildDelta(issuer);
        }
      }
    }
  }
}

function nextNumber(record: CrlRecord | undefined): bigint {
  if (!record) return 1n;
  const base = BigInt(record.crlNumber);
  const delta = record.deltaNumber ? BigInt(record.deltaNumber) : 0n;
  return (base > delta ? base : delta) + 1n;
}

function toEntry(entry: RevokedRecord) {
  return {
    serialHex: entry.serialHex,
    revokedAt: new Date(entry.revokedAt),
    ...(entry.reason ? { reason: entry.reason } : {}),
  };
}
