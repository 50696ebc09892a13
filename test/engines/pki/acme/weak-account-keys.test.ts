import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { type AcmeTestServer, startAcmeServer } from "./fixtures.ts";
import { RawAcmeClient } from "./jws-client.ts";

const SHA256_DIGEST_INFO = Buffer.from("3031300d060960864801650304020105000420", "hex");

function base64url(value: Buffer | string): string {
  return Buffer.from(value).toString("base64url");
}

/** Builds a random odd modulus of `bits` bits with the top bit set. */
function randomModulus(bits: number): Buffer {
  const modulus = randomBytes(bits / 8);
  modulus[0]! |= 0x80;
  modulus[modulus.length - 1]! |= 1;
  return modulus;
}

/**
 * Builds an RS256 signature for a key with public exponent 1. Verification
 * computes s^1 mod n = s, so the PKCS#1 v1.5 encoded digest itself is a
 * valid signature under any modulus larger than it, with no private key.
 */
function exponentOneSignature(input: Buffer, modulusBytes: number): Buffer {
  const digestInfo = Buffer.concat([
    SHA256_DIGEST_INFO,
    createHash("sha256").update(input).digest(),
  ]);
  const padding = Buffer.alloc(modulusBytes - 3 - digestInfo.length, 0xff);
  return Buffer.concat([Buffer.of(0, 1), padding, Buffer.of(0), digestInfo]);
}

describe("ACME newAccount with weak keys", () => {
  let server: AcmeTestServer;
  let client: RawAcmeClient;

  before(async () => {
    server = await startAcmeServer();
    client = new RawAcmeClient(server.t);
    await client.init("/v1/pki/acme/directory");
  });

  after(async () => {
    await server?.close();
  });

  /** Sends newAccount signed by `sign` with `jwk` in the protected header. */
  async function newAccount(jwk: object, alg: string, sign: (input: Buffer) => Buffer) {
    const url = client.directory.newAccount!;
    const header = base64url(JSON.stringify({ alg, nonce: await client.nonce(), url, jwk }));
    const payload = base64url(JSON.stringify({ termsOfServiceAgreed: true }));
    const signature = sign(Buffer.from(`${header}.${payload}`));
    return client.post(url, {
      payload: {},
      body: { protected: header, payload, signature: base64url(signature) },
    });
  }

  for (const bits of [2048, 16384]) {
    it(`rejects ${bits}-bit RSA key with exponent 1`, async () => {
      const modulus = randomModulus(bits);
      const jwk = { kty: "RSA", n: base64url(modulus), e: "AQ" };

      const response = await newAccount(jwk, "RS256", (input) =>
        exponentOneSignature(input, modulus.length),
      );

      assert.equal(response.statusCode, 400, response.body);
      assert.equal(response.json().type, "urn:ietf:params:acme:error:badPublicKey");
    });
  }

  it("rejects 16384-bit RSA key", async () => {
    // ACME (RFC 8555) defines badPublicKey for account keys a server does not support.
    const jwk = { kty: "RSA", n: base64url(randomModulus(16384)), e: "AQAB" };

    const response = await newAccount(jwk, "RS256", () => randomBytes(2048));

    assert.equal(response.statusCode, 400, response.body);
    assert.equal(response.json().type, "urn:ietf:params:acme:error:badPublicKey");
  });

  it("rejects Ed25519 identity point", async () => {
    // The encoded identity point (y = 1) has small order, so the signature
    // R = identity, S = 0 verifies for every message.
    const identity = Buffer.concat([Buffer.of(1), Buffer.alloc(31)]);
    const jwk = { kty: "OKP", crv: "Ed25519", x: base64url(identity) };

    const response = await newAccount(jwk, "EdDSA", () =>
      Buffer.concat([identity, Buffer.alloc(32)]),
    );

    assert.equal(response.statusCode, 400, response.body);
    assert.equal(response.json().type, "urn:ietf:params:acme:error:badPublicKey");
  });
});
