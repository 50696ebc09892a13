import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  assertAllowed,
  createKey,
  effectiveState,
  KEY_OPERATIONS,
  KEY_STATES,
  type KeyOperation,
  type KeyState,
  type KeyType,
  legalTransitions,
  type ManagedKey,
  transitionState,
} from "../../src/keys/index.ts";
import { after, expectError, makeKey, NOW } from "./fixtures.ts";

/** The legal transitions, written out independently of the implementation. */
const LEGAL: Record<KeyState, KeyState[]> = {
  "pre-active": ["active", "compromised", "destroyed"],
  active: ["suspended", "deactivated", "compromised"],
  suspended: ["active", "deactivated", "compromised", "destroyed"],
  deactivated: ["compromised", "destroyed"],
  compromised: ["destroyed"],
  destroyed: [],
};

const PROCESSING: KeyOperation[] = ["decrypt", "verify", "hmac-verify"];

/** Returns a key of `type` brought into `state` through legal transitions. */
function keyIn(state: KeyState, type: KeyType = "aes256-gcm96"): ManagedKey {
  if (state === "pre-active") {
    return createKey("staged", type, { activationDate: after(3600) }, NOW);
  }
  const key = makeKey(type);
  switch (state) {
    case "active":
      return key;
    case "destroyed":
      return transitionState(transitionState(key, "deactivated", NOW), "destroyed", NOW);
    default:
      return transitionState(key, state, NOW);
  }
}

describe("key lifecycle", () => {
  it("lists the documented transitions", () => {
    for (const state of KEY_STATES)
      assert.deepEqual([...legalTransitions(state)].sort(), [...LEGAL[state]].sort());
  });

  for (const from of KEY_STATES) {
    for (const to of KEY_STATES) {
      const legal = LEGAL[from].includes(to);
      it(`${legal ? "ok" : "fail"} ${from} to ${to}`, () => {
        const key = keyIn(from);
        const before = structuredClone(key);
        if (legal) {
          const next = transitionState(key, to, after(60));
          assert.equal(next.state, to);
          assert.equal(next.updatedAt, after(60).toISOString());
        } else {
          const error = expectError(() => transitionState(key, to, after(60)), "invalid_state");
          assert.match(error.message, new RegExp(`from ${from} to ${to}`));
        }
        assert.deepEqual(key, before, "the input key must not change");
      });
    }
  }

  it("fail unknown target state", () => {
    expectError(
      () => transitionState(keyIn("active"), "retired" as KeyState, NOW),
      "invalid_field",
      "state",
    );
  });

  it("destroy erases secret material", () => {
    for (const type of ["aes256-gcm96", "ed25519", "hmac"] as const) {
      const active = keyIn("active", type);
      const destroyed = transitionState(
        transitionState(active, "deactivated", NOW),
        "destroyed",
        NOW,
      );
      for (const version of Object.values(destroyed.versions)) {
        assert.equal(version.secret, undefined, `${type} secret`);
        assert.equal(version.hmacKey, undefined, `${type} hmacKey`);
        assert.equal(version.publicKeyPem, active.versions[String(version.version)]?.publicKeyPem);
        assert.equal(version.createdAt, active.versions[String(version.version)]?.createdAt);
      }
      assert.ok(!JSON.stringify(destroyed).includes(active.versions["1"]?.hmacKey ?? "-"));
      assert.ok(active.versions["1"]?.hmacKey !== undefined, "the input keeps its material");
    }
  });

  it("compromise records the time", () => {
    const compromised = transitionState(keyIn("active"), "compromised", after(5));
    assert.equal(compromised.compromisedAt, after(5).toISOString());
  });

  it("deactivation and destruction record times", () => {
    const deactivated = transitionState(keyIn("active"), "deactivated", after(5));
    assert.equal(deactivated.deactivatedAt, after(5).toISOString());
    const destroyed = transitionState(deactivated, "destroyed", after(9));
    assert.equal(destroyed.destroyedAt, after(9).toISOString());
    assert.equal(destroyed.deactivatedAt, after(5).toISOString());
  });

  it("pre-active becomes active on date", () => {
    const key = keyIn("pre-active");
    assert.equal(key.state, "pre-active");
    assert.equal(effectiveState(key, after(3599)), "pre-active");
    assert.equal(effectiveState(key, after(3600)), "active");
    expectError(() => assertAllowed(key, "encrypt", after(10)), "invalid_state");
    assert.deepEqual(assertAllowed(key, "encrypt", after(3600)), { flagged: false });
    // Past the date the active transitions apply.
    assert.equal(transitionState(key, "suspended", after(4000)).state, "suspended");
    expectError(() => transitionState(key, "destroyed", after(4000)), "invalid_state");
  });

  it("early activation records the time", () => {
    const activated = transitionState(keyIn("pre-active"), "active", after(10));
    assert.equal(activated.state, "active");
    assert.equal(activated.activationDate, after(10).toISOString());
  });

  for (const state of KEY_STATES) {
    it(`operations allowed when ${state}`, () => {
      const key = keyIn(state);
      for (const operation of KEY_OPERATIONS) {
        const allowed =
          state === "active" ||
          ((state === "deactivated" || state === "compromised") && PROCESSING.includes(operation));
        if (allowed) {
          assert.deepEqual(
            assertAllowed(key, operation, after(1)),
            { flagged: state === "compromised" },
            operation,
          );
        } else {
          const error = expectError(() => assertAllowed(key, operation, after(1)), "invalid_state");
          assert.match(error.message, new RegExp(`${state}, which does not allow ${operation}`));
        }
      }
    });
  }
});
