import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { afterEach, beforeEach, describe, it } from "node:test";
import { KEYRING_KEY } from "../../src/seal/keyring.ts";
import { SEAL_CONFIG_KEY } from "../../src/seal/seal-config.ts";
import { createSealManager } from "../../src/seal/seal-manager.ts";
import type { InitResult, SealManager } from "../../src/seal/types.ts";
import { FailingStorage } from "../helpers/failing-storage.ts";
import { decode, initAndUnseal, keywardError, SealFixture, text, unsealWith } from "./fixtures.ts";

let fixture: SealFixture;
beforeEach(async () => {
  fixture = await SealFixture.create();
});
afterEach(async () => {
  await fixture.remove();
});

describe("seal manager init", () => {
  it("status before init is uninitialised", async () => {
    const { seal } = await fixture.openManager();
    assert.deepEqual(await seal.status(), {
      initialized: false,
      sealed: true,
      threshold: 0,
      shares: 0,
      progress: 0,
      nonce: "",
      storageType: "sqlite",
    });
  });

  it("init returns shares and stays sealed", async () => {
    const { seal } = await fixture.openManager();
    const result = await seal.init({ shares: 5, threshold: 3 });
    assert.equal(result.keysHex.length, 5);
    assert.equal(result.keysBase64.length, 5);
    for (const [i, hex] of result.keysHex.entries()) {
      assert.equal(Buffer.from(hex, "hex").length, 33);
      assert.equal(Buffer.from(hex, "hex").toString("base64"), result.keysBase64[i]);
    }
    assert.equal(new Set(result.keysHex).size, 5);
    const status = await seal.status();
    assert.equal(status.initialized, true);
    assert.equal(status.sealed, true);
    assert.equal(status.shares, 5);
    assert.equal(status.threshold, 3);
  });

  it("init twice fails", async () => {
    const { seal } = await fixture.openManager();
    await seal.init({ shares: 1, threshold: 1 });
    await assert.rejects(
      seal.init({ shares: 1, threshold: 1 }),
      keywardError("already_initialized"),
    );
  });

  it("concurrent init succeeds once", async () => {
    const { seal } = await fixture.openManager();
    const outcomes = await Promise.allSettled([
      seal.init({ shares: 1, threshold: 1 }),
      seal.init({ shares: 1, threshold: 1 }),
    ]);
    assert.equal(outcomes.filter((outcome) => outcome.status === "fulfilled").length, 1);
  });

  it("init rejects invalid share counts", async () => {
    const { seal } = await fixture.openManager();
    await assert.rejects(
      seal.init({ shares: 3, threshold: 1 }),
      keywardError("invalid_field", "secret_threshold"),
    );
    await assert.rejects(
      seal.init({ shares: 0, threshold: 0 }),
      keywardError("invalid_field", "secret_shares"),
    );
    assert.equal((await seal.status()).initialized, false);
  });

  it("init stores no root key", async () => {
    const { storage, seal } = await fixture.openManager();
    await seal.init({ shares: 1, threshold: 1 });
    assert.deepEqual(await storage.list("core/"), ["keyring", "seal-config"]);
    const config = JSON.parse(decode(await storage.get(SEAL_CONFIG_KEY))!);
    assert.deepEqual(config, { version: 1, shares: 1, threshold: 1 });
  });

  it("single share is the root key", async () => {
    const { storage, seal } = await fixture.openManager();
    const result = await seal.init({ shares: 1, threshold: 1 });
    const rootKey = Buffer.from(result.keysHex[0]!, "hex");
    assert.equal(rootKey.length, 32);
    const raw = await fixture.rawBytes();
    assert.equal(raw.includes(rootKey), false);
    assert.ok((await storage.get(KEYRING_KEY))!.length > 32);
  });

  it("failed init write leaves it uninitialised", async () => {
    const storage = new FailingStorage(await fixture.openStorage());
    const seal = createSealManager(storage);
    storage.failWrites = true;
    await assert.rejects(seal.init({ shares: 3, threshold: 2 }), keywardError("storage_failure"));
    storage.failWrites = false;
    assert.equal((await seal.status()).initialized, false);
    assert.equal((await seal.init({ shares: 3, threshold: 2 })).keysHex.length, 3);
  });
});

