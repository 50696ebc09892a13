import { createMountSweepJob, type MountSweepLogger } from "../../jobs/mount-sweep.ts";
import type { Job } from "../../jobs/scheduler.ts";
import type { WireguardService } from "./service.ts";

/** A scheduled job, in the shape the job scheduler registers. */
export type WireguardJob = Job;

/** The service methods the jobs call. */
export type WireguardJobTarget = Pick<
  WireguardService,
  "mount" | "activateStagedKeys" | "requestDueRotations"
>;

/**
 * Creates the WireGuard engine's scheduled jobs, which run on every mount.
 * `wireguard-key-activation` stores staged keys whose activation time has
 * come as active and arms activation timers for the others. Its first run,
 * at start, re-arms the timers of a service that has just been built.
 * `wireguard-rotation-requests` requests new keys from agents once their
 * keys are older than their network's rotation period. A sealed mount is
 * skipped. A failure on one mount is logged, and the other mounts still run.
 */
export function createWireguardJobs(options: {
  /** The mounted services, read again at every run so new mounts are included. */
  services: () => WireguardJobTarget[];
  intervalMs: number;
  logger?: MountSweepLogger;
}): WireguardJob[] {
  const { services, intervalMs, logger } = options;
  return [
    createMountSweepJob({
      name: "wireguard-key-activation",
      intervalMs,
      services,
      logger,
      work: (service, now) => service.activateStagedKeys(now),
      changed: "peers",
    }),
    createMountSweepJob({
      name: "wireguard-rotation-requests",
      intervalMs,
      services,
      logger,
      work: (service, now) => service.requestDueRotations(now),
      changed: "peers",
    }),
  ];
}
