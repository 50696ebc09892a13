import { KeywardError } from "../errors.ts";
import {
  KEY_OPERATIONS,
  KEY_STATES,
  type KeyOperation,
  type KeyState,
  type ManagedKey,
} from "./types.ts";

/**
 * Legal state transitions, after NIST SP 800-57 Part 1 Rev. 5, section 7:
 *
 * | from        | to                                          |
 * | ----------- | ------------------------------------------- |
 * | pre-active  | active, compromised, destroyed              |
 * | active      | suspended, deactivated, compromised         |
 * | suspended   | active, deactivated, compromised, destroyed |
 * | deactivated | compromised, destroyed                      |
 * | compromised | destroyed                                   |
 * | destroyed   | (none)                                      |
 *
 * - A pre-active key that will never be needed may be destroyed at once, and
 *   one whose secrecy is in doubt becomes compromised (section 7.1).
 * - An active key leaves use by suspension (temporary), deactivation (end of
 *   its protection period) or compromise (section 7.2).
 * - A suspended key may be reactivated, deactivated, destroyed or marked
 *   compromised (section 7.3).
 * - A deactivated key still processes old data until it is destroyed, and it
 *   can still turn out to be compromised (section 7.4).
 * - A compromised key is kept only to process old data until destroyed (section 7.5).
 * - Destroyed is final: the material is gone and only metadata stays (section 7.6).
 *
 * Section 7.2 also lets some key types go straight from active to destroyed.
 * Keyward leaves that out: a key that may protect stored data is first
 * deactivated (or suspended), so destroying it always takes two decisions.
 */
const LEGAL_TRANSITIONS: Record<KeyState, readonly KeyState[]> = {
  "pre-active": ["active", "compromised", "destroyed"],
  active: ["suspended", "deactivated", "compromised"],
  suspended: ["active", "deactivated", "compromised", "destroyed"],
  deactivated: ["compromised", "destroyed"],
  compromised: ["destroyed"],
  destroyed: [],
};

/** Operations that only process existing data (decrypt, verify), as SP 800-57 allows after deactivation. */
const PROCESSING_OPERATIONS: readonly KeyOperation[] = ["decrypt", "verify", "hmac-verify"];

/** Operations each state allows. Suspended keys allow none, which section 7.3 permits. */
const ALLOWED_OPERATIONS: Record<KeyState, readonly KeyOperation[]> = {
  "pre-active": [],
  active: KEY_OPERATIONS,
  suspended: [],
  deactivated: PROCESSING_OPERATIONS,
  compromised: PROCESSING_OPERATIONS,
  destroyed: [],
};

/** Returns the state in force at `now`: a pre-active key whose activation date has passed is active. */
export function effectiveState(key: ManagedKey, now: Date): KeyState {
  if (key.state === "pre-active" && key.activationDate !== undefined) {
    if (Date.parse(key.activationDate) <= now.getTime()) return "active";
  }
  return key.state;
}

/** Returns the states a key in `from` may move to. */
export function legalTransitions(from: KeyState): readonly KeyState[] {
  return LEGAL_TRANSITIONS[from];
}

/**
 * Moves a key to state `to` and returns the new key.
 *
 * Throws `invalid_state` for a transition the table above does not list.
 * Moving to `destroyed` erases every version's secret and HMAC key (public
 * keys and metadata stay); moving to `compromised` records `compromisedAt`.
 */
export function transitionState(key: ManagedKey, to: KeyState, now: Date): ManagedKey {
  if (!(KEY_STATES as readonly string[]).includes(to)) {
    throw new KeywardError("invalid_field", `unknown key state "${String(to)}"`, {
      field: "state",
    });
  }
  const from = effectiveState(key, now);
  if (!LEGAL_TRANSITIONS[from].includes(to)) {
    const allowed = LEGAL_TRANSITIONS[from];
    throw new KeywardError(
      "invalid_state",
      `cannot move key "${key.name}" from ${from} to ${to}; ` +
        (allowed.length > 0 ? `allowed: ${allowed.join(", ")}` : `${from} is final`),
    );
  }

  const next = structuredClone(key);
  next.state = to;
  next.updatedAt = now.toISOString();
  if (to === "active" && from === "pre-active") {
    // Activated before its scheduled date: record when it really became active.
    next.activationDate = now.toISOString();
  }
  if (to === "compromised") next.compromisedAt = now.toISOString();
  if (to === "deactivated") next.deactivatedAt = now.toISOString();
  if (to === "destroyed") {
    next.destroyedAt = now.toISOString();
    for (const version of Object.values(next.versions)) {
      delete version.secret;
      delete version.hmacKey;
    }
  }
  return next;
}

/**
 * Throws `invalid_state` unless the key's state allows `operation` at `now`.
 * Returns `flagged: true` for any use of a compromised key, which the caller
 * should record in the audit log.
 */
export function assertAllowed(
  key: ManagedKey,
  operation: KeyOperation,
  now: Date,
): { flagged: boolean } {
  const state = effectiveState(key, now);
  if (!ALLOWED_OPERATIONS[state].includes(operation)) {
    throw new KeywardError(
      "invalid_state",
      `key "${key.name}" is ${state}, which does not allow ${operation}`,
    );
  }
  return { flagged: state === "compromised" };
}