describe("seal manager unseal", () => {
  it("threshold shares unseal", async () => {
    const { seal } = await fixture.openManager();
    const result = await seal.init({ shares: 5, threshold: 3 });

    const first = await seal.submitUnsealShare(result.keysHex[4]!);
    assert.equal(first.sealed, true);
    assert.equal(first.progress, 1);
    assert.match(first.nonce, /^[0-9a-f-]{36}$/);

    const second = await seal.submitUnsealShare(result.keysBase64[1]!);
    assert.equal(second.progress, 2);
    assert.equal(second.nonce, first.nonce);

    const third = await seal.submitUnsealShare(result.keysHex[2]!);
    assert.equal(third.sealed, false);
    assert.equal(third.progress, 0);
    assert.equal(third.nonce, "");
  });

  it("one of one unseals", async () => {
    const { seal } = await fixture.openManager();
    const result = await seal.init({ shares: 1, threshold: 1 });
    assert.equal((await seal.submitUnsealShare(result.keysBase64[0]!)).sealed, false);
  });

  it("unseal before init fails", async () => {
    const { seal } = await fixture.openManager();
    await assert.rejects(seal.submitUnsealShare("00".repeat(33)), keywardError("not_initialized"));
  });

  it("share when unsealed is ignored", async () => {
    const { seal } = await fixture.openManager();
    const result = await initAndUnseal(seal);
    const status = await seal.submitUnsealShare("not even a share");
    assert.equal(status.sealed, false);
    assert.equal(result.keysHex.length, 3);
  });

  it("wrong share fails and resets", async () => {
    const { seal } = await fixture.openManager();
    const result = await seal.init({ shares: 3, threshold: 2 });
    await seal.submitUnsealShare(result.keysHex[0]!);
    const wrong = randomBytes(33).toString("hex");
    await assert.rejects(seal.submitUnsealShare(wrong), keywardError("invalid_shares"));
    const status = await seal.status();
    assert.equal(status.sealed, true);
    assert.equal(status.progress, 0);
    assert.equal(status.nonce, "");

    await unsealWith(seal, result.keysHex.slice(1));
    assert.equal((await seal.status()).sealed, false);
  });

  it("shares of another init fail", async () => {
    const other = await SealFixture.create();
    try {
      const { seal: otherSeal } = await other.openManager();
      const otherShares = await otherSeal.init({ shares: 3, threshold: 2 });
      const { seal } = await fixture.openManager();
      await seal.init({ shares: 3, threshold: 2 });
      await seal.submitUnsealShare(otherShares.keysHex[0]!);
      await assert.rejects(
        seal.submitUnsealShare(otherShares.keysHex[1]!),
        keywardError("invalid_shares"),
      );
    } finally {
      await other.remove();
    }
  });

  it("wrong single share fails", async () => {
    const { seal } = await fixture.openManager();
    await seal.init({ shares: 1, threshold: 1 });
    await assert.rejects(
      seal.submitUnsealShare(randomBytes(32).toString("hex")),
      keywardError("invalid_shares"),
    );
    assert.equal((await seal.status()).sealed, true);
  });

  it("duplicate share is rejected", async () => {
    const { seal } = await fixture.openManager();
    const result = await seal.init({ shares: 3, threshold: 3 });
    await seal.submitUnsealShare(result.keysHex[0]!);
    await assert.rejects(
      seal.submitUnsealShare(result.keysBase64[0]!),
      keywardError("invalid_field", "key"),
    );
    const status = await seal.status();
    assert.equal(status.progress, 1);
    await unsealWith(seal, result.keysHex.slice(1));
    assert.equal((await seal.status()).sealed, false);
  });

  it("malformed share is rejected", async () => {
    const { seal } = await fixture.openManager();
    const result = await seal.init({ shares: 3, threshold: 2 });
    await seal.submitUnsealShare(result.keysHex[0]!);
    for (const malformed of ["", "zz", "00".repeat(32), result.keysHex[1]!.slice(1)]) {
      await assert.rejects(seal.submitUnsealShare(malformed), keywardError("invalid_field", "key"));
    }
    assert.equal((await seal.status()).progress, 1);
  });

  it("reset discards progress", async () => {
    const { seal } = await fixture.openManager();
    const result = await seal.init({ shares: 3, threshold: 2 });
    const first = await seal.submitUnsealShare(result.keysHex[0]!);
    const reset = await seal.resetUnseal();
    assert.equal(reset.progress, 0);
    assert.equal(reset.nonce, "");
    const again = await seal.submitUnsealShare(result.keysHex[0]!);
    assert.equal(again.progress, 1);
    assert.notEqual(again.nonce, first.nonce);
  });

  it("missing keyring fails unseal", async () => {
    const { storage, seal } = await fixture.openManager();
    const result = await seal.init({ shares: 1, threshold: 1 });
    await storage.delete(KEYRING_KEY);
    await assert.rejects(
      seal.submitUnsealShare(result.keysHex[0]!),
      keywardError("storage_failure"),
    );
  });
});

