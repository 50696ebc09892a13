import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { decodeProtectedHeader, exportJWK } from "jose";
import { generateKeys } from "../../src/crypto/key-generation.ts";
import {
  encryptionKeyId,
  openSealed,
  type PublicEncryptionJwk,
  sealSecret,
} from "../../src/devices/sealed.ts";
import { KeywardError } from "../../src/errors.ts";

function keyPair() {
  const pair = generateKeys({ type: "ec", namedCurve: "P-256" });
  const jwk = pair.publicKey.export({ format: "jwk" });
  const publicJwk: PublicEncryptionJwk = { kty: "EC", crv: "P-256", x: jwk.x!, y: jwk.y! };
  return { publicJwk, privateKey: pair.privateKey };
}

const binding = { artifact: "secret:radius", version: 3, field: "value" };

function hasCode(code: string) {
  return (error: unknown) => error instanceof KeywardError && error.code === code;
}

describe("sealed secrets", () => {
  it("round-trips text", async () => {
    const { publicJwk, privateKey } = keyPair();
    const jwe = await sealSecret(publicJwk, binding, "s3cr3t value\n");
    assert.equal(jwe.split(".").length, 5);
    assert.equal(await openSealed(privateKey, jwe, binding), "s3cr3t value\n");
  });

  it("opens with a private JWK too", async () => {
    const { publicJwk, privateKey } = keyPair();
    const jwe = await sealSecret(publicJwk, binding, new TextEncoder().encode("bytes"));
    assert.equal(await openSealed(await exportJWK(privateKey), jwe, binding), "bytes");
  });

  it("writes the contract's protected header", async () => {
    const { publicJwk } = keyPair();
    const header = decodeProtectedHeader(await sealSecret(publicJwk, binding, "x"));
    assert.equal(header.alg, "ECDH-ES");
    assert.equal(header.enc, "A256GCM");
    assert.equal(header.kid, await encryptionKeyId(publicJwk));
    assert.equal(header.kw_artifact, "secret:radius");
    assert.equal(header.kw_version, 3);
    assert.equal(header.kw_field, "value");
  });

  it("rejects a value from another place", async () => {
    const { publicJwk, privateKey } = keyPair();
    const jwe = await sealSecret(publicJwk, binding, "x");
    for (const expected of [
      { ...binding, artifact: "secret:other" },
      { ...binding, version: 4 },
      { ...binding, field: "wg" },
    ]) {
      await assert.rejects(openSealed(privateKey, jwe, expected), hasCode("invalid_request"));
    }
  });

  it("rejects another key", async () => {
    const { publicJwk } = keyPair();
    const other = keyPair();
    const jwe = await sealSecret(publicJwk, binding, "x");
    await assert.rejects(openSealed(other.privateKey, jwe, binding), hasCode("decryption_failed"));
  });

  it("rejects a tampered header or ciphertext", async () => {
    const { publicJwk, privateKey } = keyPair();
    const jwe = await sealSecret(publicJwk, binding, "x");
    const parts = jwe.split(".");
    const header = JSON.parse(Buffer.from(parts[0]!, "base64url").toString("utf8"));
    const forgedHeader = Buffer.from(JSON.stringify({ ...header, kw_version: 4 })).toString(
      "base64url",
    );
    const forged = [forgedHeader, ...parts.slice(1)].join(".");
    await assert.rejects(
      openSealed(privateKey, forged, { ...binding, version: 4 }),
      hasCode("decryption_failed"),
    );
    const ciphertext = Buffer.from(parts[3]!, "base64url");
    ciphertext[0] = (ciphertext[0] ?? 0) ^ 1;
    parts[3] = ciphertext.toString("base64url");
    await assert.rejects(
      openSealed(privateKey, parts.join("."), binding),
      hasCode("decryption_failed"),
    );
    await assert.rejects(
      openSealed(privateKey, "not.a.jwe", binding),
      hasCode("decryption_failed"),
    );
  });

  it("rejects other algorithms", async () => {
    const { privateKey } = keyPair();
    const { CompactEncrypt } = await import("jose");
    const jwe = await new CompactEncrypt(new TextEncoder().encode("x"))
      .setProtectedHeader({
        alg: "dir",
        enc: "A256GCM",
        kw_artifact: "secret:radius",
        kw_version: 3,
        kw_field: "value",
      })
      .encrypt(new Uint8Array(32));
    await assert.rejects(openSealed(privateKey, jwe, binding), hasCode("decryption_failed"));
  });
});
