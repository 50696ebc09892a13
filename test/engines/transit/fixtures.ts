import { TransitService } from "../../../src/engines/transit/service.ts";
import type { Logger } from "../../../src/engines/transit/types.ts";
import { MemoryBarrier } from "../../helpers/memory-barrier.ts";

export interface LogEntry {
  level: "info" | "warn" | "error" | "debug";
  fields: Record<string, unknown>;
  message: string | undefined;
}

/** A logger that records every entry, for assertions on what was logged. */
export class RecordingLogger implements Logger {
  readonly entries: LogEntry[] = [];

  info(fields: object, message?: string) {
    this.entries.push({ level: "info", fields: fields as Record<string, unknown>, message });
  }
  warn(fields: object, message?: string) {
    this.entries.push({ level: "warn", fields: fields as Record<string, unknown>, message });
  }
  error(fields: object, message?: string) {
    this.entries.push({ level: "error", fields: fields as Record<string, unknown>, message });
  }
  debug(fields: object, message?: string) {
    this.entries.push({ level: "debug", fields: fields as Record<string, unknown>, message });
  }

  messages(level: LogEntry["level"]): string[] {
    return this.entries
      .filter((entry) => entry.level === level)
      .map((entry) => entry.message ?? "");
  }
}

/** A clock the test moves by hand. */
export class FixedClock {
  #now: Date;

  constructor(start = "2030-01-01T00:00:00.000Z") {
    this.#now = new Date(start);
  }

  now = (): Date => new Date(this.#now);

  advance(milliseconds: number): void {
    this.#now = new Date(this.#now.getTime() + milliseconds);
  }

  set(iso: string): void {
    this.#now = new Date(iso);
  }
}

export const HOUR_MS = 3600 * 1000;
export const DAY_MS = 24 * HOUR_MS;

export function base64(text: string): string {
  return Buffer.from(text, "utf8").toString("base64");
}

export interface ServiceFixture {
  service: TransitService;
  barrier: MemoryBarrier;
  clock: FixedClock;
  logger: RecordingLogger;
}

export function createFixture(options: { deletionWindowDays?: number } = {}): ServiceFixture {
  const barrier = new MemoryBarrier();
  const clock = new FixedClock();
  const logger = new RecordingLogger();
  const service = new TransitService({
    barrier,
    mount: "transit",
    clock: clock.now,
    logger,
    deletionWindowDays: options.deletionWindowDays,
  });
  return { service, barrier, clock, logger };
}

/** Returns every log entry as one string, for checks that no secret was logged. */
export function logText(logger: RecordingLogger): string {
  return JSON.stringify(
    logger.entries.map((entry) => ({
      ...entry,
      fields: { ...entry.fields, err: String(entry.fields.err) },
    })),
  );
}
