import { isKeywardError } from "../../errors.ts";
import {
  CERTIFICATE_INDEX_MARKER,
  CERTIFICATE_INDEX_VERSION,
  certificateIndexPaths,
  INDEX_ENTRY_VALUE,
  revokedIndexPath,
} from "./certificate-index.ts";
import { walkKeys } from "./index-walk.ts";
import type { PkiLogger } from "./service.ts";
import type { PkiStore, PkiTransaction } from "./store.ts";
import type { CertificateRecord, RevokedRecord } from "./types.ts";

/**
 * Records indexed per transaction during a rebuild. Each certificate
 * writes one entry per indexed name plus one, and a transaction should
 * stay near the barrier's headroom of 1,000 encryptions.
 */
const REBUILD_BATCH = 200;

/** The record at `CERTIFICATE_INDEX_MARKER`. */
interface IndexMarker {
  version: number;
  completedAt: string;
}

/**
 * Makes sure a mount's certificate indexes are complete. A mount written
 * before the indexes existed has no marker, so its certificates and
 * revocation entries are indexed again, batch by batch, each batch in its
 * own transaction, and the marker is written at the end. An interrupted
 * rebuild starts over at the next start, and writing an entry again
 * changes nothing.
 *
 * Certificates issued during a rebuild write their own entries, and each
 * batch reads its records inside its transaction, so a certificate deleted
 * meanwhile gets no entries.
 */
export class CertificateIndexBuilder {
  readonly #store: PkiStore;
  readonly #mount: string;
  readonly #logger: PkiLogger | undefined;
  #ready: Promise<void> | undefined;

  constructor(store: PkiStore, mount: string, logger?: PkiLogger) {
    this.#store = store;
    this.#mount = mount;
    this.#logger = logger;
  }

  /**
   * Resolves once the indexes are complete, rebuilding them first when
   * needed. Concurrent callers share one rebuild. After a failure the next
   * call tries again.
   */
  ready(): Promise<void> {
    if (this.#ready === undefined) {
      const run = this.#ensure();
      this.#ready = run;
      run.catch((error: unknown) => {
        if (this.#ready === run) this.#ready = undefined;
        if (isKeywardError(error) && error.code === "sealed") {
          this.#logger?.info({ mount: this.#mount }, "certificate index rebuild stopped by seal");
        } else {
          this.#logger?.error(
            { mount: this.#mount, err: error },
            "certificate index rebuild failed",
          );
        }
      });
    }
    return this.#ready;
  }

  /**
   * Starts the rebuild when one is needed and returns at once, so the
   * scheduler (which waits for running jobs before a seal) is not held by
   * a long rebuild. Failures are logged by `ready`.
   */
  start(): void {
    this.ready().catch(() => undefined);
  }

  async #ensure(): Promise<void> {
    const marker = await this.#store.get<IndexMarker>(CERTIFICATE_INDEX_MARKER);
    if (marker?.version === CERTIFICATE_INDEX_VERSION) return;

    const started = Date.now();
    this.#logger?.info(
      { mount: this.#mount, version: CERTIFICATE_INDEX_VERSION },
      "certificate index rebuild started",
    );
    const certificates = await this.#indexFolder("certs", async (tx, serial) => {
      const record = await tx.get<CertificateRecord>(`certs/${serial}`);
      return record ? certificateIndexPaths(record) : [];
    });
    const revocations = await this.#indexFolder("revoked", async (tx, serial) => {
      const entry = await tx.get<RevokedRecord>(`revoked/${serial}`);
      return entry ? [revokedIndexPath(entry)] : [];
    });
    const completed: IndexMarker = {
      version: CERTIFICATE_INDEX_VERSION,
      completedAt: new Date().toISOString(),
    };
    await this.#store.put(CERTIFICATE_INDEX_MARKER, completed);
    this.#logger?.info(
      { mount: this.#mount, certificates, revocations, durationMs: Date.now() - started },
      "certificate index rebuild finished",
    );
  }

  /** Writes the index entries of every record in `folder`, one batch per transaction; returns the records read. */
  async #indexFolder(
    folder: string,
    pathsOf: (tx: PkiTransaction, serial: string) => Promise<string[]>,
  ): Promise<number> {
    let count = 0;
    let batch: string[] = [];
    const flush = async () => {
      const serials = batch;
      batch = [];
      // Unsynced commits: an entry lost in a power failure is written again by the rebuild
      // that the missing marker then causes, and the marker's own commit is synced.
      await this.#store.transaction(
        async (tx) => {
          for (const serial of serials) {
            for (const path of await pathsOf(tx, serial)) await tx.put(path, INDEX_ENTRY_VALUE);
          }
        },
        { syncToDisk: false },
      );
    };
    for await (const serial of walkKeys(this.#store, folder, { pageSize: REBUILD_BATCH })) {
      // Only direct children are records; nothing else is stored below these folders.
      if (serial.includes("/")) continue;
      batch.push(serial);
      count += 1;
      if (batch.length >= REBUILD_BATCH) await flush();
    }
    if (batch.length > 0) await flush();
    return count;
  }
}