describe("seal manager seal", () => {
  it("seal closes the barrier", async () => {
    const { seal } = await fixture.openManager();
    const result = await initAndUnseal(seal);
    await seal.barrier.put("app/secret", text("value"));
    await seal.seal();
    assert.equal((await seal.status()).sealed, true);
    await assert.rejects(seal.barrier.get("app/secret"), keywardError("sealed"));

    await unsealWith(seal, result.keysHex, 2);
    assert.equal(decode(await seal.barrier.get("app/secret")), "value");
  });

  it("seal twice succeeds", async () => {
    const { seal } = await fixture.openManager();
    await initAndUnseal(seal);
    await seal.seal();
    await seal.seal();
  });

  it("seal discards unseal progress", async () => {
    const { seal } = await fixture.openManager();
    const result = await seal.init({ shares: 3, threshold: 2 });
    await seal.submitUnsealShare(result.keysHex[0]!);
    await seal.seal();
    assert.equal((await seal.status()).progress, 0);
  });

  it("seal succeeds with failing storage", async () => {
    const storage = new FailingStorage(await fixture.openStorage());
    const seal = createSealManager(storage);
    await initAndUnseal(seal);
    storage.failWrites = true;
    await seal.seal();
    assert.equal((await seal.status()).sealed, true);
  });

  it("restart unseals with same shares", async () => {
    const first = await fixture.openManager();
    const result = await initAndUnseal(first.seal, 5, 3);
    await first.seal.barrier.put("app/secret", text("survives"));
    await first.seal.seal();
    await first.storage.close();

    const second = await fixture.openManager();
    const status = await second.seal.status();
    assert.equal(status.initialized, true);
    assert.equal(status.sealed, true);
    assert.equal(status.threshold, 3);
    await unsealWith(second.seal, [result.keysHex[4]!, result.keysBase64[0]!, result.keysHex[2]!]);
    assert.equal(decode(await second.seal.barrier.get("app/secret")), "survives");
  });
});

describe("seal manager listeners", () => {
  it("listeners see unseal and seal", async () => {
    const { seal } = await fixture.openManager();
    const events: string[] = [];
    seal.onChange(async (sealed) => {
      events.push(sealed ? "seal" : "unseal");
      // The barrier is open in both calls: after unseal and before seal.
      await seal.barrier.put("listener/probe", text(String(sealed)));
    });
    await initAndUnseal(seal);
    await seal.seal();
    assert.deepEqual(events, ["unseal", "seal"]);
  });

  it("failing listener still seals", async () => {
    const { seal } = await fixture.openManager();
    const calls: boolean[] = [];
    seal.onChange(() => {
      throw new Error("listener failed");
    });
    seal.onChange((sealed) => {
      calls.push(sealed);
    });
    const result = await seal.init({ shares: 1, threshold: 1 });
    await assert.rejects(seal.submitUnsealShare(result.keysHex[0]!), /listener failed/);
    assert.equal((await seal.status()).sealed, false);
    await assert.rejects(seal.seal(), /listener failed/);
    assert.equal((await seal.status()).sealed, true);
    assert.deepEqual(calls, [false, true]);
  });
});

