import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import pkcs11js from "pkcs11js";
import { HsmEcdsaKey } from "../../src/hsm/ecdsa.ts";
import { findObjects, readAttributes, readBoolean } from "../../src/hsm/objects.ts";
import { requireSoftHsm, softHsmInstalled } from "./softhsm.ts";
import { openSoftHsmToken, type SoftHsmToken } from "./softhsm-token.ts";

const TOKEN = "keyward-ecdsa-usage";
const PIN = "ecdsa-pin-9753";

const USAGE_ATTRIBUTES = {
  CKA_SIGN: pkcs11js.CKA_SIGN,
  CKA_VERIFY: pkcs11js.CKA_VERIFY,
  CKA_ENCRYPT: pkcs11js.CKA_ENCRYPT,
  CKA_DECRYPT: pkcs11js.CKA_DECRYPT,
  CKA_WRAP: pkcs11js.CKA_WRAP,
  CKA_UNWRAP: pkcs11js.CKA_UNWRAP,
  CKA_DERIVE: pkcs11js.CKA_DERIVE,
} as const;

describe("HSM ECDSA key usage", () => {
  let softHsm: SoftHsmToken | undefined;

  before(async () => {
    if (softHsmInstalled()) softHsm = await openSoftHsmToken([TOKEN], PIN);
  });

  after(async () => {
    await softHsm?.close();
  });

  /** Reads the usage attributes of the `objectClass` object labelled `label`. An attribute that the class lacks reads as false. */
  function usageOf(label: string, objectClass: number): Promise<Record<string, boolean>> {
    return softHsm!.token.run((context) => {
      const [handle] = findObjects(context, [
        { type: pkcs11js.CKA_CLASS, value: objectClass },
        { type: pkcs11js.CKA_LABEL, value: label },
      ]);
      assert.ok(handle !== undefined, `no object of class ${objectClass} labelled ${label}`);
      const usage: Record<string, boolean> = {};
      for (const [name, type] of Object.entries(USAGE_ATTRIBUTES)) {
        try {
          usage[name] = readBoolean(readAttributes(context, handle, [type])[0]);
        } catch {
          usage[name] = false;
        }
      }
      return usage;
    });
  }

  it("private key only signs", async (t) => {
    if (!requireSoftHsm(t) || softHsm === undefined) return;
    await HsmEcdsaKey.generate(softHsm.token, "ecdsa-private");

    const usage = await usageOf("ecdsa-private", pkcs11js.CKO_PRIVATE_KEY);
    assert.equal(usage.CKA_SIGN, true);
    assert.equal(usage.CKA_DECRYPT, false);
    assert.equal(usage.CKA_UNWRAP, false);
    assert.equal(usage.CKA_DERIVE, false);
  });

  it("public key only verifies", async (t) => {
    if (!requireSoftHsm(t) || softHsm === undefined) return;
    await HsmEcdsaKey.generate(softHsm.token, "ecdsa-public");

    const usage = await usageOf("ecdsa-public", pkcs11js.CKO_PUBLIC_KEY);
    assert.equal(usage.CKA_VERIFY, true);
    assert.equal(usage.CKA_ENCRYPT, false);
    assert.equal(usage.CKA_WRAP, false);
  });
});
