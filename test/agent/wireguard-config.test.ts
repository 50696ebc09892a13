import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { describe, it } from "node:test";
import {
  insertPrivateKey,
  PRIVATE_KEY_PLACEHOLDER,
  validateWireguardConfig,
  WireguardConfigError,
} from "../../src/agent/wireguard-config.ts";
import {
  generateWireguardKey,
  isWireguardKey,
  privateKeyFor,
} from "../../src/agent/wireguard-keys.ts";
import { x25519PublicKey } from "../../src/crypto/x25519.ts";
import { requirePeer } from "../helpers/peers.ts";

const peerKey = generateWireguardKey().public_key;
const psk = Buffer.alloc(32, 7).toString("base64");

function rendered(privateLine = `PrivateKey = ${PRIVATE_KEY_PLACEHOLDER}`): string {
  return [
    "# Rendered by Keyward: network office, peer alpha, configuration version 3",
    "[Interface]",
    privateLine,
    "Address = 10.0.0.1/24",
    "ListenPort = 51820",
    "",
    "[Peer]",
    "# bravo",
    `PublicKey = ${peerKey}`,
    `PresharedKey = ${psk}`,
    "AllowedIPs = 10.0.0.2/32",
    "",
  ].join("\n");
}

describe("wireguard keys", () => {
  it("generated pair matches", () => {
    const key = generateWireguardKey();
    assert.ok(isWireguardKey(key.private_key));
    assert.ok(isWireguardKey(key.public_key));
    const derived = x25519PublicKey(Buffer.from(key.private_key, "base64")).toString("base64");
    assert.equal(derived, key.public_key);
  });

  it("matches wg pubkey", (t) => {
    if (!requirePeer(t, "wg")) return;
    const key = generateWireguardKey();
    const result = spawnSync("wg", ["pubkey"], { input: `${key.private_key}\n`, encoding: "utf8" });
    assert.equal(result.stdout.trim(), key.public_key);
  });

  it("selects key by public key", () => {
    const current = generateWireguardKey();
    const staged = generateWireguardKey();
    const keys = { current, staged };
    assert.equal(privateKeyFor(keys, current.public_key), current.private_key);
    assert.equal(privateKeyFor(keys, staged.public_key), staged.private_key);
    assert.equal(privateKeyFor(keys, generateWireguardKey().public_key), undefined);
    assert.equal(privateKeyFor(keys, null), undefined);
    assert.equal(privateKeyFor({}, current.public_key), undefined);
  });
});

describe("wireguard config completion", () => {
  it("replaces the placeholder line", () => {
    const key = generateWireguardKey();
    const text = insertPrivateKey(rendered(), key.private_key);
    assert.ok(text.includes(`\nPrivateKey = ${key.private_key}\n`));
    assert.ok(!text.includes(PRIVATE_KEY_PLACEHOLDER));
    assert.equal(text.replace(key.private_key, PRIVATE_KEY_PLACEHOLDER), rendered());
  });

  it("accepts spacing variants", () => {
    const key = generateWireguardKey();
    const text = insertPrivateKey(
      rendered(`  privatekey=${PRIVATE_KEY_PLACEHOLDER}   # set by the agent`),
      key.private_key,
    );
    assert.ok(text.includes(`PrivateKey = ${key.private_key}`));
  });

  it("rejects missing placeholder", () => {
    const key = generateWireguardKey();
    assert.throws(
      () => insertPrivateKey(rendered(`PrivateKey = ${key.private_key}`), key.private_key),
      (error: Error) =>
        error instanceof WireguardConfigError &&
        error.message.includes("0") &&
        !error.message.includes(key.private_key),
    );
  });

  it("rejects two placeholders", () => {
    const text = `${rendered()}[Interface]\nPrivateKey = ${PRIVATE_KEY_PLACEHOLDER}\n`;
    assert.throws(
      () => insertPrivateKey(text, generateWireguardKey().private_key),
      /has 2 "PrivateKey/,
    );
  });

  it("rejects placeholder elsewhere", () => {
    const text = rendered().replace(
      `PublicKey = ${peerKey}`,
      `PublicKey = ${PRIVATE_KEY_PLACEHOLDER}`,
    );
    assert.throws(
      () => insertPrivateKey(text, generateWireguardKey().private_key),
      /line 9 still contains the private key placeholder/,
    );
  });

  it("rejects a bad private key", () => {
    assert.throws(() => insertPrivateKey(rendered(), "not-a-key"), WireguardConfigError);
  });
});

describe("wireguard config validation", () => {
  const good = insertPrivateKey(rendered(), generateWireguardKey().private_key);

  it("accepts a complete file", () => {
    validateWireguardConfig(good);
  });

  const BROKEN: { name: string; from: string; to: string; line: number }[] = [
    { name: "short public key", from: peerKey, to: peerKey.slice(1), line: 9 },
    { name: "base64url public key", from: peerKey, to: `${peerKey.slice(0, 42)}_=`, line: 9 },
    { name: "non-canonical padding", from: psk, to: `${psk.slice(0, 42)}B=`, line: 10 },
    { name: "33-byte key", from: psk, to: Buffer.alloc(33, 1).toString("base64"), line: 10 },
    { name: "empty preshared key", from: `PresharedKey = ${psk}`, to: "PresharedKey =", line: 10 },
  ];
  for (const broken of BROKEN) {
    it(`rejects ${broken.name}`, () => {
      const text = good.replace(broken.from, broken.to);
      assert.throws(
        () => validateWireguardConfig(text),
        (error: Error) => {
          assert.ok(error instanceof WireguardConfigError);
          assert.ok(error.message.startsWith(`line ${broken.line}:`), error.message);
          assert.ok(!error.message.includes(broken.to) || broken.to === "PresharedKey =");
          return true;
        },
      );
    });
  }
});