describe("seal manager rotate", () => {
  it("rotate adds a term", async () => {
    let now = new Date("2030-01-01T00:00:00.000Z");
    const { seal } = await fixture.openManager({ clock: () => now });
    await initAndUnseal(seal);
    const before = await seal.keyStatus();
    assert.deepEqual(before, { term: 1, installTime: "2030-01-01T00:00:00.000Z", encryptions: 0 });

    now = new Date("2030-02-01T00:00:00.000Z");
    const after = await seal.rotate();
    assert.deepEqual(after, { term: 2, installTime: "2030-02-01T00:00:00.000Z", encryptions: 0 });
    assert.deepEqual(await seal.keyStatus(), after);
  });

  it("rotation persists across restart", async () => {
    const first = await fixture.openManager();
    const result = await initAndUnseal(first.seal);
    await first.seal.barrier.put("app/term1", text("one"));
    await first.seal.rotate();
    await first.seal.rotate();
    await first.seal.barrier.put("app/term3", text("three"));
    await first.storage.close();

    const second = await fixture.openManager();
    await unsealWith(second.seal, result.keysHex, 2);
    assert.equal((await second.seal.keyStatus()).term, 3);
    assert.equal(decode(await second.seal.barrier.get("app/term1")), "one");
    assert.equal(decode(await second.seal.barrier.get("app/term3")), "three");
  });

  it("failed rotate keeps the term", async () => {
    const storage = new FailingStorage(await fixture.openStorage());
    const seal = createSealManager(storage);
    await initAndUnseal(seal);
    await seal.barrier.put("app/a", text("a"));
    storage.failWrites = true;
    await assert.rejects(seal.rotate(), keywardError("storage_failure"));
    storage.failWrites = false;
    assert.equal((await seal.keyStatus()).term, 1);
    await seal.barrier.put("app/b", text("b"));
    assert.equal(decode(await seal.barrier.get("app/b")), "b");
    assert.equal((await seal.rotate()).term, 2);
  });

  it("rotate while sealed fails", async () => {
    const { seal } = await fixture.openManager();
    await seal.init({ shares: 1, threshold: 1 });
    await assert.rejects(seal.rotate(), keywardError("sealed"));
    await assert.rejects(seal.keyStatus(), keywardError("sealed"));
  });

  it("counts encryptions of the active term", async () => {
    const first = await fixture.openManager();
    const result = await initAndUnseal(first.seal);
    for (let i = 0; i < 5; i++) await first.seal.barrier.put(`app/${i}`, text("v"));
    await first.seal.barrier.transaction(async (tx) => {
      await tx.put("app/tx", text("v"));
      await tx.delete("app/0");
    });
    assert.equal((await first.seal.keyStatus()).encryptions, 6);
    await first.seal.seal();
    await first.storage.close();

    const second = await fixture.openManager();
    await unsealWith(second.seal, result.keysHex, 2);
    assert.equal((await second.seal.keyStatus()).encryptions, 6);
  });

  it("crash leaves count at least real", async () => {
    const first = await fixture.openManager();
    const result = await initAndUnseal(first.seal);
    for (let i = 0; i < 3; i++) await first.seal.barrier.put(`app/${i}`, text("v"));
    // Closing storage without sealing is what a crash leaves behind.
    await first.storage.close();

    const second = await fixture.openManager();
    await unsealWith(second.seal, result.keysHex, 2);
    assert.ok((await second.seal.keyStatus()).encryptions >= 3);
  });
});

