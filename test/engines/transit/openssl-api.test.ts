import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { createTestApp, type TestApp } from "../../helpers/app.ts";
import { requirePeer } from "../../helpers/peers.ts";

function openssl(args: string[]) {
  const result = spawnSync("openssl", args, { encoding: "utf8" });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

/** Strips the `keyward:vN:` prefix and decodes the rest. */
function payload(value: string): Buffer {
  const match = /^keyward:v\d+:(.+)$/.exec(value);
  assert.ok(match?.[1], `not a versioned value: ${value}`);
  return Buffer.from(match[1], "base64");
}

// Signatures made through the HTTP API, checked by openssl with the public key the API exports.
describe("transit API with openssl", () => {
  let t: TestApp;
  let dir = "";
  const data = randomBytes(1000);

  before(async () => {
    t = await createTestApp();
    dir = mkdtempSync(join(tmpdir(), "keyward-openssl-api-"));
    writeFileSync(join(dir, "data"), data);
  });
  after(async () => {
    await t.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function post(url: string, payload: unknown = {}) {
    const response = await t.request({ method: "POST", url, payload: payload as object });
    assert.ok(response.statusCode < 300, `${url}: ${response.statusCode} ${response.body}`);
    return response.statusCode === 204 ? undefined : response.json();
  }

  async function exportPublicKey(name: string): Promise<string> {
    const response = await t.request({
      method: "GET",
      url: `/v1/transit/export/public-key/${name}/1`,
    });
    assert.equal(response.statusCode, 200, response.body);
    const pem = response.json().data.keys["1"] as string;
    assert.match(pem, /^-----BEGIN PUBLIC KEY-----/);
    const path = join(dir, `${name}.pem`);
    writeFileSync(path, pem);
    return path;
  }

  const cases = [
    {
      name: "ecdsa-p256",
      type: "ecdsa-p256",
      hash: "sha2-256",
      digest: "-sha256",
      extra: {},
      sigopts: [] as string[],
    },
    {
      name: "ecdsa-p384",
      type: "ecdsa-p384",
      hash: "sha2-384",
      digest: "-sha384",
      extra: {},
      sigopts: [],
    },
    {
      name: "ecdsa-p521",
      type: "ecdsa-p521",
      hash: "sha2-512",
      digest: "-sha512",
      extra: {},
      sigopts: [],
    },
    {
      name: "rsa-pss",
      type: "rsa-2048",
      hash: "sha2-256",
      digest: "-sha256",
      extra: { signature_algorithm: "pss" },
      sigopts: ["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:-2"],
    },
    {
      name: "rsa-pkcs1",
      type: "rsa-3072",
      hash: "sha2-256",
      digest: "-sha256",
      extra: { signature_algorithm: "pkcs1v15" },
      sigopts: [],
    },
  ];

  for (const testCase of cases) {
    it(`openssl verifies ${testCase.name} signatures`, async (context) => {
      if (!requirePeer(context, "openssl")) return;
      await post(`/v1/transit/keys/${testCase.name}`, { type: testCase.type });
      const signed = await post(`/v1/transit/sign/${testCase.name}/${testCase.hash}`, {
        input: data.toString("base64"),
        ...testCase.extra,
      });
      const signaturePath = join(dir, `${testCase.name}.sig`);
      writeFileSync(signaturePath, payload(signed.data.signature));
      const publicKey = await exportPublicKey(testCase.name);
      const verified = openssl([
        "dgst",
        testCase.digest,
        "-verify",
        publicKey,
        ...testCase.sigopts,
        "-signature",
        signaturePath,
        join(dir, "data"),
      ]);
      assert.equal(verified.status, 0, verified.output);
      assert.match(verified.output, /Verified OK/);

      // A signature over other data must fail.
      writeFileSync(join(dir, "other"), Buffer.concat([data, Buffer.from("x")]));
      const rejected = openssl([
        "dgst",
        testCase.digest,
        "-verify",
        publicKey,
        ...testCase.sigopts,
        "-signature",
        signaturePath,
        join(dir, "other"),
      ]);
      assert.notEqual(rejected.status, 0);
    });
  }

  it("openssl verifies Ed25519 signatures", async (context) => {
    if (!requirePeer(context, "openssl")) return;
    await post("/v1/transit/keys/ed", { type: "ed25519" });
    const signed = await post("/v1/transit/sign/ed", { input: data.toString("base64") });
    const signaturePath = join(dir, "ed.sig");
    writeFileSync(signaturePath, payload(signed.data.signature));
    const publicKey = await exportPublicKey("ed");
    const verified = openssl([
      "pkeyutl",
      "-verify",
      "-pubin",
      "-inkey",
      publicKey,
      "-rawin",
      "-in",
      join(dir, "data"),
      "-sigfile",
      signaturePath,
    ]);
    assert.equal(verified.status, 0, verified.output);
    assert.match(verified.output, /Signature Verified Successfully/);
  });

  it("encrypts a file with a data key", async (context) => {
    if (!requirePeer(context, "openssl")) return;
    await post("/v1/transit/keys/files", { type: "aes256-gcm96" });
    const dataKey = await post("/v1/transit/datakey/plaintext/files", { bits: 256 });
    const key = Buffer.from(dataKey.data.plaintext, "base64");
    assert.equal(key.length, 32);
    const iv = randomBytes(16).toString("hex");

    const encrypted = openssl([
      "enc",
      "-aes-256-cbc",
      "-K",
      key.toString("hex"),
      "-iv",
      iv,
      "-in",
      join(dir, "data"),
      "-out",
      join(dir, "data.enc"),
    ]);
    assert.equal(encrypted.status, 0, encrypted.output);
    assert.notDeepEqual(readFileSync(join(dir, "data.enc")), data);

    // Later, only the wrapped key is kept: Keyward unwraps it.
    const unwrapped = await post("/v1/transit/decrypt/files", {
      ciphertext: dataKey.data.ciphertext,
    });
    assert.equal(unwrapped.data.plaintext, dataKey.data.plaintext);
    const recovered = Buffer.from(unwrapped.data.plaintext, "base64").toString("hex");
    const decrypted = openssl([
      "enc",
      "-d",
      "-aes-256-cbc",
      "-K",
      recovered,
      "-iv",
      iv,
      "-in",
      join(dir, "data.enc"),
      "-out",
      join(dir, "data.out"),
    ]);
    assert.equal(decrypted.status, 0, decrypted.output);
    assert.deepEqual(readFileSync(join(dir, "data.out")), data);
  });

  it("wrapped data keys carry no plaintext", async () => {
    const wrapped = await post("/v1/transit/datakey/wrapped/files", { bits: 256 });
    assert.equal(wrapped.data.plaintext, undefined);
    assert.match(wrapped.data.ciphertext, /^keyward:v1:/);
  });
});
