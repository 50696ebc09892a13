import type { SweepSummary } from "../engines/transit/lifecycle.ts";
import type { TransitService } from "../engines/transit/service.ts";
import type { Logger } from "../engines/transit/types.ts";
import { isKeywardError } from "../errors.ts";
import type { Job, Scheduler } from "./scheduler.ts";

/** The service methods the transit jobs call. */
export type TransitJobTarget = Pick<TransitService, "mount" | "rotateDueKeys" | "deleteDueKeys">;

export interface TransitJobOptions {
  /** The mounted transit services, read again at every run so new mounts are included. */
  services: () => TransitJobTarget[];
  /** Time between runs, in milliseconds. */
  intervalMs: number;
  logger?: Logger;
}

/** True for errors that only mean the barrier is closed; a run skips the mount then. */
function isSealedError(error: unknown): boolean {
  return isKeywardError(error) && (error.code === "sealed" || error.code === "not_initialized");
}

/**
 * Runs `sweep` on every mount. A sealed mount is skipped quietly. Any other
 * failure is logged and the remaining mounts still run. The run then throws,
 * so the scheduler records the failure. A mount whose keys changed gets one
 * log line with the count and at most the first 100 names.
 */
async function sweepMounts(
  job: string,
  options: TransitJobOptions,
  sweep: (service: TransitJobTarget) => Promise<SweepSummary>,
): Promise<void> {
  const failedMounts: string[] = [];
  let firstError: unknown;
  for (const service of options.services()) {
    try {
      const summary = await sweep(service);
      if (summary.count > 0 || summary.failed > 0) {
        options.logger?.info(
          {
            mount: service.mount,
            job,
            count: summary.count,
            failed: summary.failed,
            keys: summary.names,
          },
          "job changed keys",
        );
      }
    } catch (error) {
      if (isSealedError(error)) {
        options.logger?.debug?.({ mount: service.mount, job }, "job skipped a sealed mount");
        continue;
      }
      options.logger?.error({ mount: service.mount, job, err: error }, "job failed for mount");
      failedMounts.push(service.mount);
      firstError ??= error;
    }
  }
  if (failedMounts.length > 0) {
    throw new Error(`${job} failed for mounts: ${failedMounts.join(", ")}`, { cause: firstError });
  }
}

/**
 * Creates the transit engine's background jobs: automatic rotation of keys
 * whose rotation period has passed, and deletion of keys whose scheduled
 * deletion date has passed, on every mount. The scheduler runs both at start, so a
 * rotation or deletion that fell due while the server was down runs then.
 */
export function createTransitJobs(options: TransitJobOptions): Job[] {
  return [
    {
      name: "transit-auto-rotation",
      intervalMs: options.intervalMs,
      run: (now) =>
        sweepMounts("transit-auto-rotation", options, (service) => service.rotateDueKeys(now)),
    },
    {
      name: "transit-scheduled-deletion",
      intervalMs: options.intervalMs,
      run: (now) =>
        sweepMounts("transit-scheduled-deletion", options, (service) => service.deleteDueKeys(now)),
    },
  ];
}

/** Registers the transit jobs (see `createTransitJobs`) with `scheduler`. */
export function registerTransitJobs(scheduler: Scheduler, options: TransitJobOptions): void {
  for (const job of createTransitJobs(options)) scheduler.register(job);
}
