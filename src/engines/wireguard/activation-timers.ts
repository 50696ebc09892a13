import type { StagedActivation } from "./staging.ts";
import type { Logger } from "./types.ts";

/** Maximum delay `setTimeout` accepts, in milliseconds (2^31 - 1). Longer waits are split. */
const MAX_TIMER_DELAY_MS = 2_147_483_647;

interface ArmedTimer {
  activateAt: number;
  timer: NodeJS.Timeout;
}

/**
 * One timer per staged key, firing at its activation time so that the
 * devices of its network learn of the change without waiting for a poll.
 * Timers are unref'd, so they never keep the process alive. Nothing depends
 * on them for correctness: views compute activation from the clock.
 */
export class ActivationTimers {
  readonly #clock: () => Date;
  readonly #onActivate: (network: string) => void;
  readonly #logger: Logger;
  /** Armed timers by network name, then peer name. */
  readonly #timers = new Map<string, Map<string, ArmedTimer>>();
  #closed = false;

  constructor(clock: () => Date, onActivate: (network: string) => void, logger: Logger) {
    this.#clock = clock;
    this.#onActivate = onActivate;
    this.#logger = logger;
  }

  /** Arms a timer for each staged key of `network` still to activate and clears every other. */
  sync(network: string, staged: readonly StagedActivation[]): void {
    if (this.#closed) return;
    const now = this.#clock().getTime();
    const armed = this.#timers.get(network) ?? new Map<string, ArmedTimer>();
    const wanted = new Map<string, number>();
    for (const activation of staged) {
      if (activation.activateAt > now) wanted.set(activation.peer, activation.activateAt);
    }
    for (const [peer, timer] of armed) {
      if (wanted.get(peer) !== timer.activateAt) {
        clearTimeout(timer.timer);
        armed.delete(peer);
      }
    }
    for (const [peer, activateAt] of wanted) {
      if (!armed.has(peer)) this.#arm(armed, network, peer, activateAt);
    }
    if (armed.size > 0) this.#timers.set(network, armed);
    else this.#timers.delete(network);
  }

  /** Clears the timers of a deleted network. */
  clearNetwork(network: string): void {
    for (const timer of this.#timers.get(network)?.values() ?? []) clearTimeout(timer.timer);
    this.#timers.delete(network);
  }

  /** Clears every timer and arms no more. */
  close(): void {
    this.#closed = true;
    for (const network of [...this.#timers.keys()]) this.clearNetwork(network);
  }

  /** Number of armed timers, for tests. */
  get size(): number {
    let count = 0;
    for (const armed of this.#timers.values()) count += armed.size;
    return count;
  }

  #arm(armed: Map<string, ArmedTimer>, network: string, peer: string, activateAt: number): void {
    const delay = Math.min(Math.max(0, activateAt - this.#clock().getTime()), MAX_TIMER_DELAY_MS);
    const timer = setTimeout(() => this.#fire(network, peer, activateAt), delay);
    timer.unref();
    armed.set(peer, { activateAt, timer });
  }

  #fire(network: string, peer: string, activateAt: number): void {
    const armed = this.#timers.get(network);
    if (armed?.get(peer)?.activateAt !== activateAt) return;
    // A wait longer than one timer allows, or a clock behind the timer, needs another round.
    if (this.#clock().getTime() < activateAt) {
      this.#arm(armed, network, peer, activateAt);
      return;
    }
    armed.delete(peer);
    if (armed.size === 0) this.#timers.delete(network);
    this.#logger.info({ network, peer }, "WireGuard staged key activated");
    this.#onActivate(network);
  }
}
