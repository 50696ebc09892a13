import type { Logger } from "pino";
import { DeviceApiError, type DeviceClient } from "./client.ts";
import type { ArtifactConfig } from "./config.ts";
import type { AgentState } from "./state.ts";

/** One entry of `POST /v1/devices/self/applied`. */
export interface AppliedReport {
  id: string;
  version: number;
}

/**
 * Lists the artifacts whose applied version has not been reported yet. An
 * artifact counts as applied at a version when every file configured for it
 * contains that version and its reload succeeded, and the version is one the
 * last state offers (current or next).
 */
export function pendingReports(
  artifacts: readonly ArtifactConfig[],
  state: AgentState,
): AppliedReport[] {
  const reports: AppliedReport[] = [];
  const ids = [...new Set(artifacts.map((entry) => entry.id))];
  for (const id of ids) {
    const offered = state.last_state?.artifacts.find((artifact) => artifact.id === id);
    if (offered === undefined) continue;
    const records = artifacts
      .filter((entry) => entry.id === id)
      .map((entry) => state.installed[entry.path]);
    const first = records[0];
    if (first === undefined) continue;
    const complete = records.every(
      (record) =>
        record !== undefined &&
        record.id === id &&
        record.version === first.version &&
        !record.reload_pending,
    );
    const isOffered = first.version === offered.version || first.version === offered.next?.version;
    if (complete && isOffered && state.reported[id] !== first.version) {
      reports.push({ id, version: first.version });
    }
  }
  return reports;
}

/**
 * Sends applied versions to `POST /v1/devices/self/applied` and records
 * what the server accepted. When the server rejects a batch of several with
 * a 4xx, each is sent alone, so one rejected version does not hold back the
 * others. Network errors and 5xx are thrown for the caller's backoff.
 * Returns true when every report was accepted.
 */
export async function sendReports(
  client: DeviceClient,
  reports: readonly AppliedReport[],
  state: AgentState,
  log: Logger,
  signal?: AbortSignal,
): Promise<boolean> {
  if (reports.length === 0) return true;
  const send = async (batch: readonly AppliedReport[]) => {
    await client.request("POST", "/v1/devices/self/applied", {
      body: { artifacts: batch },
      signal,
    });
    for (const report of batch) {
      state.reported[report.id] = report.version;
      log.info({ artifact: report.id, version: report.version }, "reported applied version");
    }
  };
  const rejected = (error: unknown) => error instanceof DeviceApiError && !error.transient;

  try {
    await send(reports);
    return true;
  } catch (error) {
    if (!rejected(error)) throw error;
    if (reports.length === 1) {
      log.error(
        { artifact: reports[0]?.id, version: reports[0]?.version, err: (error as Error).message },
        "the server rejected the applied report",
      );
      return false;
    }
  }
  let allAccepted = true;
  for (const report of reports) {
    try {
      await send([report]);
    } catch (error) {
      if (!rejected(error)) throw error;
      allAccepted = false;
      log.error(
        { artifact: report.id, version: report.version, err: (error as Error).message },
        "the server rejected the applied report",
      );
    }
  }
  return allAccepted;
}
