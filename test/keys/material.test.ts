import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  forgetParsedKeys,
  versionPrivateKey,
  versionPublicKey,
} from "../../src/keys/key-types/material.ts";
import { makeKey } from "./fixtures.ts";

describe("parsed version keys", () => {
  it("parses each key once", () => {
    const version = makeKey("ed25519").versions["1"]!;
    const copy = structuredClone(version);
    assert.equal(versionPrivateKey(copy), versionPrivateKey(version));
    assert.equal(versionPublicKey(copy), versionPublicKey(version));
  });

  it("parses again after the material changes", () => {
    const version = makeKey("ed25519").versions["1"]!;
    const other = makeKey("ed25519", {}, "other-key").versions["1"]!;
    const first = versionPrivateKey(version);
    const firstPublic = versionPublicKey(version);
    version.secret = other.secret;
    version.publicKeyPem = other.publicKeyPem;
    assert.ok(!versionPrivateKey(version).equals(first));
    assert.ok(versionPrivateKey(version).equals(versionPrivateKey(other)));
    assert.ok(!versionPublicKey(version).equals(firstPublic));
    assert.ok(versionPublicKey(version).equals(versionPublicKey(other)));
  });

  it("parses again after forgetParsedKeys", () => {
    const version = makeKey("ecdsa-p256").versions["1"]!;
    const first = versionPrivateKey(version);
    forgetParsedKeys();
    const second = versionPrivateKey(version);
    assert.notEqual(second, first);
    assert.ok(second.equals(first));
  });

  it("rejects a version without a secret", () => {
    const version = makeKey("ecdsa-p256").versions["1"]!;
    delete version.secret;
    assert.throws(() => versionPrivateKey(version), { code: "internal" });
  });
});
