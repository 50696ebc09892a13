import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  decodeRootToken,
  encodeRootToken,
  generateOtp,
  RootTokenGenerator,
} from "../../src/auth/root-generation.ts";
import { TOKEN_LENGTH, TokenStore } from "../../src/auth/token-store.ts";
import type { InitResult, SealManager } from "../../src/seal/types.ts";
import { initAndUnseal, SealFixture } from "../seal/fixtures.ts";
import { keywardError } from "./fixtures.ts";

describe("root token encoding", () => {
  it("matches Vault's XOR encoding", () => {
    // 'a' ^ 'A' = 'b' ^ 'B' = 0x20; base64 of 0x20 0x20 is "ICA=", sent unpadded.
    assert.equal(encodeRootToken("ab", "AB"), "ICA");
    assert.equal(decodeRootToken("ICA", "AB"), "ab");
  });

  it("round-trips a generated token", () => {
    const otp = generateOtp(TOKEN_LENGTH);
    assert.match(otp, /^[0-9A-Za-z]{46}$/);
    const token = "kw.abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ";
    assert.equal(decodeRootToken(encodeRootToken(token, otp), otp), token);
  });

  it("fail mismatched lengths", () => {
    assert.throws(() => decodeRootToken("ICA", "ABC"), keywardError("invalid_field"));
  });
});

describe("root token generation", () => {
  let fixture: SealFixture;
  let other: SealFixture;
  let seal: SealManager;
  let shares: InitResult;
  let foreignShares: InitResult;
  let tokens: TokenStore;
  let generator: RootTokenGenerator;

  before(async () => {
    fixture = await SealFixture.create();
    other = await SealFixture.create();
    ({ seal } = await fixture.openManager());
    shares = await initAndUnseal(seal, 3, 2);
    const foreign = await other.openManager();
    foreignShares = await foreign.seal.init({ shares: 3, threshold: 2 });
    tokens = new TokenStore(seal.barrier);
    seal.onChange((sealed) => {
      if (sealed) tokens.clearCache();
    });
    generator = new RootTokenGenerator(seal, tokens);
  });

  after(async () => {
    await fixture.remove();
    await other.remove();
  });

  it("reports an idle status", async () => {
    const status = await generator.status();
    assert.equal(status.started, false);
    assert.equal(status.nonce, "");
    assert.equal(status.required, 2);
    assert.equal(status.otpLength, TOKEN_LENGTH);
    assert.equal(status.otp, undefined);
  });

  it("generates a root token from shares", async () => {
    const started = await generator.start();
    assert.equal(started.started, true);
    assert.match(started.otp ?? "", /^[0-9A-Za-z]{46}$/);
    assert.equal((await generator.status()).otp, undefined);
    await assert.rejects(generator.start(), keywardError("invalid_state"));

    await assert.rejects(
      generator.update(shares.keysHex[0] as string, "wrong-nonce"),
      keywardError("invalid_field", "nonce"),
    );
    await assert.rejects(
      generator.update("zz", started.nonce),
      keywardError("invalid_field", "key"),
    );
    const first = await generator.update(shares.keysHex[0] as string, started.nonce);
    assert.equal(first.progress, 1);
    assert.equal(first.complete, false);
    await assert.rejects(
      generator.update(shares.keysBase64[0] as string, started.nonce),
      keywardError("invalid_field", "key"),
    );

    const done = await generator.update(shares.keysBase64[2] as string, started.nonce);
    assert.equal(done.complete, true);
    assert.equal(done.progress, 2);
    const token = decodeRootToken(done.encodedToken, started.otp as string);
    assert.match(token, /^kw\./);
    const identity = await tokens.authenticate(token);
    assert.deepEqual(identity.policies, ["root"]);
    assert.equal(identity.record?.expiresAt, null);
    assert.equal((await generator.status()).started, false);
  });

  it("rejects shares of another key", async () => {
    const { nonce, otp } = await generator.start();
    await generator.update(foreignShares.keysHex[0] as string, nonce);
    await assert.rejects(
      generator.update(foreignShares.keysHex[1] as string, nonce),
      keywardError("invalid_shares"),
    );
    const status = await generator.status();
    assert.equal(status.started, true);
    assert.equal(status.progress, 0);

    await generator.update(shares.keysHex[1] as string, nonce);
    const done = await generator.update(shares.keysHex[2] as string, nonce);
    assert.equal(done.complete, true);
    await tokens.authenticate(decodeRootToken(done.encodedToken, otp as string));
  });

  it("cancels an attempt", async () => {
    const { nonce } = await generator.start();
    await generator.update(shares.keysHex[0] as string, nonce);
    await generator.cancel();
    assert.equal((await generator.status()).started, false);
    await assert.rejects(
      generator.update(shares.keysHex[1] as string, nonce),
      keywardError("invalid_state"),
    );
  });

  it("verifies shares against the root key", async () => {
    assert.equal(await seal.verifyShares([shares.keysHex[0] as string]), false);
    assert.equal(await seal.verifyShares(shares.keysHex.slice(0, 2)), true);
    assert.equal(await seal.verifyShares(foreignShares.keysHex.slice(0, 2)), false);
    await assert.rejects(
      seal.verifyShares([shares.keysHex[0] as string, shares.keysBase64[0] as string]),
      keywardError("invalid_field", "key"),
    );
  });

  it("ends the attempt at seal", async () => {
    const { nonce } = await generator.start();
    await generator.update(shares.keysHex[0] as string, nonce);
    await seal.seal();
    assert.equal((await generator.status()).started, false);
    await assert.rejects(generator.start(), keywardError("sealed"));
    await assert.rejects(seal.verifyShares(shares.keysHex.slice(0, 2)), keywardError("sealed"));
  });
});
