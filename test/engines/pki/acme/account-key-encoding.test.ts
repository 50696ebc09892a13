import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { exportJWK, FlattenedSign, generateKeyPair, type JWK } from "jose";
import { checkAccountJwk } from "../../../../src/engines/pki/acme/jws.ts";
import { AcmeProblem } from "../../../../src/engines/pki/acme/problems.ts";
import { type AcmeTestServer, rawAcmeClient, startAcmeServer } from "./fixtures.ts";
import type { RawAcmeClient } from "./jws-client.ts";

// RFC 8555 identifies an account by the RFC 7638 thumbprint of its key,
// which hashes the JWK members as sent. RFC 7518 allows one encoding per
// key: EC coordinates of the curve's full length (section 6.2.1.2) and RSA
// integers without leading zero octets (section 6.3.1). Keyward rejects
// every other encoding, so one key cannot open a second account.

const PROBLEM = "urn:ietf:params:acme:error:";
const BASE64URL_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/** Returns `jwk` with `member` decoded, changed by `change`, and encoded again. */
function withMember(jwk: JWK, member: "n" | "e" | "x" | "y", change: (bytes: Buffer) => Buffer) {
  const bytes = Buffer.from(String(jwk[member]), "base64url");
  return { ...jwk, [member]: change(bytes).toString("base64url") };
}

const zeroBefore = (bytes: Buffer) => Buffer.concat([Buffer.of(0), bytes]);

/** Exports the public JWK of a new key of `type` with `options`. */
function publicJwk(type: "ec" | "rsa" | "ed25519", options: object = {}): JWK {
  const { publicKey } = generateKeyPairSync(type as "ec", options as { namedCurve: string });
  return publicKey.export({ format: "jwk" }) as JWK;
}

/** Returns the problem type `checkAccountJwk` throws for `jwk`, or "accepted". */
function outcome(jwk: unknown): string {
  try {
    checkAccountJwk(jwk);
    return "accepted";
  } catch (error) {
    assert.ok(error instanceof AcmeProblem, String(error));
    return error.type;
  }
}

describe("checkAccountJwk encodings", () => {
  const p256 = publicJwk("ec", { namedCurve: "P-256" });
  const p384 = publicJwk("ec", { namedCurve: "P-384" });
  const p521 = publicJwk("ec", { namedCurve: "P-521" });
  const rsa = publicJwk("rsa", { modulusLength: 2048 });
  const ed25519 = publicJwk("ed25519");

  it("accepts canonical keys", () => {
    for (const [name, jwk] of Object.entries({ p256, p384, p521, rsa, ed25519 })) {
      assert.equal(outcome(jwk), "accepted", name);
    }
    // 8192-bit moduli are accepted too: see "counts RSA bits from the top set bit",
    // which builds one instead of generating a key for several seconds.
  });

  it("rejects EC coordinates of wrong length", () => {
    const cases: [string, JWK][] = [
      ["P-256 x with zero octet before it", withMember(p256, "x", zeroBefore)],
      ["P-256 y with zero octet before it", withMember(p256, "y", zeroBefore)],
      ["P-256 x one octet short", withMember(p256, "x", (bytes) => bytes.subarray(1))],
      ["P-384 y with zero octet before it", withMember(p384, "y", zeroBefore)],
      ["P-521 x of 65 octets", withMember(p521, "x", (bytes) => bytes.subarray(1))],
      ["P-521 x of 67 octets", withMember(p521, "x", zeroBefore)],
      ["P-256 without y", { ...p256, y: undefined }],
      ["unsupported curve", { ...p256, crv: "secp256k1" }],
      ["curve named by a prototype member", { ...p256, crv: "toString" }],
    ];
    for (const [name, jwk] of cases) assert.equal(outcome(jwk), "badPublicKey", name);
  });

  it("rejects RSA integers with leading zero octets", () => {
    const cases: [string, JWK][] = [
      ["n with zero octet before it", withMember(rsa, "n", zeroBefore)],
      ["e with zero octet before it", withMember(rsa, "e", zeroBefore)],
      ["e with two zero octets before it", withMember(rsa, "e", (e) => zeroBefore(zeroBefore(e)))],
    ];
    for (const [name, jwk] of cases) assert.equal(outcome(jwk), "badPublicKey", name);
  });

  it("counts RSA bits from the top set bit", () => {
    const modulus = (bytes: number, first: number) => {
      const value = Buffer.alloc(bytes, 0xff);
      value[0] = first;
      return value.toString("base64url");
    };

    assert.equal(outcome({ ...rsa, n: modulus(256, 0x80) }), "accepted", "2048 bits");
    assert.equal(outcome({ ...rsa, n: modulus(256, 0x7f) }), "badPublicKey", "2047 bits");
    assert.equal(outcome({ ...rsa, n: modulus(1024, 0xff) }), "accepted", "8192 bits");
    assert.equal(outcome({ ...rsa, n: modulus(1025, 0x01) }), "badPublicKey", "8193 bits");
  });

  it("rejects non-canonical base64url", () => {
    const x = String(p256.x);
    // 32 octets take 43 base64url characters, and the last one has 2 unused low bits.
    const last = BASE64URL_ALPHABET.indexOf(x.at(-1)!);
    const unusedBitsSet = `${x.slice(0, -1)}${BASE64URL_ALPHABET[last | 1]}`;
    const cases: [string, unknown][] = [
      ["x with padding", { ...p256, x: `${x}=` }],
      ["x with unused bits set", { ...p256, x: unusedBitsSet }],
      // Standard base64 of 32 octets always ends in "=".
      ["x in standard base64", { ...p256, x: Buffer.from(x, "base64url").toString("base64") }],
      ["x a number", { ...p256, x: 5 }],
      ["Ed25519 x with padding", { ...ed25519, x: `${ed25519.x}=` }],
      ["RSA e with padding", { ...rsa, e: `${rsa.e}=` }],
    ];
    for (const [name, jwk] of cases) assert.equal(outcome(jwk), "badPublicKey", name);
  });
});

