import { isKeywardError } from "../../errors.ts";
import type { PkiService } from "./service.ts";

/** Minimal logger interface of the PKI jobs. */
interface JobLogger {
  error(fields: object, message?: string): void;
}

export interface PkiJob {
  name: string;
  intervalMs: number;
  run(now: Date): Promise<void>;
}

/**
 * Creates the PKI engine's scheduled jobs: CRL rebuilds (before expiry with
 * `auto_rebuild`, delta CRLs at their interval, and any expired CRL) and
 * auto-tidy, on every PKI mount. A sealed mount is skipped; a failure on
 * one mount is logged and the other mounts still run.
 */
export function createPkiJobs(options: {
  services: () => PkiService[];
  intervalMs: number;
  logger?: JobLogger;
}): PkiJob[] {
  const sweep = (
    name: string,
    work: (service: PkiService, now: Date) => Promise<void>,
  ): PkiJob => ({
    name,
    intervalMs: options.intervalMs,
    run: async (now) => {
      const failed: string[] = [];
      for (const service of options.services()) {
        try {
          await work(service, now);
        } catch (error) {
          if (
            isKeywardError(error) &&
            (error.code === "sealed" || error.code === "not_initialized")
          )
            continue;
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
    sweep("pki-crl-rebuild", (service, now) => service.revocation.crls.rebuildDue(now)),
    sweep("pki-auto-tidy", (service, now) => service.revocation.tidy.tidyIfDue(now)),
  ];
}
