import { createMountSweepJob, type MountSweepLogger } from "../../jobs/mount-sweep.ts";
import type { Job } from "../../jobs/scheduler.ts";
import type { PkiService } from "./service.ts";

/** A scheduled job, in the shape the job scheduler registers. */
export type PkiJob = Job;

/**
 * Creates the PKI engine's scheduled jobs, which run on every PKI mount at
 * unseal and then at each interval. `pki-certificate-index` starts the
 * index rebuild of a mount written before the index existed; the rebuild
 * runs in the background, and the job does nothing once the index is
 * complete. `pki-crl-rebuild` rebuilds CRLs (before expiry with
 * `auto_rebuild`, delta CRLs at their interval, and any expired CRL), and
 * `pki-auto-tidy` runs auto-tidy. A sealed mount is skipped; a failure on
 * one mount is logged and the other mounts still run.
 */
export function createPkiJobs(options: {
  services: () => PkiService[];
  intervalMs: number;
  logger?: MountSweepLogger;
}): PkiJob[] {
  const { services, intervalMs, logger } = options;
  return [
    createMountSweepJob({
      name: "pki-certificate-index",
      intervalMs,
      services,
      logger,
      work: async (service) => service.inventory.index.start(),
    }),
    createMountSweepJob({
      name: "pki-crl-rebuild",
      intervalMs,
      services,
      logger,
      work: (service, now) => service.revocation.crls.rebuildDue(now),
    }),
    createMountSweepJob({
      name: "pki-auto-tidy",
      intervalMs,
      services,
      logger,
      work: (service, now) => service.revocation.tidy.tidyIfDue(now),
    }),
  ];
}
