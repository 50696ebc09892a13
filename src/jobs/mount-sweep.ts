import { isKeywardError } from "../errors.ts";
import type { Job } from "./scheduler.ts";

/** The logger calls a mount sweep makes. */
export interface MountSweepLogger {
  info(fields: object, message?: string): void;
  error(fields: object, message?: string): void;
}

interface MountSweepCommon<S extends { mount: string }> {
  /** The job's name in the scheduler, in logs and in the error of a failed run. */
  name: string;
  /** Time between runs, in milliseconds. */
  intervalMs: number;
  /** The mounted services, read again at every run so new mounts are included. */
  services: () => S[];
  logger?: MountSweepLogger;
}

/** A sweep whose work on a mount returns nothing to log. */
interface SilentMountSweep<S extends { mount: string }> extends MountSweepCommon<S> {
  work: (service: S, now: Date) => Promise<void>;
  changed?: undefined;
}

/** A sweep whose work on a mount returns the names of the records it changed. */
interface ReportingMountSweep<S extends { mount: string }> extends MountSweepCommon<S> {
  work: (service: S, now: Date) => Promise<readonly string[]>;
  /**
   * The kind of the returned names, such as "peers". A non-empty list is
   * logged at info level as `job changed <changed>`, in a field of that name.
   */
  changed: string;
}

export type MountSweepOptions<S extends { mount: string }> =
  | SilentMountSweep<S>
  | ReportingMountSweep<S>;

/** True for errors that only mean the barrier is closed, so a run skips the mount. */
function isSealedError(error: unknown): boolean {
  return isKeywardError(error) && (error.code === "sealed" || error.code === "not_initialized");
}

/**
 * Creates a job that runs `work` on every mount of an engine. A mount that
 * is sealed or not initialised is skipped without a log line. Any other
 * failure is logged with the mount and the remaining mounts still run, and
 * the run then throws an error naming the failed mounts, so the scheduler
 * records the failure.
 */
export function createMountSweepJob<S extends { mount: string }>(
  options: MountSweepOptions<S>,
): Job {
  const { name, logger } = options;
  return {
    name,
    intervalMs: options.intervalMs,
    run: async (now) => {
      const failed: string[] = [];
      for (const service of options.services()) {
        try {
          if (options.changed === undefined) {
            await options.work(service, now);
            continue;
          }
          const changed = await options.work(service, now);
          if (changed.length > 0) {
            logger?.info(
              { mount: service.mount, job: name, [options.changed]: changed },
              `job changed ${options.changed}`,
            );
          }
        } catch (error) {
          if (isSealedError(error)) continue;
          logger?.error({ mount: service.mount, job: name, err: error }, "job failed for mount");
          failed.push(service.mount);
        }
      }
      if (failed.length > 0) throw new Error(`${name} failed for mounts: ${failed.join(", ")}`);
    },
  };
}
