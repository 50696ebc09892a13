import { createMountSweepJob, type MountSweepLogger } from "../../jobs/mount-sweep.ts";
import type { Job } from "../../jobs/scheduler.ts";
import type { PkiService } from "./service.ts";

/** A scheduled job, in the shape the job scheduler registers. */
export type PkiJob = Job;

/**
 * Creates the PKI engine's scheduled jobs: CRL rebuilds (before expiry with
 * `auto_rebuild`, delta CRLs at their interval, and any expired CRL) and
 * auto-tidy, on every PKI mount. A sealed mount is skipped; a failure on
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
