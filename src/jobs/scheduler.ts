/** The subset of pino's logger the scheduler uses. */
export interface JobLogger {
  info(fields: object, message?: string): void;
  error(fields: object, message?: string): void;
  debug?(fields: object, message?: string): void;
}

export interface Job {
  /** A stable name for logs. */
  name: string;
  /** Time from the start of one run to the start of the next, in milliseconds. */
  intervalMs: number;
  run(now: Date): Promise<void>;
}

/** The outcome of a job run: `failure` when `run` threw or rejected. */
export type JobOutcome = "success" | "failure";

/** Called after each run of a job with the job's name, its outcome and its duration in milliseconds. */
export type JobRunHook = (job: string, outcome: JobOutcome, durationMs: number) => void;

export interface SchedulerOptions {
  logger?: JobLogger;
  clock?: () => Date;
  /** Called after every run, for metrics. An error it throws is logged and does not stop the job. */
  onRun?: JobRunHook;
  /**
   * Called before every run; the run is skipped (and the job keeps its
   * schedule) unless it resolves true. A node checks here that it still
   * leads. A rejection counts as false and is logged.
   */
  beforeRun?: () => Promise<boolean>;
}

interface JobState {
  job: Job;
  timer: NodeJS.Timeout | undefined;
  /** The run in progress, if any. */
  running: Promise<void> | undefined;
}

const silentLogger: JobLogger = { info() {}, error() {} };

/**
 * Runs registered jobs on fixed intervals. Each job runs once at `start` and
 * then every `intervalMs`, measured from the start of its previous run. A job
 * never overlaps itself: when a run takes longer than the interval, the next
 * run starts as soon as it finishes. An error thrown by a run is logged and
 * the job keeps its schedule. Timers are unref'd, so they do not keep the
 * process alive.
 */
export class Scheduler {
  readonly #jobs: JobState[] = [];
  readonly #logger: JobLogger;
  readonly #clock: () => Date;
  readonly #onRun: JobRunHook | undefined;
  readonly #beforeRun: (() => Promise<boolean>) | undefined;
  #started = false;

  constructor(options: SchedulerOptions = {}) {
    this.#logger = options.logger ?? silentLogger;
    this.#clock = options.clock ?? (() => new Date());
    this.#onRun = options.onRun;
    this.#beforeRun = options.beforeRun;
  }

  /** Adds a job. Throws when the name is taken, the interval is not a positive integer, or the scheduler has started. */
  register(job: Job): void {
    if (this.#started)
      throw new Error(`cannot register job "${job.name}" after the scheduler started`);
    if (this.#jobs.some((state) => state.job.name === job.name)) {
      throw new Error(`a job named "${job.name}" is already registered`);
    }
    if (!Number.isSafeInteger(job.intervalMs) || job.intervalMs <= 0) {
      throw new Error(
        `job "${job.name}" needs a positive integer intervalMs, got ${job.intervalMs}`,
      );
    }
    this.#jobs.push({ job, timer: undefined, running: undefined });
  }

  /** Runs every job now and schedules its next runs. Calling it twice has no further effect. */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#logger.info({ jobs: this.#jobs.map((state) => state.job.name) }, "job scheduler started");
    for (const state of this.#jobs) this.#runAndReschedule(state);
  }

  /** Stops scheduling and resolves when every run in progress has finished. */
  async stop(): Promise<void> {
    if (!this.#started) return;
    this.#started = false;
    for (const state of this.#jobs) {
      clearTimeout(state.timer);
      state.timer = undefined;
    }
    await Promise.all(this.#jobs.map((state) => state.running));
    this.#logger.info({}, "job scheduler stopped");
  }

  #runAndReschedule(state: JobState): void {
    state.timer = undefined;
    const startedAt = Date.now();
    state.running = this.#runOnce(state.job).finally(() => {
      state.running = undefined;
      if (!this.#started) return;
      const elapsed = Date.now() - startedAt;
      const delay = Math.max(0, state.job.intervalMs - elapsed);
      state.timer = setTimeout(() => this.#runAndReschedule(state), delay);
      state.timer.unref();
    });
  }

  async #runOnce(job: Job): Promise<void> {
    if (!(await this.#mayRun(job))) return;
    const startedAt = Date.now();
    let outcome: JobOutcome = "success";
    try {
      await job.run(this.#clock());
      this.#logger.debug?.(
        { job: job.name, durationMs: Date.now() - startedAt },
        "job run finished",
      );
    } catch (error) {
      outcome = "failure";
      this.#logger.error(
        { job: job.name, durationMs: Date.now() - startedAt, err: error },
        "job run failed",
      );
    }
    this.#reportRun(job.name, outcome, Date.now() - startedAt);
  }

  async #mayRun(job: Job): Promise<boolean> {
    if (this.#beforeRun === undefined) return true;
    try {
      if (await this.#beforeRun()) return true;
      this.#logger.debug?.({ job: job.name }, "job run skipped: this node does not lead");
      return false;
    } catch (error) {
      this.#logger.error(
        { job: job.name, err: error },
        "job run skipped: the check before it failed",
      );
      return false;
    }
  }

  #reportRun(job: string, outcome: JobOutcome, durationMs: number): void {
    if (this.#onRun === undefined) return;
    try {
      this.#onRun(job, outcome, durationMs);
    } catch (error) {
      this.#logger.error({ job, err: error }, "job run hook failed");
    }
  }
}
