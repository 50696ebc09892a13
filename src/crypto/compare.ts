import { timingSafeEqual } from "node:crypto";

/**
 * Compares two byte strings in time that depends only on their lengths.
 *
 * Use it for every comparison of secret-derived values (MACs, tags, derived
 * keys). Inputs of different lengths return false; the length itself is not
 * treated as secret, which holds for MACs and tags of a fixed size.
 */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) {
    // Compare `a` with itself so both branches do similar work.
    timingSafeEqual(a, a);
    return false;
  }
  return timingSafeEqual(a, b);
}
