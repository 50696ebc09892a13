import type { DeviceChangeNotifier } from "./artifacts.ts";

/** The reason a wait ended. */
export type WaitOutcome = "changed" | "timeout" | "aborted";

/**
 * One registration for the next change of one device. Register before
 * reading the device's state, so that a change made between the read and
 * the wait still ends the wait at once.
 */
export interface ChangeSubscription {
  /**
   * Waits until the device changes (or changed since registration), `timeoutMs`
   * passes or `signal` aborts. The registration is removed whatever ends it.
   */
  wait(timeoutMs: number, signal?: AbortSignal): Promise<WaitOutcome>;
  /** Removes the registration without waiting. */
  cancel(): void;
}

/**
 * Agents waiting for changes to their devices, woken by `changed`. Each
 * registration is removed when its wait ends, by a change, its timeout or
 * its abort signal, so waiters of clients that disconnect do not pile up.
 */
export class DeviceChangeWaiters implements DeviceChangeNotifier {
  readonly #waiters = new Map<string, Set<() => void>>();

  /** Registers interest in the next change of `device`. */
  subscribe(device: string): ChangeSubscription {
    let fired = false;
    let settle: ((outcome: WaitOutcome) => void) | undefined;
    const wake = () => {
      fired = true;
      settle?.("changed");
    };
    let set = this.#waiters.get(device);
    if (!set) {
      set = new Set();
      this.#waiters.set(device, set);
    }
    set.add(wake);

    const remove = () => {
      const current = this.#waiters.get(device);
      if (!current) return;
      current.delete(wake);
      if (current.size === 0) this.#waiters.delete(device);
    };

    return {
      cancel: remove,
      wait: (timeoutMs, signal) =>
        new Promise<WaitOutcome>((resolve) => {
          if (fired) {
            remove();
            resolve("changed");
            return;
          }
          if (signal?.aborted) {
            remove();
            resolve("aborted");
            return;
          }
          const onAbort = () => settle?.("aborted");
          const timer = setTimeout(() => settle?.("timeout"), Math.max(0, timeoutMs));
          settle = (outcome) => {
            settle = undefined;
            clearTimeout(timer);
            signal?.removeEventListener("abort", onAbort);
            remove();
            resolve(outcome);
          };
          signal?.addEventListener("abort", onAbort, { once: true });
        }),
    };
  }

  /** Wakes every agent waiting on one of `deviceNames`. */
  changed(deviceNames: readonly string[]): void {
    for (const name of deviceNames) {
      const set = this.#waiters.get(name);
      if (!set) continue;
      this.#waiters.delete(name);
      for (const wake of set) wake();
    }
  }

  /** Wakes every waiting agent, as when the registry is dropped at seal. */
  wakeAll(): void {
    this.changed([...this.#waiters.keys()]);
  }

  /** The number of registrations, for tests and metrics. */
  get size(): number {
    let count = 0;
    for (const set of this.#waiters.values()) count += set.size;
    return count;
  }
}
