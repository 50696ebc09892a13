import assert from "node:assert/strict";
import { createHash, createPublicKey, verify as verifySignature } from "node:crypto";
import { after, before, describe, it, type TestContext } from "node:test";
import { createTestApp, type TestApp } from "../../helpers/app.ts";
import { requirePeer } from "../../helpers/peers.ts";
import { accessFlags, type HsmTestApp, objectsLabelled, useHsmTestApp } from "./hsm-fixture.ts";

const DAY_MS = 24 * 60 * 60 * 1000;

function base64(text: string): string {
  return Buffer.from(text).toString("base64");
}

describe("transit keys held in an HSM", () => {
  const hsmApp = useHsmTestApp();

  function ready(t: TestContext): HsmTestApp | undefined {
    return hsmApp.ready(t);
  }

  function call(method: "GET" | "POST" | "DELETE", url: string, payload?: object) {
    return hsmApp.app.call(method, `transit/${url}`, payload);
  }

  async function ok(method: "GET" | "POST" | "DELETE", url: string, payload?: object) {
    const response = await call(method, url, payload);
    assert.equal(response.status, 200, JSON.stringify(response.body));
    return response.body.data;
  }

  /** Lists the token's objects and returns the blocks labelled `label`. */
  function objects(t: TestContext, label: string): string[] | undefined {
    if (!requirePeer(t, "pkcs11-tool")) return undefined;
    const listed = hsmApp.app.listObjects();
    assert.equal(listed.status, 0, listed.output);
    return objectsLabelled(listed.output, label);
  }

  it("aes256-gcm96 encrypts and decrypts", async (t) => {
    if (!ready(t)) return;
    const created = await ok("POST", "keys/ledger", { hsm: true });
    assert.equal(created.type, "aes256-gcm96");
    assert.equal(created.hsm, true);
    assert.equal(created.exportable, false);
    assert.equal(created.supports_encryption, true);

    const read = await ok("GET", "keys/ledger");
    assert.equal(read.hsm, true);
    assert.deepEqual(Object.keys(read.keys), ["1"]);

    const plaintext = base64("account 1234: 99.50");
    const associated = base64("ledger row 7");
    const encrypted = await ok("POST", "encrypt/ledger", {
      plaintext,
      associated_data: associated,
    });
    assert.match(encrypted.ciphertext, /^keyward:v1:/);
    assert.equal(encrypted.key_version, 1);
    const payload = Buffer.from(encrypted.ciphertext.split(":")[2], "base64");
    assert.equal(payload.length, 12 + Buffer.from(plaintext, "base64").length + 16);

    const decrypted = await ok("POST", "decrypt/ledger", {
      ciphertext: encrypted.ciphertext,
      associated_data: associated,
    });
    assert.equal(decrypted.plaintext, plaintext);

    const wrongData = await call("POST", "decrypt/ledger", {
      ciphertext: encrypted.ciphertext,
      associated_data: base64("another row"),
    });
    assert.equal(wrongData.status, 400);
    assert.equal(wrongData.body.code, "decryption_failed");

    payload[20] = (payload[20] ?? 0) ^ 0x01;
    const tampered = await call("POST", "decrypt/ledger", {
      ciphertext: `keyward:v1:${payload.toString("base64")}`,
      associated_data: associated,
    });
    assert.equal(tampered.status, 400);
    assert.equal(tampered.body.code, "decryption_failed");

    const short = await call("POST", "decrypt/ledger", { ciphertext: "keyward:v1:AAAA" });
    assert.equal(short.status, 400);
    assert.equal(short.body.code, "decryption_failed");
  });

  it("rejects empty plaintext and keeps working", async (t) => {
    if (!ready(t)) return;
    await ok("POST", "keys/empty-input", { hsm: true });
    const empty = await call("POST", "encrypt/empty-input", { plaintext: "" });
    assert.equal(empty.status, 400, JSON.stringify(empty.body));
    assert.equal(empty.body.code, "invalid_field");
    const encrypted = await ok("POST", "encrypt/empty-input", { plaintext: base64("after") });
    assert.match(encrypted.ciphertext, /^keyward:v1:/);
  });

  it("batch encrypt and decrypt", async (t) => {
    if (!ready(t)) return;
    await ok("POST", "keys/batch", { hsm: true });
    const inputs = ["one", "two", "three"].map(base64);
    const encrypted = await ok("POST", "encrypt/batch", {
      batch_input: inputs.map((plaintext, index) => ({ plaintext, reference: `r${index}` })),
    });
    assert.equal(encrypted.batch_results.length, 3);
    assert.equal(encrypted.batch_results[1].reference, "r1");

    const response = await call("POST", "decrypt/batch", {
      batch_input: [
        ...encrypted.batch_results.map((result: { ciphertext: string }) => ({
          ciphertext: result.ciphertext,
        })),
        { ciphertext: "keyward:v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" },
      ],
    });
    assert.equal(response.status, 400, "one failed item makes the batch 400");
    const results = response.body.data.batch_results;
    assert.deepEqual(
      results.slice(0, 3).map((result: { plaintext: string }) => result.plaintext),
      inputs,
    );
    assert.equal(results[3].code, "decryption_failed");
  });

  it("rotation makes a new object", async (t) => {
    if (!ready(t)) return;
    await ok("POST", "keys/rotating", { hsm: true });
    const plaintext = base64("written under version 1");
    const first = await ok("POST", "encrypt/rotating", { plaintext });

    const rotated = await ok("POST", "keys/rotating/rotate");
    assert.equal(rotated.latest_version, 2);
    assert.equal(rotated.hsm, true);
    const second = await ok("POST", "encrypt/rotating", { plaintext });
    assert.match(second.ciphertext, /^keyward:v2:/);

    const old = await ok("POST", "decrypt/rotating", { ciphertext: first.ciphertext });
    assert.equal(old.plaintext, plaintext, "a version 1 ciphertext still decrypts");
    const rewrapped = await ok("POST", "rewrap/rotating", { ciphertext: first.ciphertext });
    assert.match(rewrapped.ciphertext, /^keyward:v2:/);
    const again = await ok("POST", "decrypt/rotating", { ciphertext: rewrapped.ciphertext });
    assert.equal(again.plaintext, plaintext);

    const v1 = objects(t, "keyward/transit/rotating/v1");
    const v2 = objects(t, "keyward/transit/rotating/v2");
    if (v1 === undefined || v2 === undefined) return;
    assert.equal(v1.length, 1);
    assert.equal(v2.length, 1);
    assert.match(v2[0] ?? "", /Secret Key Object; AES length 32/);
    assert.notEqual(/ID:\s+(\S+)/.exec(v1[0] ?? "")?.[1], /ID:\s+(\S+)/.exec(v2[0] ?? "")?.[1]);
  });

  it("automatic rotation makes a new object", async (t) => {
    if (!ready(t)) return;
    await ok("POST", "keys/scheduled", { type: "ecdsa-p256", hsm: true, auto_rotate_period: "1h" });
    const transit = hsmApp.app.keyward.transit("transit");
    assert.ok(transit);
    const summary = await transit.rotateDueKeys(new Date(Date.now() + 2 * 3600 * 1000));
    assert.ok(summary.names.includes("scheduled"), JSON.stringify(summary));
    assert.equal(summary.failed, 0);

    const read = await ok("GET", "keys/scheduled");
    assert.equal(read.latest_version, 2);
    assert.notEqual(read.keys["2"].public_key, read.keys["1"].public_key);
    const signed = await ok("POST", "sign/scheduled", { input: base64("after rotation") });
    assert.match(signed.signature, /^keyward:v2:/);
    const v2 = objects(t, "keyward/transit/scheduled/v2");
    if (v2 !== undefined) assert.equal(v2.length, 2);
  });

  it("data keys are wrapped in the HSM", async (t) => {
    if (!ready(t)) return;
    await ok("POST", "keys/wrapper", { hsm: true });
    const plain = await ok("POST", "datakey/plaintext/wrapper", { bits: 512 });
    assert.equal(Buffer.from(plain.plaintext, "base64").length, 64);
    const unwrapped = await ok("POST", "decrypt/wrapper", { ciphertext: plain.ciphertext });
    assert.equal(unwrapped.plaintext, plain.plaintext);

    const wrapped = await ok("POST", "datakey/wrapped/wrapper", {});
    assert.equal(wrapped.plaintext, undefined);
    const opened = await ok("POST", "decrypt/wrapper", { ciphertext: wrapped.ciphertext });
    assert.equal(Buffer.from(opened.plaintext, "base64").length, 32);
  });

  it("ecdsa-p256 signs and verifies", async (t) => {
    if (!ready(t)) return;
    const created = await ok("POST", "keys/signer", { type: "ecdsa-p256", hsm: true });
    assert.equal(created.hsm, true);
    assert.equal(created.supports_signing, true);
    const publicKeyPem = created.keys["1"].public_key;
    assert.match(publicKeyPem, /BEGIN PUBLIC KEY/);
    const publicKey = createPublicKey(publicKeyPem);
    assert.equal(publicKey.asymmetricKeyDetails?.namedCurve, "prime256v1");

    const message = Buffer.from("release 4.2 checksum");
    const input = message.toString("base64");
    const signed = await ok("POST", "sign/signer", { input });
    assert.match(signed.signature, /^keyward:v1:/);
    const der = Buffer.from(signed.signature.split(":")[2], "base64");
    assert.equal(verifySignature("sha256", message, publicKey, der), true);

    const checked = await ok("POST", "verify/signer", { input, signature: signed.signature });
    assert.equal(checked.valid, true);
    const forged = await ok("POST", "verify/signer", {
      input: base64("release 4.3 checksum"),
      signature: signed.signature,
    });
    assert.equal(forged.valid, false);

    const jws = await ok("POST", "sign/signer", { input, marshaling_algorithm: "jws" });
    const raw = Buffer.from(jws.signature.split(":")[2], "base64url");
    assert.equal(raw.length, 64);
    assert.equal(
      verifySignature("sha256", message, { key: publicKey, dsaEncoding: "ieee-p1363" }, raw),
      true,
    );
    const jwsChecked = await ok("POST", "verify/signer", {
      input,
      signature: jws.signature,
      marshaling_algorithm: "jws",
    });
    assert.equal(jwsChecked.valid, true);

    const sha384 = await ok("POST", "sign/signer", { input, hash_algorithm: "sha2-384" });
    const sha384Der = Buffer.from(sha384.signature.split(":")[2], "base64");
    assert.equal(verifySignature("sha384", message, publicKey, sha384Der), true);

    const digest = createHash("sha256").update(message).digest();
    const prehashed = await ok("POST", "sign/signer", {
      input: digest.toString("base64"),
      prehashed: true,
    });
    const prehashedDer = Buffer.from(prehashed.signature.split(":")[2], "base64");
    assert.equal(verifySignature("sha256", message, publicKey, prehashedDer), true);

    const shortDigest = await call("POST", "sign/signer", {
      input: base64("not a digest"),
      prehashed: true,
    });
    assert.equal(shortDigest.status, 400);
    assert.equal(shortDigest.body.code, "invalid_field");
  });

  it("token lists objects as never extractable", async (t) => {
    if (!ready(t)) return;
    await ok("POST", "keys/listed-aes", { hsm: true });
    await ok("POST", "keys/listed-ec", { type: "ecdsa-p256", hsm: true });
    const secret = objects(t, "keyward/transit/listed-aes/v1");
    const pair = objects(t, "keyward/transit/listed-ec/v1");
    if (secret === undefined || pair === undefined) return;

    assert.equal(secret.length, 1);
    const secretAccess = accessFlags(secret[0] ?? "");
    assert.ok(secretAccess.includes("sensitive"), secretAccess.join(", "));
    assert.ok(secretAccess.includes("never extractable"), secretAccess.join(", "));
    assert.ok(!secretAccess.includes("extractable"), secretAccess.join(", "));

    assert.equal(pair.length, 2, "the private key and its public key");
    const privateKey = pair.find((block) => block.startsWith("Private Key Object; EC"));
    assert.ok(privateKey, pair.join("\n"));
    const privateAccess = accessFlags(privateKey);
    assert.ok(privateAccess.includes("sensitive"), privateAccess.join(", "));
    assert.ok(privateAccess.includes("never extractable"), privateAccess.join(", "));
    assert.ok(!privateAccess.includes("extractable"), privateAccess.join(", "));
    assert.match(privateKey, /Usage:.*sign/);
  });

  it("rejects export and backup", async (t) => {
    if (!ready(t)) return;
    await ok("POST", "keys/sealed-aes", { hsm: true });
    await ok("POST", "keys/sealed-ec", { type: "ecdsa-p256", hsm: true });

    for (const [kind, name] of [
      ["encryption-key", "sealed-aes"],
      ["hmac-key", "sealed-aes"],
      ["signing-key", "sealed-ec"],
    ] as const) {
      const exported = await call("GET", `export/${kind}/${name}`);
      assert.equal(exported.status, 400, `${kind}: ${JSON.stringify(exported.body)}`);
      assert.equal(exported.body.code, "unsupported_operation");
      assert.equal(exported.body.field, "type");
      assert.match(exported.body.errors[0], /held in the HSM/);
    }

    const publicKey = await ok("GET", "export/public-key/sealed-ec");
    const read = await ok("GET", "keys/sealed-ec");
    assert.equal(publicKey.keys["1"], read.keys["1"].public_key);

    const backup = await call("GET", "backup/sealed-aes");
    assert.equal(backup.status, 400);
    assert.equal(backup.body.code, "unsupported_operation");
    assert.match(backup.body.errors[0], /plaintext backups/);

    for (const field of ["exportable", "allow_plaintext_backup"]) {
      const configured = await call("POST", "keys/sealed-aes/config", { [field]: true });
      assert.equal(configured.status, 400, JSON.stringify(configured.body));
      assert.equal(configured.body.code, "invalid_field");
      assert.equal(configured.body.field, field);
    }
    assert.equal((await ok("GET", "keys/sealed-aes")).exportable, false);

    const hmac = await call("POST", "hmac/sealed-aes", { input: base64("x") });
    assert.equal(hmac.status, 400);
    assert.equal(hmac.body.code, "unsupported_operation");

    const restore = await call("POST", "restore/sealed-aes", {
      backup: Buffer.from(
        JSON.stringify({ format: "keyward-key-backup", formatVersion: 1, key: { hsm: true } }),
      ).toString("base64"),
      force: true,
    });
    assert.equal(restore.status, 400);
    assert.equal(restore.body.field, "backup");
    assert.match(restore.body.errors[0], /key\.hsm/);
  });

  it("rejects bad create requests", async (t) => {
    if (!ready(t)) return;
    const cases: Array<[string, object, string]> = [
      ["ed25519", { type: "ed25519", hsm: true }, "hsm"],
      ["ecdsa-p384", { type: "ecdsa-p384", hsm: true }, "hsm"],
      ["chacha20", { type: "chacha20-poly1305", hsm: true }, "hsm"],
      ["exportable", { hsm: true, exportable: true }, "exportable"],
      ["backup", { hsm: true, allow_plaintext_backup: true }, "allow_plaintext_backup"],
      ["derived", { hsm: true, derived: true }, "derived"],
      ["convergent", { hsm: true, convergent_encryption: true }, "convergent_encryption"],
      ["string", { hsm: "yes" }, "hsm"],
    ];
    for (const [name, body, field] of cases) {
      const response = await call("POST", `keys/bad-${name}`, body);
      assert.equal(response.status, 400, `${name}: ${JSON.stringify(response.body)}`);
      assert.equal(response.body.field, field, `${name}: ${JSON.stringify(response.body)}`);
      const missing = await call("GET", `keys/bad-${name}`);
      assert.equal(missing.status, 404, `${name} must not be created`);
    }

    if (!requirePeer(t, "pkcs11-tool")) return;
    const listed = hsmApp.app.listObjects();
    assert.doesNotMatch(listed.output, /keyward\/transit\/bad-/);
  });

  it("existing key keeps its settings", async (t) => {
    if (!ready(t)) return;
    await ok("POST", "keys/plain", {});
    const again = await call("POST", "keys/plain", { hsm: true });
    assert.equal(again.status, 200);
    assert.equal(again.body.data.hsm, false);
    assert.match(again.body.warnings[0], /already exists/);
    const objectsNow = objects(t, "keyward/transit/plain/v1");
    if (objectsNow !== undefined) assert.equal(objectsNow.length, 0);
  });

  it("deletion destroys the objects", async (t) => {
    if (!ready(t)) return;
    await ok("POST", "keys/doomed", { type: "ecdsa-p256", hsm: true });
    await ok("POST", "keys/doomed/rotate");
    const before = objects(t, "keyward/transit/doomed/v2");
    if (before !== undefined) assert.equal(before.length, 2);

    await ok("POST", "keys/doomed/config", { deletion_allowed: true });
    const scheduled = await ok("DELETE", "keys/doomed?deletion_window=7");
    assert.ok(scheduled.deletion_date);
    const transit = hsmApp.app.keyward.transit("transit");
    assert.ok(transit);
    const summary = await transit.deleteDueKeys(new Date(Date.now() + 8 * DAY_MS));
    assert.deepEqual(summary.names, ["doomed"]);

    assert.equal((await call("GET", "keys/doomed")).status, 404);
    const v1 = objects(t, "keyward/transit/doomed/v1");
    const v2 = objects(t, "keyward/transit/doomed/v2");
    if (v1 === undefined || v2 === undefined) return;
    assert.equal(v1.length, 0, "version 1's objects are destroyed");
    assert.equal(v2.length, 0, "version 2's objects are destroyed");
  });

  it("trim destroys old versions' objects", async (t) => {
    if (!ready(t)) return;
    await ok("POST", "keys/trimmed", { hsm: true });
    await ok("POST", "keys/trimmed/rotate");
    await ok("POST", "keys/trimmed/rotate");
    const ciphertext = (await ok("POST", "encrypt/trimmed", { plaintext: base64("kept") }))
      .ciphertext;
    await ok("POST", "keys/trimmed/config", { min_decryption_version: 3 });
    const trimmed = await call("POST", "keys/trimmed/trim", { min_available_version: 3 });
    assert.equal(trimmed.status, 204, JSON.stringify(trimmed.body));

    const read = await ok("GET", "keys/trimmed");
    assert.deepEqual(Object.keys(read.keys), ["3"]);
    const decrypted = await ok("POST", "decrypt/trimmed", { ciphertext });
    assert.equal(decrypted.plaintext, base64("kept"));

    const v1 = objects(t, "keyward/transit/trimmed/v1");
    const v2 = objects(t, "keyward/transit/trimmed/v2");
    const v3 = objects(t, "keyward/transit/trimmed/v3");
    if (v1 === undefined || v2 === undefined || v3 === undefined) return;
    assert.equal(v1.length, 0);
    assert.equal(v2.length, 0);
    assert.equal(v3.length, 1);
  });

  it("destroyed state destroys the objects", async (t) => {
    if (!ready(t)) return;
    await ok("POST", "keys/retired", { hsm: true });
    const ciphertext = (await ok("POST", "encrypt/retired", { plaintext: base64("old") }))
      .ciphertext;
    await ok("POST", "keys/retired/state", { state: "deactivated" });
    const stillDecrypts = await ok("POST", "decrypt/retired", { ciphertext });
    assert.equal(stillDecrypts.plaintext, base64("old"));

    const destroyed = await ok("POST", "keys/retired/state", { state: "destroyed" });
    assert.equal(destroyed.state, "destroyed");
    assert.equal(destroyed.hsm, true);
    const refused = await call("POST", "decrypt/retired", { ciphertext });
    assert.equal(refused.status, 409);
    assert.equal(refused.body.code, "invalid_state");

    const left = objects(t, "keyward/transit/retired/v1");
    if (left !== undefined) assert.equal(left.length, 0);
  });

  it("restore cannot replace an HSM key", async (t) => {
    if (!ready(t)) return;
    await ok("POST", "keys/exported", { exportable: true, allow_plaintext_backup: true });
    const backup = (await ok("GET", "backup/exported")).backup;
    await ok("POST", "keys/protected", { hsm: true });
    const restored = await call("POST", "restore/protected", { backup, force: true });
    assert.equal(restored.status, 409, JSON.stringify(restored.body));
    assert.equal(restored.body.code, "invalid_state");
    assert.equal((await ok("GET", "keys/protected")).hsm, true);
  });
});

