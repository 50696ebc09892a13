import { isKeywardError } from "../../errors.ts";
import type { WifiService } from "./service.ts";

/** The logger calls the Wi-Fi job makes. */
interface JobLogger {
  info(fields: object, message?: string): void;
  error(fields: object, message?: string): void;
}

/** A scheduled job, in the shape the job scheduler registers. */
export interface WifiJob {
  name: string;
  intervalMs: number;
  run(now: Date): Promise<void>;
}

/**
 * Creates `wifi-passphrase-rotation`, which on every mount replaces the
 * passphrases older than their network's rotation period and removes
 * previous passphrases whose grace window has ended. A sealed mount is
 * skipped; a failure on one mount is logged and the others still run.
 */
export function createWifiJobs(options: {
  /** The mounted services, read again at every run so new mounts are included. */
  services: () => Pick<WifiService, "mount" | "rotateDue">[];
  intervalMs: number;
  logger?: JobLogger;
}): WifiJob[] {
  const name = "wifi-passphrase-rotation";
  return [
    {
      name,
      intervalMs: options.intervalMs,
      run: async (now) => {
        const failed: string[] = [];
        for (const service of options.services()) {
          try {
            const networks = await service.rotateDue(now);
            if (networks.length > 0) {
              options.logger?.info(
                { mount: service.mount, job: name, networks },
                "job changed networks",
              );
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
    },
  ];
}
