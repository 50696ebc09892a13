import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it, type TestContext } from "node:test";
import { openHsmRootKeyWrapper } from "../../src/seal/hsm-root-key-wrapper.ts";
import { createPkcs11SealManager } from "../../src/seal/pkcs11-seal.ts";
import { recoveryKeyVerifier } from "../../src/seal/recovery-key.ts";
import {
  createPkcs11SealConfig,
  encodeSealConfig,
  readSealConfig,
  SEAL_CONFIG_KEY,
} from "../../src/seal/seal-config.ts";
import { createSealManager } from "../../src/seal/seal-manager.ts";
import type { SealManager } from "../../src/seal/types.ts";
import {
  DEFAULT_WRAPPING_KEY_LABEL,
  type RootKeyWrapper,
  WRAPPED_ROOT_KEY_KEY,
} from "../../src/seal/wrapped-root-key.ts";
import type { Storage } from "../../src/storage/storage.ts";
import { requireSoftHsm, SOFTHSM_LIBRARY, SoftHsm, softHsmInstalled } from "../hsm/softhsm.ts";
import { decode, keywardError, SealFixture, text, unsealWith } from "./fixtures.ts";

const TOKEN = "keyward-seal";
const OTHER_TOKEN = "keyward-other";
const PIN = "seal-pin-1357";