describe("ACME account key in non-canonical JWK form", () => {
  let server: AcmeTestServer;

  before(async () => {
    server = await startAcmeServer();
  });

  after(async () => {
    await server?.close();
  });

  function registeredClient(): Promise<RawAcmeClient> {
    return rawAcmeClient(server, { register: true });
  }

  /** Sends newAccount signed with `client`'s key but with `jwk` in the protected header. */
  function newAccountWithJwk(client: RawAcmeClient, jwk: JWK) {
    return client.post(client.directory.newAccount!, {
      payload: { termsOfServiceAgreed: true },
      useJwk: true,
      header: { jwk },
    });
  }

  function assertBadPublicKey(response: {
    statusCode: number;
    body: string;
    json(): { type?: string };
  }) {
    assert.equal(response.statusCode, 400, response.body);
    assert.equal(response.json().type, `${PROBLEM}badPublicKey`, response.body);
  }

  it("newAccount rejects padded EC key", async () => {
    const client = await registeredClient();

    const response = await newAccountWithJwk(client, withMember(client.jwk, "x", zeroBefore));

    assertBadPublicKey(response);
  });

  it("deactivated key cannot return padded", async () => {
    const client = await registeredClient();
    const deactivated = await client.post(client.kid, { payload: { status: "deactivated" } });
    assert.equal(deactivated.statusCode, 200, deactivated.body);

    const response = await newAccountWithJwk(client, withMember(client.jwk, "y", zeroBefore));

    assertBadPublicKey(response);
  });

  it("keyChange rejects another account's padded key", async () => {
    const client = await registeredClient();
    const other = await registeredClient();
    const url = client.directory.keyChange!;
    const inner = await new FlattenedSign(
      new TextEncoder().encode(JSON.stringify({ account: client.kid, oldKey: client.jwk })),
    )
      .setProtectedHeader({ alg: "ES256", jwk: withMember(other.jwk, "x", zeroBefore), url })
      .sign(other.privateKey);

    const response = await client.post(url, { payload: inner });

    assertBadPublicKey(response);
    const unchanged = await client.post(client.kid, { payload: "" });
    assert.equal(unchanged.statusCode, 200, unchanged.body);
  });

  it("newAccount rejects RSA key with padded modulus", async () => {
    const client = await rawAcmeClient(server);
    const pair = await generateKeyPair("RS256", { extractable: true });
    const jwk = await exportJWK(pair.publicKey);
    const newAccount = (key: JWK) =>
      client.post(client.directory.newAccount!, {
        payload: { termsOfServiceAgreed: true },
        useJwk: true,
        header: { alg: "RS256", jwk: key },
        signingKey: pair.privateKey,
      });

    const created = await newAccount(jwk);
    const paddedModulus = await newAccount(withMember(jwk, "n", zeroBefore));
    const paddedExponent = await newAccount(withMember(jwk, "e", zeroBefore));

    assert.equal(created.statusCode, 201, created.body);
    assertBadPublicKey(paddedModulus);
    assertBadPublicKey(paddedExponent);
  });
});