describe("transit HSM keys without an HSM", () => {
  let app: TestApp;

  before(async () => {
    app = await createTestApp();
  });

  after(async () => {
    await app.close();
  });

  it("hsm key without an HSM fails", async () => {
    const response = await app.request({
      method: "POST",
      url: "/v1/transit/keys/nowhere",
      payload: { hsm: true },
    });
    assert.equal(response.statusCode, 400, response.body);
    const body = response.json();
    assert.equal(body.code, "hsm_not_configured");
    assert.equal(body.field, "hsm");
    assert.match(body.errors[0], /--hsm-pkcs11-library/);
    const read = await app.request({ method: "GET", url: "/v1/transit/keys/nowhere" });
    assert.equal(read.statusCode, 404);
  });

  it("unsupported type fails before the HSM check", async () => {
    const response = await app.request({
      method: "POST",
      url: "/v1/transit/keys/nowhere",
      payload: { type: "ed25519", hsm: true },
    });
    assert.equal(response.statusCode, 400, response.body);
    assert.equal(response.json().code, "invalid_field");
    assert.equal(response.json().field, "hsm");
  });

  it("hsm false creates a software key", async () => {
    const response = await app.request({
      method: "POST",
      url: "/v1/transit/keys/software",
      payload: { hsm: false },
    });
    assert.equal(response.statusCode, 200, response.body);
    assert.equal(response.json().data.hsm, false);
  });
});