describe("seal manager rekey", () => {
  it("rekey issues new shares", async () => {
    const first = await fixture.openManager();
    const old = await initAndUnseal(first.seal, 3, 2);
    await first.seal.barrier.put("app/secret", text("kept"));

    const started = await first.seal.rekeyInit({ shares: 5, threshold: 3 });
    assert.equal(started.started, true);
    assert.equal(started.required, 2);
    assert.equal(started.shares, 5);
    assert.equal(started.threshold, 3);
    assert.equal(started.progress, 0);
    assert.equal(started.complete, undefined);

    const progress = await first.seal.rekeyUpdate(old.keysHex[1]!, started.nonce);
    assert.equal(progress.progress, 1);
    assert.equal(progress.complete, undefined);
    const done = await first.seal.rekeyUpdate(old.keysBase64[2]!, started.nonce);
    assert.equal(done.complete?.keysHex.length, 5);
    assert.equal(done.complete?.keysBase64.length, 5);

    const after = await first.seal.rekeyStatus();
    assert.equal(after.started, false);
    assert.equal(after.complete, undefined);
    const status = await first.seal.status();
    assert.equal(status.shares, 5);
    assert.equal(status.threshold, 3);
    assert.equal(decode(await first.seal.barrier.get("app/secret")), "kept");
    await first.seal.seal();

    // Three old shares meet the new threshold but rebuild the old root key.
    await assert.rejects(unsealWith(first.seal, old.keysHex, 3), keywardError("invalid_shares"));
    await first.storage.close();

    const second = await fixture.openManager();
    await assert.rejects(unsealWith(second.seal, old.keysHex, 3), keywardError("invalid_shares"));
    await unsealWith(second.seal, done.complete!.keysHex.slice(2));
    assert.equal((await second.seal.status()).sealed, false);
    assert.equal(decode(await second.seal.barrier.get("app/secret")), "kept");
  });

  it("rekey with wrong shares fails", async () => {
    const { seal } = await fixture.openManager();
    await initAndUnseal(seal, 3, 2);
    const other = await SealFixture.create();
    try {
      const { seal: otherSeal } = await other.openManager();
      const otherShares = await otherSeal.init({ shares: 3, threshold: 2 });
      const { nonce } = await seal.rekeyInit({ shares: 1, threshold: 1 });
      await seal.rekeyUpdate(otherShares.keysHex[0]!, nonce);
      await assert.rejects(
        seal.rekeyUpdate(otherShares.keysHex[1]!, nonce),
        keywardError("invalid_shares"),
      );
      const status = await seal.rekeyStatus();
      assert.equal(status.started, true);
      assert.equal(status.progress, 0);
      assert.equal(status.nonce, nonce);
    } finally {
      await other.remove();
    }
  });

  it("rekey checks nonce and state", async () => {
    const { seal } = await fixture.openManager();
    const old = await initAndUnseal(seal, 3, 2);
    await assert.rejects(seal.rekeyUpdate(old.keysHex[0]!, "nonce"), keywardError("invalid_state"));
    const { nonce } = await seal.rekeyInit({ shares: 3, threshold: 2 });
    await assert.rejects(
      seal.rekeyInit({ shares: 3, threshold: 2 }),
      keywardError("invalid_state"),
    );
    await assert.rejects(
      seal.rekeyUpdate(old.keysHex[0]!, "another nonce"),
      keywardError("invalid_field", "nonce"),
    );
    await seal.rekeyUpdate(old.keysHex[0]!, nonce);
    await assert.rejects(
      seal.rekeyUpdate(old.keysHex[0]!, nonce),
      keywardError("invalid_field", "key"),
    );
    await assert.rejects(
      seal.rekeyInit({ shares: 2, threshold: 1 }),
      keywardError("invalid_field", "secret_threshold"),
    );
  });

  it("rekey cancel discards progress", async () => {
    const { seal } = await fixture.openManager();
    const old = await initAndUnseal(seal, 3, 2);
    const { nonce } = await seal.rekeyInit({ shares: 3, threshold: 2 });
    await seal.rekeyUpdate(old.keysHex[0]!, nonce);
    await seal.rekeyCancel();
    const status = await seal.rekeyStatus();
    assert.equal(status.started, false);
    assert.equal(status.progress, 0);
    assert.equal(status.nonce, "");
    await assert.rejects(seal.rekeyUpdate(old.keysHex[1]!, nonce), keywardError("invalid_state"));
  });

  it("rekey while sealed fails", async () => {
    const { seal } = await fixture.openManager();
    await seal.init({ shares: 1, threshold: 1 });
    await assert.rejects(seal.rekeyInit({ shares: 1, threshold: 1 }), keywardError("sealed"));
    await assert.rejects(seal.rekeyStatus(), keywardError("sealed"));
  });

  it("failed rekey write keeps old shares", async () => {
    const storage = new FailingStorage(await fixture.openStorage());
    const seal = createSealManager(storage);
    const old = await initAndUnseal(seal, 1, 1);
    const { nonce } = await seal.rekeyInit({ shares: 3, threshold: 2 });
    storage.failWrites = true;
    await assert.rejects(seal.rekeyUpdate(old.keysHex[0]!, nonce), keywardError("storage_failure"));
    storage.failWrites = false;
    assert.equal((await seal.status()).shares, 1);
    await seal.seal();
    assert.equal((await seal.submitUnsealShare(old.keysHex[0]!)).sealed, false);
  });

  it("seal cancels a rekey", async () => {
    const { seal } = await fixture.openManager();
    const old = await initAndUnseal(seal, 1, 1);
    await seal.rekeyInit({ shares: 3, threshold: 2 });
    await seal.seal();
    await seal.submitUnsealShare(old.keysHex[0]!);
    assert.equal((await seal.rekeyStatus()).started, false);
  });
});

