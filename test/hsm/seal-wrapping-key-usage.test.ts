import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it, type TestContext } from "node:test";
import pkcs11js from "pkcs11js";
import { KeywardError } from "../../src/errors.ts";
import type { HsmToken } from "../../src/hsm/token.ts";
import { openHsmRootKeyWrapper } from "../../src/seal/hsm-root-key-wrapper.ts";
import { createPkcs11SealManager } from "../../src/seal/pkcs11-seal.ts";
import type { RootKeyWrapper } from "../../src/seal/wrapped-root-key.ts";
import { SealFixture } from "../seal/fixtures.ts";
import { requireSoftHsm, SOFTHSM_LIBRARY, softHsmInstalled } from "./softhsm.ts";
import { openSoftHsmToken, type SoftHsmToken } from "./softhsm-token.ts";

const TOKEN = "keyward-seal-usage";
const PIN = "usage-pin-8642";

/**
 * Generates an AES-256 key under `label` the way an operator's tool might,
 * with CKA_ENCRYPT and CKA_DECRYPT as given.
 */
function generateAesKey(
  token: HsmToken,
  label: string,
  usage: { encrypt: boolean; decrypt: boolean },
): Promise<void> {
  return token.run((context) => {
    context.module.C_GenerateKey(context.session, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
      { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_AES },
      { type: pkcs11js.CKA_VALUE_LEN, value: 32 },
      { type: pkcs11js.CKA_LABEL, value: label },
      { type: pkcs11js.CKA_TOKEN, value: true },
      { type: pkcs11js.CKA_PRIVATE, value: true },
      { type: pkcs11js.CKA_SENSITIVE, value: true },
      { type: pkcs11js.CKA_EXTRACTABLE, value: false },
      { type: pkcs11js.CKA_ENCRYPT, value: usage.encrypt },
      { type: pkcs11js.CKA_DECRYPT, value: usage.decrypt },
    ]);
  });
}

/** Returns an `assert.rejects` check for the error of a wrapping key that lacks `attribute`. */
function unusableKey(attribute: string) {
  return (error: unknown) => {
    assert.ok(error instanceof KeywardError, `expected a KeywardError, got ${String(error)}`);
    assert.equal(error.code, "hsm_key_not_found", error.message);
    assert.match(error.message, new RegExp(`${attribute} attribute is false`));
    assert.match(error.message, /seal_pkcs11_key_label/);
    assert.doesNotMatch(error.message, new RegExp(PIN));
    return true;
  };
}

describe("seal wrapping key usage attributes", () => {
  let softHsm: SoftHsmToken | undefined;
  const wrappers: RootKeyWrapper[] = [];
  const fixtures: SealFixture[] = [];

  before(async () => {
    if (!softHsmInstalled()) return;
    softHsm = await openSoftHsmToken([TOKEN], PIN);
    await generateAesKey(softHsm.token, "no-decrypt", { encrypt: true, decrypt: false });
    await generateAesKey(softHsm.token, "no-encrypt", { encrypt: false, decrypt: true });
  });

  after(async () => {
    for (const wrapper of wrappers) await wrapper.close();
    for (const fixture of fixtures) await fixture.remove();
    await softHsm?.close();
  });

  function ready(t: TestContext): boolean {
    return requireSoftHsm(t) && softHsm !== undefined;
  }

  async function wrapper(keyLabel: string): Promise<RootKeyWrapper> {
    const opened = await openHsmRootKeyWrapper({
      library: SOFTHSM_LIBRARY,
      tokenLabel: TOKEN,
      pin: PIN,
      keyLabel,
    });
    wrappers.push(opened);
    return opened;
  }

  for (const [label, attribute] of [
    ["no-decrypt", "CKA_DECRYPT"],
    ["no-encrypt", "CKA_ENCRYPT"],
  ] as const) {
    it(`init rejects a key without ${attribute}`, async (t) => {
      if (!ready(t)) return;
      const fixture = await SealFixture.create();
      fixtures.push(fixture);
      const storage = await fixture.openStorage();
      const seal = createPkcs11SealManager(storage, await wrapper(label));

      await assert.rejects(seal.init({ shares: 3, threshold: 2 }), unusableKey(attribute));

      // Nothing was stored, so the operator can fix the key and initialise again.
      const status = await seal.status();
      assert.equal(status.initialized, false);
      assert.equal(status.sealed, true);
    });
  }

  it("unwrap names a key without CKA_DECRYPT", async (t) => {
    if (!ready(t)) return;
    const keyWrapper = await wrapper("no-decrypt");
    await assert.rejects(
      keyWrapper.unwrap(randomBytes(12), randomBytes(48), Buffer.from("aad")),
      unusableKey("CKA_DECRYPT"),
    );
  });

  it("init with a usable key unseals", async (t) => {
    if (!ready(t)) return;
    const fixture = await SealFixture.create();
    fixtures.push(fixture);
    const storage = await fixture.openStorage();
    const seal = createPkcs11SealManager(storage, await wrapper("created-by-keyward"));

    const result = await seal.init({ shares: 3, threshold: 2 });
    assert.equal(result.keysHex.length, 3);
    const status = await seal.autoUnseal?.();
    assert.equal(status?.sealed, false);
  });
});
