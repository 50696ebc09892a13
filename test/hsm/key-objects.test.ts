import assert from "node:assert/strict";
import { createHash, randomBytes, verify } from "node:crypto";
import { after, before, describe, it, type TestContext } from "node:test";
import { KeywardError } from "../../src/errors.ts";
import { HsmAesKey } from "../../src/hsm/aes-gcm.ts";
import { HsmEcdsaKey } from "../../src/hsm/ecdsa.ts";
import { destroyKeyObjects } from "../../src/hsm/objects.ts";
import type { HsmToken } from "../../src/hsm/token.ts";
import { requireSoftHsm, softHsmInstalled } from "./softhsm.ts";
import { openSoftHsmToken, type SoftHsmToken } from "./softhsm-token.ts";

const TOKEN = "keyward-key-objects";
const PIN = "objects-pin-2718";

function keywardError(code: string) {
  return (error: unknown) => {
    assert.ok(error instanceof KeywardError, `expected a KeywardError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    return true;
  };
}

describe("PKCS#11 key objects by label and ID", () => {
  let softHsm: SoftHsmToken | undefined;

  before(async () => {
    if (softHsmInstalled()) softHsm = await openSoftHsmToken([TOKEN], PIN);
  });

  after(async () => {
    await softHsm?.close();
  });

  function ready(t: TestContext): HsmToken | undefined {
    if (!requireSoftHsm(t)) return undefined;
    return softHsm?.token;
  }

  it("ID picks one of two keys sharing a label", async (t) => {
    const session = ready(t);
    if (!session) return;
    const first = randomBytes(16);
    const second = randomBytes(16);
    await HsmAesKey.generate(session, "shared-label", first);
    await HsmAesKey.generate(session, "shared-label", second);

    const keyA = await HsmAesKey.find(session, "shared-label", first);
    const keyB = await HsmAesKey.find(session, "shared-label", second);
    assert.ok(keyA, "key A is found by its ID");
    assert.ok(keyB, "key B is found by its ID");
    const aad = Buffer.from("aad");
    const sealed = await keyA.encrypt(Buffer.from("for key A"), aad);
    assert.deepEqual(await keyA.decrypt(sealed, aad), Buffer.from("for key A"));
    await assert.rejects(keyB.decrypt(sealed, aad), keywardError("decryption_failed"));

    await assert.rejects(HsmAesKey.find(session, "shared-label"), keywardError("hsm_failure"));
    await assert.rejects(
      HsmAesKey.generate(session, "shared-label", first),
      keywardError("already_exists"),
    );
    assert.equal(await HsmAesKey.find(session, "shared-label", randomBytes(16)), undefined);
  });

  it("signs digests of any length", async (t) => {
    const session = ready(t);
    if (!session) return;
    const id = randomBytes(16);
    const key = await HsmEcdsaKey.generate(session, "digest-signer", id);
    const publicKey = await key.publicKey();
    const message = Buffer.from("a message to sign");
    for (const hash of ["sha1", "sha256", "sha384", "sha512"]) {
      const digest = createHash(hash).update(message).digest();
      const raw = await key.signDigest(digest);
      assert.equal(raw.length, 64, hash);
      const valid = verify(hash, message, { key: publicKey, dsaEncoding: "ieee-p1363" }, raw);
      assert.equal(valid, true, `${hash} signature does not verify`);
    }
    const der = await key.sign(message);
    assert.equal(verify("sha256", message, publicKey, der), true);
  });

  it("destroy removes both halves of a pair", async (t) => {
    const session = ready(t);
    if (!session) return;
    const id = randomBytes(16);
    const key = await HsmEcdsaKey.generate(session, "short-lived", id);
    const other = await HsmEcdsaKey.generate(session, "short-lived", randomBytes(16));

    assert.equal(await destroyKeyObjects(session, "short-lived", id), 2);
    assert.equal(await destroyKeyObjects(session, "short-lived", id), 0, "a repeat finds nothing");
    assert.equal(await HsmEcdsaKey.find(session, "short-lived", id), undefined);
    await assert.rejects(key.sign(Buffer.from("x")), keywardError("hsm_key_not_found"));

    const message = Buffer.from("still here");
    const signature = await other.sign(message);
    assert.equal(verify("sha256", message, await other.publicKey(), signature), true);
  });
});
