import type { Barrier } from "../../seal/types.ts";
import { JsonRecordStore } from "../../util/json-record-store.ts";

export type { RecordWriter } from "../../util/json-record-store.ts";

/**
 * The WireGuard engine's records as JSON values behind the barrier, under
 * `<mount>/`: `networks/<network>` and `peers/<network>/<peer>`. Changes
 * that touch several records run in one barrier transaction, so a failed
 * write leaves none of them changed.
 */
export class WireguardStore extends JsonRecordStore {
  /** The stored bytes and the frozen decoded value of each path read by `getShared`. */
  readonly #shared = new Map<string, { stored: Buffer; value: unknown }>();

  constructor(barrier: Barrier, mount: string) {
    super(barrier, {
      prefix: `${mount}/`,
      storageFailureMessage: "failed to store a WireGuard engine record",
      invalidJsonReason: "stored WireGuard record is not valid JSON",
    });
  }

  /**
   * Reads a record for callers that only read it: the value is deeply
   * frozen and shared between callers, and it is decoded again only when
   * the stored bytes changed since the last call for `path`. Use it for
   * records read on every request whose decoding is costly.
   */
  async getShared<T>(path: string): Promise<T | undefined> {
    const stored = await this.getStored(path);
    if (stored === undefined) {
      this.#shared.delete(path);
      return undefined;
    }
    const cached = this.#shared.get(path);
    if (cached?.stored.equals(stored)) return cached.value as T;
    const value = deepFreeze(this.decode<T>(path, stored));
    this.#shared.set(path, { stored: Buffer.from(stored), value });
    return value;
  }

  /** Drops the shared copy of a record written through a transaction, so the next read decodes it again. */
  protected override beforeWrite(path: string): void {
    this.#shared.delete(path);
  }
}

function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const member of Object.values(value)) deepFreeze(member);
  }
  return value;
}
