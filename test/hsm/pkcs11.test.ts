import assert from "node:assert/strict";
import { constants, publicEncrypt, randomBytes, verify } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { KeywardError } from "../../src/errors.ts";
import { HsmAesKey } from "../../src/hsm/aes-gcm.ts";
import { HsmEcdsaKey, rawSignatureToDer } from "../../src/hsm/ecdsa.ts";
import { HsmRsaKey } from "../../src/hsm/rsa.ts";
import { HsmToken } from "../../src/hsm/token.ts";
import { requirePeer } from "../helpers/peers.ts";
import { requireSoftHsm, SOFTHSM_LIBRARY, softHsmInstalled } from "./softhsm.ts";
import { openSoftHsmToken, type SoftHsmToken } from "./softhsm-token.ts";

const TOKEN = "keyward-hsm-test";
const PIN = "user-pin-4821";

function keywardError(code: string) {
  return (error: unknown) => {
    assert.ok(error instanceof KeywardError, `expected a KeywardError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    return true;
  };
}

describe("PKCS#11 layer on SoftHSM2", () => {
  let softHsm: SoftHsmToken | undefined;

  before(async () => {
    if (softHsmInstalled()) softHsm = await openSoftHsmToken([TOKEN, "second-token"], PIN);
  });

  after(async () => {
    await softHsm?.close();
  });

  function ready(t: Parameters<typeof requireSoftHsm>[0]): HsmToken | undefined {
    if (!requireSoftHsm(t)) return undefined;
    return softHsm?.token;
  }

  it("missing library is unavailable", async () => {
    await assert.rejects(
      HsmToken.open({ library: "/nonexistent/libpkcs11.so", tokenLabel: TOKEN, pin: PIN }),
      (error: unknown) => {
        keywardError("hsm_unavailable")(error);
        assert.match((error as Error).message, /\/nonexistent\/libpkcs11\.so does not exist/);
        return true;
      },
    );
  });

  it("file that is no library is unavailable", async (t) => {
    if (!ready(t)) return;
    await assert.rejects(
      HsmToken.open({ library: softHsm!.hsm.configFile, tokenLabel: TOKEN, pin: PIN }),
      (error: unknown) => {
        keywardError("hsm_unavailable")(error);
        assert.match((error as Error).message, /failed to load the PKCS#11 library/);
        return true;
      },
    );
  });

  it("missing token lists the labels found", async (t) => {
    if (!ready(t)) return;
    await assert.rejects(
      HsmToken.open({ library: SOFTHSM_LIBRARY, tokenLabel: "no-such-token", pin: PIN }),
      (error: unknown) => {
        keywardError("hsm_unavailable")(error);
        const message = (error as Error).message;
        assert.match(message, /no token labelled "no-such-token"/);
        assert.match(message, /"keyward-hsm-test"/);
        assert.match(message, /"second-token"/);
        return true;
      },
    );
  });

  it("wrong PIN fails login without the PIN", async (t) => {
    if (!ready(t)) return;
    // Another token, so the test token's login state is not involved.
    const wrongPin = "wrong-pin-7730";
    await assert.rejects(
      HsmToken.open({ library: SOFTHSM_LIBRARY, tokenLabel: "second-token", pin: wrongPin }),
      (error: unknown) => {
        keywardError("hsm_login_failed")(error);
        const message = (error as Error).message;
        assert.match(message, /PIN is incorrect/);
        assert.ok(!message.includes(wrongPin), "the message must not contain the PIN");
        return true;
      },
    );
  });

  it("AES-GCM round trip with AAD", async (t) => {
    const session = ready(t);
    if (!session) return;
    const key = await HsmAesKey.generate(session, "aes-round-trip");
    const plaintext = randomBytes(32);
    const aad = Buffer.from("context");
    const first = await key.encrypt(plaintext, aad);
    assert.equal(first.iv.length, 12);
    assert.equal(first.ciphertext.length, plaintext.length + 16);
    assert.deepEqual(await key.decrypt(first, aad), plaintext);

    const second = await key.encrypt(plaintext, aad);
    assert.notDeepEqual(second.iv, first.iv, "each encryption has a new IV");
    assert.notDeepEqual(second.ciphertext, first.ciphertext);

    const found = await HsmAesKey.find(session, "aes-round-trip");
    assert.ok(found, "the key is found again by its label");
    assert.deepEqual(await found.decrypt(second, aad), plaintext);
  });

  it("AES-GCM rejects wrong AAD and changed bytes", async (t) => {
    const session = ready(t);
    if (!session) return;
    const key = await HsmAesKey.generate(session, "aes-tamper");
    const sealed = await key.encrypt(Buffer.from("root key bytes"), Buffer.from("a"));
    await assert.rejects(key.decrypt(sealed, Buffer.from("b")), keywardError("decryption_failed"));

    const changed = Buffer.from(sealed.ciphertext);
    changed[0] = (changed[0] ?? 0) ^ 1;
    await assert.rejects(
      key.decrypt({ iv: sealed.iv, ciphertext: changed }, Buffer.from("a")),
      keywardError("decryption_failed"),
    );
    await assert.rejects(
      key.decrypt({ iv: sealed.iv, ciphertext: Buffer.alloc(8) }, Buffer.from("a")),
      keywardError("decryption_failed"),
    );
    // The session still works after the failed operations.
    assert.deepEqual(await key.decrypt(sealed, Buffer.from("a")), Buffer.from("root key bytes"));
  });

  it("AES key is not extractable", async (t) => {
    const session = ready(t);
    if (!session) return;
    const key = await HsmAesKey.generate(session, "aes-protected");
    const protection = await key.protection();
    assert.equal(protection.sensitive, true);
    assert.equal(protection.extractable, false);
    assert.equal(protection.valueReadable, false, "reading CKA_VALUE must fail");
  });

  it("AES key generated twice fails", async (t) => {
    const session = ready(t);
    if (!session) return;
    await HsmAesKey.generate(session, "aes-twice");
    await assert.rejects(HsmAesKey.generate(session, "aes-twice"), keywardError("already_exists"));
  });

  it("missing AES key is undefined", async (t) => {
    const session = ready(t);
    if (!session) return;
    assert.equal(await HsmAesKey.find(session, "aes-absent"), undefined);
  });

  it("parallel calls are serialised", async (t) => {
    const session = ready(t);
    if (!session) return;
    const key = await HsmAesKey.generate(session, "aes-parallel");
    const inputs = Array.from({ length: 24 }, (_, index) => Buffer.from(`message ${index}`));
    const sealed = await Promise.all(inputs.map((input) => key.encrypt(input, Buffer.alloc(0))));
    const opened = await Promise.all(sealed.map((value) => key.decrypt(value, Buffer.alloc(0))));
    assert.deepEqual(opened, inputs);
  });

  it("ECDSA signature verifies with node:crypto", async (t) => {
    const session = ready(t);
    if (!session) return;
    const key = await HsmEcdsaKey.generate(session, "ecdsa-signer");
    const publicKey = await key.publicKey();
    assert.equal(publicKey.asymmetricKeyType, "ec");
    assert.equal(publicKey.asymmetricKeyDetails?.namedCurve, "prime256v1");

    const message = Buffer.from("a certificate to be signed");
    const signature = await key.sign(message);
    assert.equal(signature[0], 0x30, "the signature is a DER SEQUENCE");
    assert.equal(verify("sha256", message, publicKey, signature), true);
    assert.equal(verify("sha256", Buffer.from("another message"), publicKey, signature), false);

    const found = await HsmEcdsaKey.find(session, "ecdsa-signer");
    assert.ok(found);
    assert.equal(verify("sha256", message, publicKey, await found.sign(message)), true);
  });

  it("ECDSA private key is not extractable", async (t) => {
    const session = ready(t);
    if (!session) return;
    const key = await HsmEcdsaKey.generate(session, "ecdsa-protected");
    const protection = await key.protection();
    assert.equal(protection.sensitive, true);
    assert.equal(protection.extractable, false);
    assert.equal(protection.valueReadable, false);
  });

  it("raw signature converts to DER", () => {
    const raw = Buffer.concat([Buffer.alloc(32, 0x80), Buffer.alloc(32, 0x01)]);
    raw[0] = 0x7f;
    const der = rawSignatureToDer(raw);
    // r keeps 32 bytes (its high bit is clear); s = 0x0101… keeps 32 bytes too.
    assert.equal(der.toString("hex").slice(0, 12), "304402207f80");
    const highBit = Buffer.concat([Buffer.alloc(32, 0x01), Buffer.alloc(32, 0x01)]);
    highBit[0] = 0x90;
    // r with its high bit set gets a leading zero byte so it stays positive.
    assert.equal(rawSignatureToDer(highBit).toString("hex").slice(0, 10), "3045022100");
    assert.throws(() => rawSignatureToDer(Buffer.alloc(10)), keywardError("hsm_failure"));
  });

  it("RSA-OAEP decrypts in the token", async (t) => {
    const session = ready(t);
    if (!session) return;
    const key = await HsmRsaKey.generate(session, "rsa-decrypter", 2048);
    const publicKey = await key.publicKey();
    assert.equal(publicKey.asymmetricKeyDetails?.modulusLength, 2048);
    const secret = randomBytes(32);
    // SoftHSM 2.6.1 implements OAEP with SHA-1 only.
    const ciphertext = publicEncrypt(
      { key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha1" },
      secret,
    );
    assert.deepEqual(await key.decryptOaep(ciphertext, "sha1"), secret);

    const changed = Buffer.from(ciphertext);
    changed[10] = (changed[10] ?? 0) ^ 0xff;
    await assert.rejects(key.decryptOaep(changed, "sha1"), keywardError("decryption_failed"));

    const protection = await key.protection();
    assert.equal(protection.extractable, false);
    assert.equal(protection.valueReadable, false);
  });

  it("pkcs11-tool cannot read the AES key", async (t) => {
    const session = ready(t);
    if (!session || !softHsm || !requirePeer(t, "pkcs11-tool")) return;
    await HsmAesKey.generate(session, "aes-read-by-tool");
    const read = softHsm.hsm.pkcs11Tool([
      "--token-label",
      TOKEN,
      "--login",
      "--pin",
      PIN,
      "--read-object",
      "--type",
      "secrkey",
      "--label",
      "aes-read-by-tool",
    ]);
    assert.notEqual(read.status, 0, `pkcs11-tool read the key value:\n${read.output}`);
  });

  it("second token shares the library", async (t) => {
    const session = ready(t);
    if (!session) return;
    const key = await HsmAesKey.generate(session, "aes-shared-library");
    const sealed = await key.encrypt(Buffer.from("x"), Buffer.alloc(0));
    const other = await HsmToken.open({
      library: SOFTHSM_LIBRARY,
      tokenLabel: "second-token",
      pin: PIN,
    });
    assert.equal(await HsmAesKey.find(other, "aes-shared-library"), undefined);
    await other.close();
    // Closing the other token leaves the library initialised for this one.
    assert.deepEqual(await key.decrypt(sealed, Buffer.alloc(0)), Buffer.from("x"));
  });

  it("lost session is reopened", async (t) => {
    const session = ready(t);
    if (!session) return;
    const key = await HsmAesKey.generate(session, "aes-lost-session");
    const sealed = await key.encrypt(Buffer.from("kept"), Buffer.alloc(0));
    // Closing the session underneath stands for an HSM restart; it also ends the login.
    await session.run((context) => context.module.C_CloseSession(context.session));
    assert.deepEqual(await key.decrypt(sealed, Buffer.alloc(0)), Buffer.from("kept"));
    assert.ok(await HsmAesKey.find(session, "aes-lost-session"));
  });

  it("closed token rejects calls", async (t) => {
    if (!ready(t)) return;
    const closing = await HsmToken.open({
      library: SOFTHSM_LIBRARY,
      tokenLabel: "second-token",
      pin: PIN,
    });
    await closing.close();
    await assert.rejects(HsmAesKey.find(closing, "any"), keywardError("hsm_unavailable"));
  });
});