describe("PKCS#11 seal on SoftHSM2", () => {
  let hsm: SoftHsm | undefined;
  const wrappers: RootKeyWrapper[] = [];
  const fixtures: SealFixture[] = [];

  before(() => {
    if (!softHsmInstalled()) return;
    hsm = SoftHsm.withTokens([TOKEN, OTHER_TOKEN], PIN);
    hsm.useInProcess();
  });

  after(async () => {
    for (const wrapper of wrappers) await wrapper.close();
    for (const fixture of fixtures) await fixture.remove();
    hsm?.remove();
  });

  async function wrapper(keyLabel: string, tokenLabel = TOKEN): Promise<RootKeyWrapper> {
    const opened = await openHsmRootKeyWrapper({
      library: SOFTHSM_LIBRARY,
      tokenLabel,
      pin: PIN,
      keyLabel,
    });
    wrappers.push(opened);
    return opened;
  }

  async function newFixture(): Promise<SealFixture> {
    const fixture = await SealFixture.create();
    fixtures.push(fixture);
    return fixture;
  }

  /** Opens the fixture's storage with a PKCS#11 seal manager, as a restarted server does. */
  async function openSeal(
    fixture: SealFixture,
    keyWrapper: RootKeyWrapper,
  ): Promise<{ storage: Storage; seal: SealManager }> {
    const storage = await fixture.openStorage();
    return { storage, seal: createPkcs11SealManager(storage, keyWrapper) };
  }

  function ready(t: TestContext): boolean {
    return requireSoftHsm(t) && hsm !== undefined;
  }

  it("init issues recovery shares", async (t) => {
    if (!ready(t)) return;
    const fixture = await newFixture();
    const { storage, seal } = await openSeal(fixture, await wrapper("init-key"));
    assert.equal(seal.type, "pkcs11");
    const result = await seal.init({ shares: 5, threshold: 3 });
    assert.equal(result.keysHex.length, 5);
    assert.equal(result.keysBase64.length, 5);

    const status = await seal.status();
    assert.equal(status.initialized, true);
    assert.equal(status.sealed, true, "init leaves the barrier sealed");
    assert.equal(status.shares, 5);
    assert.equal(status.threshold, 3);

    assert.deepEqual(await storage.list("core/"), ["hsm-root-key", "keyring", "seal-config"]);
    const config = await readSealConfig(storage);
    assert.equal(config?.type, "pkcs11");
    assert.equal(config?.recoveryKeyVerifier?.length, 32);
    const stored = JSON.parse(decode(await storage.get(WRAPPED_ROOT_KEY_KEY))!);
    assert.equal(stored.keyLabel, "init-key");
    assert.equal(stored.mechanism, "CKM_AES_GCM");
    assert.equal(Buffer.from(stored.ciphertext, "base64").length, 32 + 16);
  });

  it("auto-unseal and restart", async (t) => {
    if (!ready(t)) return;
    const fixture = await newFixture();
    const keyWrapper = await wrapper("restart-key");
    const first = await openSeal(fixture, keyWrapper);
    await first.seal.init({ shares: 3, threshold: 2 });
    assert.equal((await first.seal.autoUnseal!()).sealed, false);
    await first.seal.barrier.put("app/secret", text("kept under the HSM"));
    await first.seal.seal();
    assert.equal((await first.seal.status()).sealed, true);
    await first.storage.close();

    const second = await openSeal(fixture, keyWrapper);
    assert.equal((await second.seal.status()).sealed, true);
    assert.equal((await second.seal.autoUnseal!()).sealed, false);
    assert.equal(decode(await second.seal.barrier.get("app/secret")), "kept under the HSM");
    // A second call while unsealed changes nothing.
    assert.equal((await second.seal.autoUnseal!()).sealed, false);
  });

  it("node unseals after init elsewhere", async (t) => {
    if (!ready(t)) return;
    const keyWrapper = await wrapper("two-nodes-key");
    const storage = await (await newFixture()).openStorage();
    // Two managers on one storage stand for two nodes sharing a database.
    const first = createPkcs11SealManager(storage, keyWrapper);
    const second = createPkcs11SealManager(storage, keyWrapper);
    await second.refresh();
    assert.equal((await second.status()).sealed, true, "nothing to unseal before init");

    await first.init({ shares: 1, threshold: 1 });
    await first.autoUnseal!();
    await first.barrier.put("app/shared", text("written on the first node"));
    await second.refresh();
    assert.equal((await second.status()).sealed, false);
    assert.equal(decode(await second.barrier.get("app/shared")), "written on the first node");

    // An operator seal sticks: a later change elsewhere does not unseal the node.
    await second.seal();
    await first.rotate();
    await second.refresh();
    assert.equal((await second.status()).sealed, true);
  });

  it("auto-unseal before init does nothing", async (t) => {
    if (!ready(t)) return;
    const { seal } = await openSeal(await newFixture(), await wrapper("uninitialised-key"));
    const status = await seal.autoUnseal!();
    assert.equal(status.initialized, false);
    assert.equal(status.sealed, true);
  });

  it("recovery shares verify and unseal", async (t) => {
    if (!ready(t)) return;
    const { seal } = await openSeal(await newFixture(), await wrapper("verify-key"));
    const result = await seal.init({ shares: 3, threshold: 2 });
    await seal.autoUnseal!();

    assert.equal(await seal.verifyShares(result.keysHex.slice(0, 2)), true);
    assert.equal(await seal.verifyShares([result.keysHex[0]!]), false, "below the threshold");

    await seal.seal();
    const status = await unsealWith(seal, [result.keysBase64[2]!, result.keysHex[1]!]);
    assert.equal(status.sealed, false, "recovery shares unseal after an operator seal");
  });

  it("wrong recovery shares are rejected", async (t) => {
    if (!ready(t)) return;
    const keyWrapper = await wrapper("wrong-shares-key");
    const { seal } = await openSeal(await newFixture(), keyWrapper);
    const other = await openSeal(await newFixture(), keyWrapper);
    const result = await seal.init({ shares: 3, threshold: 2 });
    const otherResult = await other.seal.init({ shares: 3, threshold: 2 });
    await seal.autoUnseal!();

    assert.equal(await seal.verifyShares(otherResult.keysHex.slice(0, 2)), false);
    await seal.seal();
    await seal.submitUnsealShare(otherResult.keysHex[0]!);
    await assert.rejects(
      seal.submitUnsealShare(otherResult.keysHex[1]!),
      keywardError("invalid_shares"),
    );
    const status = await seal.status();
    assert.equal(status.sealed, true);
    assert.equal(status.progress, 0, "a wrong set resets progress");
    await unsealWith(seal, result.keysHex.slice(1));
    assert.equal((await seal.status()).sealed, false);
  });

  it("init validates recovery counts", async (t) => {
    if (!ready(t)) return;
    const { seal } = await openSeal(await newFixture(), await wrapper("counts-key"));
    await assert.rejects(
      seal.init({ shares: 3, threshold: 1 }),
      keywardError("invalid_field", "recovery_threshold"),
    );
    await assert.rejects(
      seal.init({ shares: 0, threshold: 0 }),
      keywardError("invalid_field", "recovery_shares"),
    );
    assert.equal((await seal.status()).initialized, false);
  });

  it("rekey replaces the recovery shares", async (t) => {
    if (!ready(t)) return;
    const fixture = await newFixture();
    const keyWrapper = await wrapper("rekey-key");
    const first = await openSeal(fixture, keyWrapper);
    const old = await first.seal.init({ shares: 3, threshold: 2 });
    await first.seal.autoUnseal!();
    await first.seal.barrier.put("app/before-rekey", text("still readable"));
    const wrappedBefore = await first.storage.get(WRAPPED_ROOT_KEY_KEY);

    const { nonce } = await first.seal.rekeyInit({ shares: 4, threshold: 3 });
    await first.seal.rekeyUpdate(old.keysHex[0]!, nonce);
    const done = await first.seal.rekeyUpdate(old.keysHex[2]!, nonce);
    assert.equal(done.complete?.keysHex.length, 4);
    const fresh = done.complete!.keysHex;

    assert.equal(await first.seal.verifyShares(old.keysHex.slice(0, 2)), false);
    assert.equal(await first.seal.verifyShares(fresh.slice(0, 3)), true);
    assert.deepEqual(
      await first.storage.get(WRAPPED_ROOT_KEY_KEY),
      wrappedBefore,
      "the root key and its wrapping stay as they were",
    );
    await first.seal.seal();
    await first.storage.close();

    const second = await openSeal(fixture, keyWrapper);
    const status = await second.seal.status();
    assert.equal(status.shares, 4);
    assert.equal(status.threshold, 3);
    await second.seal.autoUnseal!();
    assert.equal(decode(await second.seal.barrier.get("app/before-rekey")), "still readable");
  });

  it("rekey verification replaces recovery shares", async (t) => {
    if (!ready(t)) return;
    const fixture = await newFixture();
    const keyWrapper = await wrapper("rekey-verify-key");
    const first = await openSeal(fixture, keyWrapper);
    const old = await first.seal.init({ shares: 3, threshold: 2 });
    await first.seal.autoUnseal!();
    const wrappedBefore = await first.storage.get(WRAPPED_ROOT_KEY_KEY);

    const started = await first.seal.rekeyInit({
      shares: 4,
      threshold: 3,
      requireVerification: true,
    });
    await first.seal.rekeyUpdate(old.keysHex[0]!, started.nonce);
    const done = await first.seal.rekeyUpdate(old.keysHex[1]!, started.nonce);
    const fresh = done.complete!.keysHex;
    assert.equal(fresh.length, 4);
    assert.equal(done.verificationRequired, true);
    assert.equal(await first.seal.verifyShares(old.keysHex.slice(1, 3)), true);
    assert.equal(await first.seal.verifyShares(fresh.slice(0, 3)), false);
    assert.equal((await readSealConfig(first.storage))?.shares, 3);
    await assert.rejects(
      first.seal.rekeyVerifyUpdate(old.keysHex[2]!, done.verificationNonce),
      keywardError("invalid_field", "key"),
    );

    let status = await first.seal.rekeyVerifyStatus();
    for (const share of fresh.slice(1)) {
      status = await first.seal.rekeyVerifyUpdate(share, done.verificationNonce);
    }
    assert.equal(status.complete, true);
    assert.equal(await first.seal.verifyShares(old.keysHex.slice(0, 2)), false);
    assert.equal(await first.seal.verifyShares(fresh.slice(0, 3)), true);
    assert.deepEqual(await first.storage.get(WRAPPED_ROOT_KEY_KEY), wrappedBefore);
    await first.seal.seal();
    await first.storage.close();

    const second = await openSeal(fixture, keyWrapper);
    const restarted = await second.seal.status();
    assert.equal(restarted.shares, 4);
    assert.equal(restarted.threshold, 3);
    assert.equal((await unsealWith(second.seal, fresh, 3)).sealed, false);
  });

  it("rekey verification fails after a rekey elsewhere", async (t) => {
    if (!ready(t)) return;
    const { storage, seal } = await openSeal(await newFixture(), await wrapper("rekey-race-key"));
    const old = await seal.init({ shares: 3, threshold: 2 });
    await seal.autoUnseal!();
    const started = await seal.rekeyInit({ shares: 3, threshold: 2, requireVerification: true });
    await seal.rekeyUpdate(old.keysHex[0]!, started.nonce);
    const done = await seal.rekeyUpdate(old.keysHex[1]!, started.nonce);

    // Another node sharing the storage replaces the recovery key meanwhile.
    const elsewhere = createPkcs11SealConfig(2, 2, recoveryKeyVerifier(randomBytes(32)));
    await storage.put(SEAL_CONFIG_KEY, encodeSealConfig(elsewhere));
    const fresh = done.complete!.keysHex;
    await seal.rekeyVerifyUpdate(fresh[0]!, done.verificationNonce);
    await assert.rejects(
      seal.rekeyVerifyUpdate(fresh[1]!, done.verificationNonce),
      keywardError("invalid_state"),
    );
    assert.deepEqual(await readSealConfig(storage), elsewhere);
  });

  it("rekey counts use secret field names", async (t) => {
    if (!ready(t)) return;
    const { seal } = await openSeal(await newFixture(), await wrapper("rekey-fields-key"));
    await seal.init({ shares: 1, threshold: 1 });
    await seal.autoUnseal!();
    await assert.rejects(
      seal.rekeyInit({ shares: 2, threshold: 1 }),
      keywardError("invalid_field", "secret_threshold"),
    );
  });

  it("Shamir seal rejects PKCS#11 storage", async (t) => {
    if (!ready(t)) return;
    const fixture = await newFixture();
    const pkcs11 = await openSeal(fixture, await wrapper("mismatch-key"));
    await pkcs11.seal.init({ shares: 1, threshold: 1 });
    await pkcs11.storage.close();

    const storage = await fixture.openStorage();
    const shamir = createSealManager(storage);
    await assert.rejects(shamir.status(), (error: unknown) => {
      keywardError("seal_mismatch")(error);
      assert.match((error as Error).message, /initialised with a PKCS#11 seal/);
      assert.match((error as Error).message, /seal_pkcs11_library/);
      return true;
    });
  });

  it("PKCS#11 seal rejects Shamir storage", async (t) => {
    if (!ready(t)) return;
    const fixture = await newFixture();
    const storage = await fixture.openStorage();
    await createSealManager(storage).init({ shares: 1, threshold: 1 });
    await storage.close();

    const { seal } = await openSeal(fixture, await wrapper("shamir-storage-key"));
    await assert.rejects(seal.autoUnseal!(), (error: unknown) => {
      keywardError("seal_mismatch")(error);
      assert.match((error as Error).message, /initialised with a Shamir seal/);
      return true;
    });
  });

  it("another key label is a mismatch", async (t) => {
    if (!ready(t)) return;
    const fixture = await newFixture();
    const first = await openSeal(fixture, await wrapper("label-a"));
    await first.seal.init({ shares: 1, threshold: 1 });
    await first.storage.close();

    const { seal } = await openSeal(fixture, await wrapper("label-b"));
    await assert.rejects(seal.autoUnseal!(), (error: unknown) => {
      keywardError("seal_mismatch")(error);
      assert.match((error as Error).message, /seal_pkcs11_key_label to "label-a"/);
      return true;
    });
  });

  it("same label in another token fails", async (t) => {
    if (!ready(t)) return;
    const fixture = await newFixture();
    const first = await openSeal(fixture, await wrapper("shared-label"));
    await first.seal.init({ shares: 1, threshold: 1 });
    await first.storage.close();

    // The other token gets its own key under the same label, which wraps another storage.
    const otherWrapper = await wrapper("shared-label", OTHER_TOKEN);
    await (await openSeal(await newFixture(), otherWrapper)).seal.init({
      shares: 1,
      threshold: 1,
    });
    const { seal } = await openSeal(fixture, otherWrapper);
    await assert.rejects(seal.autoUnseal!(), (error: unknown) => {
      keywardError("seal_mismatch")(error);
      assert.match((error as Error).message, /cannot decrypt the stored root key/);
      return true;
    });
    assert.equal((await seal.status()).sealed, true);
  });

  it("missing HSM key is reported", async (t) => {
    if (!ready(t)) return;
    const fixture = await newFixture();
    const first = await openSeal(fixture, await wrapper("deleted-key", OTHER_TOKEN));
    await first.seal.init({ shares: 1, threshold: 1 });
    await first.storage.close();
    hsm!.pkcs11Tool([
      "--token-label",
      OTHER_TOKEN,
      "--login",
      "--pin",
      PIN,
      "--delete-object",
      "--type",
      "secrkey",
      "--label",
      "deleted-key",
    ]);
    const { seal } = await openSeal(fixture, await wrapper("deleted-key", OTHER_TOKEN));
    await assert.rejects(seal.autoUnseal!(), keywardError("hsm_key_not_found"));
  });

  it("existing HSM key is reused", async (t) => {
    if (!ready(t)) return;
    const keyWrapper = await wrapper(DEFAULT_WRAPPING_KEY_LABEL);
    const first = await openSeal(await newFixture(), keyWrapper);
    await first.seal.init({ shares: 1, threshold: 1 });
    const second = await openSeal(await newFixture(), keyWrapper);
    await second.seal.init({ shares: 1, threshold: 1 });
    await first.seal.autoUnseal!();
    await second.seal.autoUnseal!();

    const listed = hsm!.listObjects(TOKEN, PIN, ["--type", "secrkey"]);
    assert.equal(listed.status, 0, listed.output);
    const labels = listed.output.match(
      new RegExp(`label:\\s+${DEFAULT_WRAPPING_KEY_LABEL}\\n`, "g"),
    );
    assert.equal(labels?.length, 1, `one wrapping key for both installations:\n${listed.output}`);
  });

  it("stored config format", async (t) => {
    if (!ready(t)) return;
    const fixture = await newFixture();
    const { storage, seal } = await openSeal(fixture, await wrapper("format-key"));
    await seal.init({ shares: 1, threshold: 1 });
    const config = JSON.parse(decode(await storage.get(SEAL_CONFIG_KEY))!);
    assert.deepEqual(Object.keys(config).sort(), [
      "recoveryKeyVerifier",
      "shares",
      "threshold",
      "type",
      "version",
    ]);
    assert.equal(config.version, 2);
  });
});