describe("seal manager rekey verification", () => {
  /** Starts a rekey to 5 shares with threshold 3 that requires verification, and completes its current shares. */
  async function pendingRekey(seal: SealManager, old: InitResult) {
    const started = await seal.rekeyInit({ shares: 5, threshold: 3, requireVerification: true });
    assert.equal(started.verificationRequired, true);
    assert.equal(started.verificationNonce, "");
    await seal.rekeyUpdate(old.keysHex[0]!, started.nonce);
    const done = await seal.rekeyUpdate(old.keysHex[1]!, started.nonce);
    assert.ok(done.complete, "the current shares are complete");
    return { nonce: started.nonce, done, fresh: done.complete.keysHex };
  }

  it("new shares take effect after verification", async () => {
    const first = await fixture.openManager();
    const old = await initAndUnseal(first.seal, 3, 2);
    await first.seal.barrier.put("app/secret", text("kept"));
    const { nonce, done, fresh } = await pendingRekey(first.seal, old);

    assert.equal(fresh.length, 5);
    assert.equal(done.started, true);
    assert.equal(done.nonce, nonce);
    assert.equal(done.progress, 0);
    assert.equal(done.verificationRequired, true);
    assert.ok(done.verificationNonce.length > 0);
    assert.notEqual(done.verificationNonce, nonce);

    // Until verification the stored configuration and the current shares stay.
    const pendingStatus = await first.seal.status();
    assert.equal(pendingStatus.shares, 3);
    assert.equal(pendingStatus.threshold, 2);
    assert.equal(await first.seal.verifyShares(old.keysHex.slice(1, 3)), true);
    assert.equal(await first.seal.verifyShares(fresh.slice(0, 3)), false);

    const verifying = await first.seal.rekeyVerifyStatus();
    assert.deepEqual(verifying, {
      started: true,
      nonce: done.verificationNonce,
      progress: 0,
      shares: 5,
      threshold: 3,
      complete: false,
    });
    const afterFirst = await first.seal.rekeyVerifyUpdate(fresh[0]!, done.verificationNonce);
    assert.equal(afterFirst.progress, 1);
    assert.equal(afterFirst.complete, false);
    const afterSecond = await first.seal.rekeyVerifyUpdate(fresh[3]!, done.verificationNonce);
    assert.equal(afterSecond.progress, 2);
    const afterThird = await first.seal.rekeyVerifyUpdate(
      done.complete!.keysBase64[4]!,
      done.verificationNonce,
    );
    assert.equal(afterThird.complete, true);
    assert.equal(afterThird.nonce, done.verificationNonce);

    const after = await first.seal.status();
    assert.equal(after.shares, 5);
    assert.equal(after.threshold, 3);
    assert.equal((await first.seal.rekeyStatus()).started, false);
    await assert.rejects(first.seal.rekeyVerifyStatus(), keywardError("invalid_state"));
    assert.equal(await first.seal.verifyShares(fresh.slice(1, 4)), true);
    assert.equal(decode(await first.seal.barrier.get("app/secret")), "kept");
    await first.seal.seal();
    await assert.rejects(unsealWith(first.seal, old.keysHex, 3), keywardError("invalid_shares"));
    await first.storage.close();

    const second = await fixture.openManager();
    await assert.rejects(unsealWith(second.seal, old.keysHex, 3), keywardError("invalid_shares"));
    await unsealWith(second.seal, fresh.slice(2));
    assert.equal((await second.seal.status()).sealed, false);
    assert.equal(decode(await second.seal.barrier.get("app/secret")), "kept");
  });

  it("verification rejects bad input", async () => {
    const { seal } = await fixture.openManager();
    const old = await initAndUnseal(seal, 3, 2);
    await assert.rejects(seal.rekeyVerifyStatus(), keywardError("invalid_state"));
    await assert.rejects(
      seal.rekeyVerifyUpdate(old.keysHex[0]!, "nonce"),
      keywardError("invalid_state"),
    );
    const { nonce, done, fresh } = await pendingRekey(seal, old);
    const verificationNonce = done.verificationNonce;

    await assert.rejects(seal.rekeyUpdate(old.keysHex[2]!, nonce), keywardError("invalid_state"));
    await assert.rejects(
      seal.rekeyInit({ shares: 3, threshold: 2, requireVerification: true }),
      keywardError("invalid_state"),
    );
    await assert.rejects(
      seal.rekeyVerifyUpdate(fresh[0]!, nonce),
      keywardError("invalid_field", "nonce"),
    );
    await assert.rejects(
      seal.rekeyVerifyUpdate(old.keysHex[0]!, verificationNonce),
      keywardError("invalid_field", "key"),
    );
    await assert.rejects(
      seal.rekeyVerifyUpdate(randomBytes(33).toString("hex"), verificationNonce),
      keywardError("invalid_field", "key"),
    );
    await assert.rejects(
      seal.rekeyVerifyUpdate("not a share", verificationNonce),
      keywardError("invalid_field", "key"),
    );
    await seal.rekeyVerifyUpdate(fresh[1]!, verificationNonce);
    await assert.rejects(
      seal.rekeyVerifyUpdate(done.complete!.keysBase64[1]!, verificationNonce),
      keywardError("invalid_field", "key"),
    );
    assert.equal((await seal.rekeyVerifyStatus()).progress, 1);
    assert.equal((await seal.status()).shares, 3);
  });

  it("verification reset keeps new shares", async () => {
    const { seal } = await fixture.openManager();
    const old = await initAndUnseal(seal, 3, 2);
    const { done, fresh } = await pendingRekey(seal, old);
    await seal.rekeyVerifyUpdate(fresh[0]!, done.verificationNonce);

    const reset = await seal.rekeyVerifyReset();
    assert.equal(reset.progress, 0);
    assert.equal(reset.started, true);
    assert.notEqual(reset.nonce, done.verificationNonce);
    assert.equal((await seal.rekeyStatus()).verificationNonce, reset.nonce);
    await assert.rejects(
      seal.rekeyVerifyUpdate(fresh[1]!, done.verificationNonce),
      keywardError("invalid_field", "nonce"),
    );

    let status = reset;
    for (const share of fresh.slice(0, 3))
      status = await seal.rekeyVerifyUpdate(share, reset.nonce);
    assert.equal(status.complete, true);
    assert.equal((await seal.status()).shares, 5);
  });

  it("cancel drops new shares", async () => {
    const { seal } = await fixture.openManager();
    const old = await initAndUnseal(seal, 3, 2);
    const { done, fresh } = await pendingRekey(seal, old);
    await seal.rekeyCancel();
    await assert.rejects(
      seal.rekeyVerifyUpdate(fresh[0]!, done.verificationNonce),
      keywardError("invalid_state"),
    );
    assert.equal((await seal.rekeyStatus()).started, false);
    assert.equal(await seal.verifyShares(old.keysHex.slice(0, 2)), true);
    const again = await seal.rekeyInit({ shares: 3, threshold: 2 });
    assert.equal(again.verificationRequired, false);
  });

  it("seal drops new shares", async () => {
    const { seal } = await fixture.openManager();
    const old = await initAndUnseal(seal, 3, 2);
    const { fresh } = await pendingRekey(seal, old);
    await seal.seal();
    await assert.rejects(unsealWith(seal, fresh, 3), keywardError("invalid_shares"));
    assert.equal((await unsealWith(seal, old.keysHex, 2)).sealed, false);
    assert.equal((await seal.rekeyStatus()).started, false);
    await assert.rejects(seal.rekeyVerifyStatus(), keywardError("invalid_state"));
  });

  it("restart drops new shares", async () => {
    const first = await fixture.openManager();
    const old = await initAndUnseal(first.seal, 3, 2);
    const { fresh } = await pendingRekey(first.seal, old);
    await first.storage.close();

    const second = await fixture.openManager();
    await assert.rejects(unsealWith(second.seal, fresh, 3), keywardError("invalid_shares"));
    assert.equal((await unsealWith(second.seal, old.keysHex.slice(1), 2)).sealed, false);
    assert.equal((await second.seal.rekeyStatus()).started, false);
  });

  it("rekey without verification has none", async () => {
    const { seal } = await fixture.openManager();
    const old = await initAndUnseal(seal, 3, 2);
    const { nonce } = await seal.rekeyInit({ shares: 3, threshold: 2 });
    await seal.rekeyUpdate(old.keysHex[0]!, nonce);
    await assert.rejects(seal.rekeyVerifyStatus(), keywardError("invalid_state"));
    await assert.rejects(seal.rekeyVerifyReset(), keywardError("invalid_state"));
    const done = await seal.rekeyUpdate(old.keysHex[1]!, nonce);
    assert.equal(done.verificationRequired, false);
    assert.equal(done.verificationNonce, "");
    assert.equal(await seal.verifyShares(done.complete!.keysHex.slice(0, 2)), true);
  });

  it("failed verification commit keeps new shares", async () => {
    const storage = new FailingStorage(await fixture.openStorage());
    const seal = createSealManager(storage);
    const old = await initAndUnseal(seal, 3, 2);
    const { done, fresh } = await pendingRekey(seal, old);
    await seal.rekeyVerifyUpdate(fresh[0]!, done.verificationNonce);
    await seal.rekeyVerifyUpdate(fresh[1]!, done.verificationNonce);
    storage.failWrites = true;
    await assert.rejects(
      seal.rekeyVerifyUpdate(fresh[2]!, done.verificationNonce),
      keywardError("storage_failure"),
    );
    storage.failWrites = false;
    assert.equal((await seal.status()).shares, 3);
    assert.equal(await seal.verifyShares(old.keysHex.slice(0, 2)), true);
    assert.equal((await seal.rekeyVerifyStatus()).progress, 0);

    let status = await seal.rekeyVerifyStatus();
    for (const share of fresh.slice(2, 5)) {
      status = await seal.rekeyVerifyUpdate(share, done.verificationNonce);
    }
    assert.equal(status.complete, true);
    await seal.seal();
    assert.equal((await unsealWith(seal, fresh, 3)).sealed, false);
  });
});
