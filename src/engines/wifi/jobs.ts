import { createMountSweepJob, type MountSweepLogger } from "../../jobs/mount-sweep.ts";
import type { Job } from "../../jobs/scheduler.ts";
import type { WifiService } from "./service.ts";

/** A scheduled job, in the shape the job scheduler registers. */
export type WifiJob = Job;

/**
 * Creates `wifi-passphrase-rotation`, which on every mount replaces the
 * passphrases older than their network's rotation period and removes
 * previous passphrases whose grace window has ended. A sealed mount is
 * skipped. A failure on one mount is logged, and the others still run.
 */
export function createWifiJobs(options: {
  /** The mounted services, read again at every run so new mounts are included. */
  services: () => Pick<WifiService, "mount" | "rotateDue">[];
  intervalMs: number;
  logger?: MountSweepLogger;
}): WifiJob[] {
  return [
    createMountSweepJob({
      name: "wifi-passphrase-rotation",
      intervalMs: options.intervalMs,
      services: options.services,
      logger: options.logger,
      work: (service, now) => service.rotateDue(now),
      changed: "networks",
    }),
  ];
}
