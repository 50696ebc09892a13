import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { describe, it } from "node:test";
import {
  decodeKey,
  generateKeyPair,
  publicKeyOf,
  validatePublicKey,
} from "../../../src/engines/wireguard/keys.ts";
import { isKeywardError } from "../../../src/errors.ts";
import { assertFinishesUnderFrequentGc } from "../../helpers/gc-stress.ts";
import { requirePeer } from "../../helpers/peers.ts";

/** RFC 7748 section 6.1: Alice's private key and the public key it derives, as raw hex. */
const RFC7748_PRIVATE = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a";
const RFC7748_PUBLIC = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a";

const hexToKey = (hex: string) => Buffer.from(hex, "hex").toString("base64");

/**
 * Key pairs the worker generates under frequent garbage collection. With
 * the earlier JWK export, the worker deadlocked in 3 of 3 runs on Node.js
 * 20.20.2. The limit only detects a hang, because a passing run took about
 * 7 s on a shared two-core machine.
 */
const GC_PAIRS = 20_000;
const GC_HANG_LIMIT_MS = 120_000;

const valid = generateKeyPair().publicKey;

interface Case {
  name: string;
  text: unknown;
}

const REJECTED: Case[] = [
  { name: "fail 43 characters", text: valid.slice(0, 43) },
  { name: "fail 45 characters", text: `${valid}=` },
  { name: "fail missing padding", text: `${valid.slice(0, 43)}A` },
  { name: "fail base64url alphabet", text: `${valid.slice(0, 40)}-_AA=` },
  { name: "fail non-zero padding bits", text: `${valid.slice(0, 42)}B=` },
  { name: "fail character outside alphabet", text: `${valid.slice(0, 10)}*${valid.slice(11)}` },
  { name: "fail whitespace inside", text: `${valid.slice(0, 10)} ${valid.slice(11)}` },
  { name: "fail 33 bytes", text: Buffer.alloc(33, 1).toString("base64") },
  { name: "fail 31 bytes", text: Buffer.alloc(31, 1).toString("base64") },
  { name: "fail not a string", text: 42 },
  { name: "fail empty", text: "" },
];

/** How long one `wg` command may run before the test fails instead of hanging the file. */
const WG_TIMEOUT_MS = 10_000;

describe("wireguard key text", () => {
  it("ok canonical key", () => {
    assert.equal(decodeKey(valid, "public_key").length, 32);
  });

  for (const { name, text } of REJECTED) {
    it(name, () => {
      assert.throws(
        () => decodeKey(text, "public_key"),
        (error: unknown) => {
          assert.ok(isKeywardError(error));
          assert.equal(error.code, "invalid_field");
          assert.equal(error.field, "public_key");
          assert.ok(typeof text !== "string" || text.length < 8 || !error.message.includes(text));
          return true;
        },
      );
    });
  }

  it("rejects the all-zero point", () => {
    assert.throws(() => validatePublicKey(Buffer.alloc(32).toString("base64")), {
      code: "invalid_field",
      field: "public_key",
    });
  });

  it("rejects a low-order point", () => {
    // u = 1 is a point of order 4 on Curve25519.
    const orderFour = Buffer.alloc(32);
    orderFour[0] = 1;
    assert.throws(() => validatePublicKey(orderFour.toString("base64")), { code: "invalid_field" });
  });

  it("derives the RFC 7748 public key", () => {
    assert.equal(publicKeyOf(hexToKey(RFC7748_PRIVATE)), hexToKey(RFC7748_PUBLIC));
  });

  it("generates pairs that match", () => {
    const pair = generateKeyPair();
    assert.equal(publicKeyOf(pair.privateKey), pair.publicKey);
    assert.equal(validatePublicKey(pair.publicKey), pair.publicKey);
    assert.notEqual(generateKeyPair().privateKey, pair.privateKey);
  });

  it("generates clamped private keys", () => {
    // RFC 7748 section 5 clamping, which `wg genkey` also applies to the key it prints.
    for (let round = 0; round < 20; round += 1) {
      const raw = decodeKey(generateKeyPair().privateKey, "private_key");
      assert.equal((raw[0] as number) & 0b0000_0111, 0, "low 3 bits of the first byte");
      assert.equal((raw[31] as number) & 0b1000_0000, 0, "top bit of the last byte");
      assert.equal((raw[31] as number) & 0b0100_0000, 0b0100_0000, "bit 6 of the last byte");
    }
  });

  it("generates under frequent garbage collection", () => {
    assertFinishesUnderFrequentGc(
      new URL("./generate-keys-worker.ts", import.meta.url),
      GC_PAIRS,
      GC_HANG_LIMIT_MS,
    );
  });

  it("agrees with wg pubkey", (t) => {
    if (!requirePeer(t, "wg")) return;
    for (let round = 0; round < 20; round += 1) {
      const pair = generateKeyPair();
      const result = spawnSync("wg", ["pubkey"], {
        input: `${pair.privateKey}\n`,
        encoding: "utf8",
        timeout: WG_TIMEOUT_MS,
      });
      assert.equal(result.error, undefined, `wg pubkey failed: ${result.error}`);
      assert.equal(result.status, 0, result.stderr);
      assert.equal(result.stdout.trim(), pair.publicKey);
    }
  });

  it("accepts keys from wg genkey", (t) => {
    if (!requirePeer(t, "wg")) return;
    const generated = spawnSync("wg", ["genkey"], { encoding: "utf8", timeout: WG_TIMEOUT_MS });
    assert.equal(generated.error, undefined, `wg genkey failed: ${generated.error}`);
    const privateKey = generated.stdout.trim();
    const publicKey = spawnSync("wg", ["pubkey"], {
      input: privateKey,
      encoding: "utf8",
      timeout: WG_TIMEOUT_MS,
    });
    assert.equal(publicKey.error, undefined, `wg pubkey failed: ${publicKey.error}`);
    assert.equal(validatePublicKey(publicKey.stdout.trim()), publicKey.stdout.trim());
    assert.equal(publicKeyOf(privateKey), publicKey.stdout.trim());
  });
});
