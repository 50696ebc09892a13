import { isKeywardError } from "../../errors.ts";
import type { WireguardService } from "./service.ts";

/** The logger calls the WireGuard jobs make. */
interface JobLogger {
  info(fields: object, message?: string): void;
  error(fields: object, message?: string): void;
}

/** A scheduled job, in the shape the job scheduler registers. */
export interface WireguardJob {
  name: string;
  intervalMs: number;
  run(now: Date): Promise<void>;
}

/** The service methods the jobs call. */
export type WireguardJobTarget = Pick<
  WireguardService,
  "mount" | "activateStagedKeys" | "requestDueRotations"
>;

/**
 * Creates the WireGuard engine's scheduled jobs, run on every mount:
 * `wireguard-key-activation` stores staged keys whose activation time has
 * come as active and arms activation timers for the others (its first run,
 * at start, re-arms the timers of a service that has just been built), and
 * `wireguard-rotation-requests` asks agents for new keys once their keys
 * are older than their network's rotation period. A sealed mount is
 * skipped; a failure on one mount is logged and the other mounts still run.
 */
export function createWireguardJobs(options: {
  /** The mounted services, read again at every run so new mounts are included. */
  services: () => WireguardJobTarget[];
  intervalMs: number;
  logger?: JobLogger;
}): WireguardJob[] {
  const sweep = (
    name: string,
    work: (service: WireguardJobTarget, now: Date) => Promise<string[]>,
  ): WireguardJob => ({
    name,
    intervalMs: options.intervalMs,
    run: async (now) => {
      const failed: string[] = [];
      for (const service of options.services()) {
        try {
          const peers = await work(service, now);
          if (peers.length > 0) {
            options.logger?.info({ mount: service.mount, job: name, peers }, "job changed peers");
          }
        } catch (error) {
          if (
            isKeywardError(error) &&
            (error.code === "sealed" || error.code === "not_initialized")
          ) {
            continue;
          }
          options.logger?.error(
            { mount: service.mount, job: name, err: error },
            "job failed for mount",
          );
          failed.push(service.mount);
        }
      }
      if (failed.length > 0) throw new Error(`${name} failed for mounts: ${failed.join(", ")}`);
    },
  });
  return [
    sweep("wireguard-key-activation", (service, now) => service.activateStagedKeys(now)),
    sweep("wireguard-rotation-requests", (service, now) => service.requestDueRotations(now)),
  ];
}
