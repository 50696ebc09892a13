import assert from "node:assert/strict";
import {
  constants,
  createHash,
  createPublicKey,
  publicEncrypt,
  verify as verifySignature,
  X509Certificate,
} from "node:crypto";
import { after, describe, it, type TestContext } from "node:test";
import { run, tempFiles } from "../engines/pki/fixtures.ts";
import {
  accessFlags,
  type HsmTestApp,
  objectsLabelled,
  useHsmTestApp,
} from "../engines/transit/hsm-fixture.ts";
import { requirePeer } from "../helpers/peers.ts";
import { issueLeafFromTransitRoot, selfSignTransitCa } from "../helpers/transit-ca.ts";

function base64(text: string): string {
  return Buffer.from(text).toString("base64");
}

/** Returns the bytes after `keyward:v<N>:`. */
function payloadOf(value: string, encoding: BufferEncoding = "base64"): Buffer {
  return Buffer.from(value.split(":")[2] ?? "", encoding);
}

describe("transit RSA keys held in an HSM", () => {
  const hsmApp = useHsmTestApp();
  const files = tempFiles();

  after(() => files.cleanup());

  function ready(t: TestContext): HsmTestApp | undefined {
    return hsmApp.ready(t);
  }

  function call(method: "GET" | "POST" | "DELETE", url: string, payload?: object) {
    return hsmApp.app.call(method, url, payload);
  }

  async function ok(method: "GET" | "POST" | "DELETE", url: string, payload?: object) {
    const response = await call(method, url, payload);
    assert.ok(response.status < 300, `${method} ${url}: ${JSON.stringify(response.body)}`);
    return response.body?.data;
  }

  async function expectError(url: string, payload: object, code: string, field: string) {
    const response = await call("POST", url, payload);
    assert.equal(response.status, 400, `${url}: ${JSON.stringify(response.body)}`);
    assert.equal(response.body.code, code, JSON.stringify(response.body));
    assert.equal(response.body.field, field, JSON.stringify(response.body));
    return response.body;
  }

  it("rsa-2048 key reports SHA-1 OAEP", async (t) => {
    if (!ready(t)) return;
    const created = await ok("POST", "transit/keys/rsa-info", { type: "rsa-2048", hsm: true });
    assert.equal(created.hsm, true);
    assert.equal(created.type, "rsa-2048");
    assert.equal(created.rsa_oaep_hash, "sha1");
    assert.equal(created.supports_signing, true);
    assert.equal(created.supports_encryption, true);
    const publicKey = createPublicKey(created.keys["1"].public_key);
    assert.equal(publicKey.asymmetricKeyDetails?.modulusLength, 2048);

    const software = await ok("POST", "transit/keys/rsa-software", { type: "rsa-2048" });
    assert.equal(software.hsm, false);
    assert.equal(software.rsa_oaep_hash, "sha2-256");
  });

  it("signs with PKCS#1 v1.5 and PSS", async (t) => {
    if (!ready(t)) return;
    const created = await ok("POST", "transit/keys/rsa-signer", { type: "rsa-3072", hsm: true });
    const publicKey = createPublicKey(created.keys["1"].public_key);
    const message = Buffer.from("firmware 7.1 image digest");
    const input = message.toString("base64");

    const pkcs1 = await ok("POST", "transit/sign/rsa-signer", {
      input,
      signature_algorithm: "pkcs1v15",
    });
    assert.match(pkcs1.signature, /^keyward:v1:/);
    const pkcs1Bytes = payloadOf(pkcs1.signature);
    assert.equal(pkcs1Bytes.length, 384);
    assert.equal(
      verifySignature(
        "sha256",
        message,
        { key: publicKey, padding: constants.RSA_PKCS1_PADDING },
        pkcs1Bytes,
      ),
      true,
    );
    const pkcs1Checked = await ok("POST", "transit/verify/rsa-signer", {
      input,
      signature: pkcs1.signature,
      signature_algorithm: "pkcs1v15",
    });
    assert.equal(pkcs1Checked.valid, true);

    const pss = await ok("POST", "transit/sign/rsa-signer", { input });
    const pssBytes = payloadOf(pss.signature);
    assert.equal(
      verifySignature(
        "sha256",
        message,
        {
          key: publicKey,
          padding: constants.RSA_PKCS1_PSS_PADDING,
          saltLength: constants.RSA_PSS_SALTLEN_MAX_SIGN,
        },
        pssBytes,
      ),
      true,
      "the default salt is the maximum length",
    );
    const pssChecked = await ok("POST", "transit/verify/rsa-signer", {
      input,
      signature: pss.signature,
    });
    assert.equal(pssChecked.valid, true);
    const forged = await ok("POST", "transit/verify/rsa-signer", {
      input: base64("firmware 7.2 image digest"),
      signature: pss.signature,
    });
    assert.equal(forged.valid, false);

    const hashSalt = await ok("POST", "transit/sign/rsa-signer/sha2-512", {
      input,
      salt_length: "hash",
    });
    assert.equal(
      verifySignature(
        "sha512",
        message,
        { key: publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 64 },
        payloadOf(hashSalt.signature),
      ),
      true,
    );
    const fixedSalt = await ok("POST", "transit/sign/rsa-signer", { input, salt_length: 20 });
    assert.equal(
      verifySignature(
        "sha256",
        message,
        { key: publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 20 },
        payloadOf(fixedSalt.signature),
      ),
      true,
    );

    const sha3 = await ok("POST", "transit/sign/rsa-signer/sha3-256", {
      input,
      signature_algorithm: "pkcs1v15",
    });
    const sha3Checked = await ok("POST", "transit/verify/rsa-signer/sha3-256", {
      input,
      signature: sha3.signature,
      signature_algorithm: "pkcs1v15",
    });
    assert.equal(sha3Checked.valid, true);

    const digest = createHash("sha384").update(message).digest();
    const prehashed = await ok("POST", "transit/sign/rsa-signer/sha2-384", {
      input: digest.toString("base64"),
      prehashed: true,
      signature_algorithm: "pkcs1v15",
    });
    assert.equal(
      verifySignature(
        "sha384",
        message,
        { key: publicKey, padding: constants.RSA_PKCS1_PADDING },
        payloadOf(prehashed.signature),
      ),
      true,
    );
  });

  it("rejects bad signing requests", async (t) => {
    if (!ready(t)) return;
    await ok("POST", "transit/keys/rsa-strict", { type: "rsa-2048", hsm: true });
    const input = base64("payload");
    const pssSha3 = await expectError(
      "transit/sign/rsa-strict/sha3-256",
      { input },
      "invalid_field",
      "hash_algorithm",
    );
    assert.match(pssSha3.errors[0], /SHA-1 or SHA-2/);
    await expectError(
      "transit/sign/rsa-strict",
      { input, salt_length: 1000 },
      "invalid_field",
      "salt_length",
    );
    await expectError(
      "transit/sign/rsa-strict",
      { input, marshaling_algorithm: "jws" },
      "invalid_field",
      "marshaling_algorithm",
    );
    await expectError(
      "transit/sign/rsa-strict",
      { input: base64("short"), prehashed: true, signature_algorithm: "pkcs1v15" },
      "invalid_field",
      "input",
    );
    const prehashedPss = await call("POST", "transit/sign/rsa-strict", {
      input: createHash("sha256").update("x").digest("base64"),
      prehashed: true,
    });
    assert.equal(prehashedPss.status, 400, JSON.stringify(prehashedPss.body));
    assert.equal(prehashedPss.body.code, "unsupported_operation");
  });

  it("encrypts with OAEP and decrypts in the HSM", async (t) => {
    if (!ready(t)) return;
    const created = await ok("POST", "transit/keys/rsa-box", { type: "rsa-2048", hsm: true });
    const publicKey = createPublicKey(created.keys["1"].public_key);
    const plaintext = base64("wrapped data key 0123456789abcdef");

    const encrypted = await ok("POST", "transit/encrypt/rsa-box", { plaintext });
    assert.match(encrypted.ciphertext, /^keyward:v1:/);
    assert.equal(payloadOf(encrypted.ciphertext).length, 256);
    const decrypted = await ok("POST", "transit/decrypt/rsa-box", {
      ciphertext: encrypted.ciphertext,
    });
    assert.equal(decrypted.plaintext, plaintext);

    // A client that encrypts with the exported public key uses OAEP with SHA-1.
    const local = publicEncrypt(
      { key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha1" },
      Buffer.from("encrypted by the client"),
    );
    const fromClient = await ok("POST", "transit/decrypt/rsa-box", {
      ciphertext: `keyward:v1:${local.toString("base64")}`,
    });
    assert.equal(Buffer.from(fromClient.plaintext, "base64").toString(), "encrypted by the client");

    const sha256 = publicEncrypt(
      { key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" },
      Buffer.from("wrong hash"),
    );
    const wrongHash = await call("POST", "transit/decrypt/rsa-box", {
      ciphertext: `keyward:v1:${sha256.toString("base64")}`,
    });
    assert.equal(wrongHash.status, 400, JSON.stringify(wrongHash.body));
    assert.equal(wrongHash.body.code, "decryption_failed");

    const rewrapped = await ok("POST", "transit/rewrap/rsa-box", {
      ciphertext: encrypted.ciphertext,
    });
    const again = await ok("POST", "transit/decrypt/rsa-box", {
      ciphertext: rewrapped.ciphertext,
    });
    assert.equal(again.plaintext, plaintext);

    const dataKey = await ok("POST", "transit/datakey/plaintext/rsa-box", { bits: 256 });
    const unwrapped = await ok("POST", "transit/decrypt/rsa-box", {
      ciphertext: dataKey.ciphertext,
    });
    assert.equal(unwrapped.plaintext, dataKey.plaintext);

    // OAEP with SHA-1 fits 256 - 2 * 20 - 2 = 214 bytes in a 2048-bit key.
    const longest = await ok("POST", "transit/encrypt/rsa-box", {
      plaintext: Buffer.alloc(214, 1).toString("base64"),
    });
    assert.match(longest.ciphertext, /^keyward:v1:/);
    const tooLong = await expectError(
      "transit/encrypt/rsa-box",
      { plaintext: Buffer.alloc(215, 1).toString("base64") },
      "invalid_field",
      "plaintext",
    );
    assert.match(tooLong.errors[0], /214 bytes/);
    await expectError(
      "transit/encrypt/rsa-box",
      { plaintext, associated_data: base64("aad") },
      "invalid_field",
      "associated_data",
    );
  });

  it("rotation keeps old versions decrypting", async (t) => {
    if (!ready(t)) return;
    await ok("POST", "transit/keys/rsa-rotated", { type: "rsa-2048", hsm: true });
    const plaintext = base64("before rotation");
    const first = await ok("POST", "transit/encrypt/rsa-rotated", { plaintext });
    await ok("POST", "transit/keys/rsa-rotated/rotate");
    const second = await ok("POST", "transit/encrypt/rsa-rotated", { plaintext });
    assert.match(second.ciphertext, /^keyward:v2:/);
    for (const ciphertext of [first.ciphertext, second.ciphertext]) {
      const decrypted = await ok("POST", "transit/decrypt/rsa-rotated", { ciphertext });
      assert.equal(decrypted.plaintext, plaintext);
    }
  });

  it("token lists the private key as non-extractable", async (t) => {
    if (!ready(t) || !requirePeer(t, "pkcs11-tool")) return;
    await ok("POST", "transit/keys/rsa-listed", { type: "rsa-2048", hsm: true });
    const listed = hsmApp.app.listObjects();
    assert.equal(listed.status, 0, listed.output);
    const pair = objectsLabelled(listed.output, "keyward/transit/rsa-listed/v1");
    assert.equal(pair.length, 2, "the private key and its public key");
    const privateKey = pair.find((block) => block.startsWith("Private Key Object; RSA"));
    assert.ok(privateKey, pair.join("\n"));
    const access = accessFlags(privateKey);
    assert.ok(access.includes("sensitive"), access.join(", "));
    assert.ok(access.includes("never extractable"), access.join(", "));
    assert.ok(!access.includes("extractable"), access.join(", "));
    assert.match(privateKey, /Usage:.*decrypt/);
    assert.match(privateKey, /Usage:.*sign/);
  });

  it("rejects export of the private key", async (t) => {
    if (!ready(t)) return;
    await ok("POST", "transit/keys/rsa-sealed", { type: "rsa-4096", hsm: true });
    for (const kind of ["encryption-key", "signing-key", "hmac-key"]) {
      const exported = await call("GET", `transit/export/${kind}/rsa-sealed`);
      assert.equal(exported.status, 400, `${kind}: ${JSON.stringify(exported.body)}`);
      assert.equal(exported.body.code, "unsupported_operation");
    }
    const publicKey = await ok("GET", "transit/export/public-key/rsa-sealed");
    assert.match(publicKey.keys["1"], /BEGIN PUBLIC KEY/);
    await expectError(
      "transit/keys/rsa-exportable",
      { type: "rsa-2048", hsm: true, exportable: true },
      "invalid_field",
      "exportable",
    );
  });

  it("root CA key signs a leaf openssl verifies", async (t) => {
    if (!ready(t) || !requirePeer(t, "openssl")) return;
    const key = await ok("POST", "transit/keys/rsa-root", { type: "rsa-2048", hsm: true });
    const transit = hsmApp.app.keyward.transit("transit");
    assert.ok(transit);
    const rootPem = await selfSignTransitCa(transit, {
      name: "rsa-root",
      publicKeyPem: key.keys["1"].public_key,
      keySpec: { type: "rsa", bits: 2048 },
      commonName: "Keyward RSA HSM Root",
      serialHex: "02a2b3c4d5e6f708",
    });
    const { issued } = await issueLeafFromTransitRoot(hsmApp.app, rootPem, "rsa-root");
    const leaf = new X509Certificate(issued.certificate);
    assert.equal(leaf.verify(new X509Certificate(rootPem).publicKey), true);

    const rootFile = files.write("rsa-hsm-root.pem", rootPem);
    const leafFile = files.write("rsa-hsm-leaf.pem", issued.certificate);
    const verified = run("openssl", ["verify", "-CAfile", rootFile, leafFile]);
    assert.equal(verified.status, 0, verified.output);
    assert.match(verified.output, /rsa-hsm-leaf\.pem: OK/);
  });
});
