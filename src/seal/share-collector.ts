import { randomUUID, timingSafeEqual } from "node:crypto";
import { invalidField } from "../errors.ts";

/**
 * The shares submitted so far in one unseal or rekey attempt, with the
 * attempt's nonce. Shares are zeroed when taken or cleared.
 */
export class ShareCollector {
  readonly nonce: string;
  #shares: Buffer[] = [];

  constructor(nonce: string = randomUUID()) {
    this.nonce = nonce;
  }

  get progress(): number {
    return this.#shares.length;
  }

  /** Adds a decoded share. Throws `invalid_field` on `key` when the same share was already added. */
  add(share: Buffer): void {
    for (const existing of this.#shares) {
      if (existing.length === share.length && timingSafeEqual(existing, share)) {
        share.fill(0);
        throw invalidField("key", "this unseal key was already submitted in the current attempt");
      }
    }
    this.#shares.push(share);
  }

  /** Removes and returns the shares; the caller zeroes them after use. */
  take(): Buffer[] {
    const shares = this.#shares;
    this.#shares = [];
    return shares;
  }

  /** Zeroes and drops the shares. */
  clear(): void {
    for (const share of this.take()) share.fill(0);
  }
}
