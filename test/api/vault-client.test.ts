import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { FastifyInstance } from "fastify";
import nodeVault from "node-vault";
import pino from "pino";
import { buildApp } from "../../src/api/app.ts";
import { Keyward } from "../../src/core/keyward.ts";
import { openSqliteStorage } from "../../src/storage/index.ts";

// node-vault is a Vault client that no one on this project wrote. It talks to
// Keyward over real HTTP on loopback exactly as it would talk to Vault.
describe("node-vault client", () => {
  let app: FastifyInstance;
  let keyward: Keyward;
  let endpoint = "";
  let dataDir = "";
  let vault: nodeVault.client;

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), "keyward-vault-client-"));
    const logger = pino({ level: "silent" });
    keyward = await Keyward.open({
      storage: await openSqliteStorage({ path: join(dataDir, "k.db") }),
      logger,
    });
    app = await buildApp({ keyward, logger, maxRequestBytes: 1024 * 1024 });
    await app.listen({ host: "127.0.0.1", port: 0 });
    const address = app.server.address();
    assert.ok(address);
    assert.equal(typeof address, "object");
    assert.ok(typeof address === "object");
    endpoint = `http://127.0.0.1:${address.port}`;
    // Node's HTTP parser rejects Vault's LIST method, so lists go as GET ?list=1.
    vault = nodeVault({ apiVersion: "v1", endpoint, noCustomHTTPVerbs: true });
  });

  after(async () => {
    await app.close();
    await keyward.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("initialises and unseals", async () => {
    assert.deepEqual(await vault.initialized(), { initialized: false });
    const init = await vault.init({ secret_shares: 3, secret_threshold: 2 });
    assert.equal(init.keys.length, 3);
    vault.token = init.root_token;

    assert.equal((await vault.status()).sealed, true);
    await vault.unseal({ secret_shares: 1, key: init.keys[0] });
    const status = await vault.unseal({ secret_shares: 1, key: init.keys[2] });
    assert.equal(status.sealed, false);
    const health = await vault.health();
    assert.equal(health.initialized, true);
    assert.equal(health.sealed, false);
  });

  it("drives the transit engine", async () => {
    await vault.transitCreateKey({ name: "orders", type: "aes256-gcm96" });
    const keys = await vault.list("transit/keys");
    assert.ok(keys.data.keys.includes("orders"));

    const plaintext = Buffer.from("order 42").toString("base64");
    const encrypted = await vault.encryptData({ name: "orders", plaintext });
    assert.match(encrypted.data.ciphertext, /^keyward:v1:/);

    await vault.write("transit/keys/orders/rotate", {});
    const read = await vault.transitReadKey({ name: "orders" });
    assert.equal(read.data.latest_version, 2);
    assert.equal(read.data.type, "aes256-gcm96");

    const decrypted = await vault.decryptData({
      name: "orders",
      ciphertext: encrypted.data.ciphertext,
    });
    assert.equal(decrypted.data.plaintext, plaintext);

    const rewrapped = await vault.rewrapData({
      name: "orders",
      ciphertext: encrypted.data.ciphertext,
    });
    assert.match(rewrapped.data.ciphertext, /^keyward:v2:/);
    const again = await vault.decryptData({
      name: "orders",
      ciphertext: rewrapped.data.ciphertext,
    });
    assert.equal(again.data.plaintext, plaintext);
  });

  it("signs, verifies and computes HMACs", async () => {
    await vault.write("transit/keys/signer", { type: "ecdsa-p256" });
    const input = Buffer.from("firmware image").toString("base64");
    const signed = await vault.write("transit/sign/signer/sha2-256", { input });
    const verified = await vault.write("transit/verify/signer/sha2-256", {
      input,
      signature: signed.data.signature,
    });
    assert.equal(verified.data.valid, true);

    const mac = await vault.write("transit/hmac/signer", { input });
    const checked = await vault.write("transit/verify/signer", { input, hmac: mac.data.hmac });
    assert.equal(checked.data.valid, true);
  });

  it("manages mounts", async () => {
    await vault.mount({ mount_point: "billing", type: "transit", description: "billing keys" });
    const mounts = await vault.mounts();
    assert.equal(mounts.data["billing/"].type, "transit");
    await vault.write("billing/keys/invoices", { type: "chacha20-poly1305" });
    const encrypted = await vault.write("billing/encrypt/invoices", { plaintext: "aGVsbG8=" });
    assert.match(encrypted.data.ciphertext, /^keyward:v1:/);
    await vault.unmount({ mount_point: "billing" });
  });

  it("surfaces errors as Vault errors", async () => {
    await assert.rejects(
      vault.decryptData({ name: "orders", ciphertext: "keyward:v1:AAAA" }),
      (
        error: Error & {
          response?: { statusCode: number };
        },
      ) => {
        assert.equal(error.response?.statusCode, 400);
        return true;
      },
    );
  });

  it("seals", async () => {
    await vault.seal();
    assert.equal((await vault.status()).sealed, true);
  });
});
