import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { exportJWK, FlattenedSign, generateKeyPair, type JWK } from "jose";
import { ok } from "../fixtures.ts";
import { revokeWithCertificateKey, signWithNewKey } from "./certificate-key.ts";
import {
  type AcmeTestServer,
  assertProblems,
  type ProblemCase,
  rawAcmeClient,
  startAcmeServer,
  TEST_DOMAIN,
} from "./fixtures.ts";
import type { RawAcmeClient } from "./jws-client.ts";

const PROBLEM = "urn:ietf:params:acme:error:";

/** Returns `jwk` with the last byte of its y coordinate flipped, so the point is off the curve. */
function offCurve(jwk: JWK): JWK {
  const y = Buffer.from(jwk.y!, "base64url");
  y[y.length - 1]! ^= 1;
  return { ...jwk, y: y.toString("base64url") };
}

describe("ACME revokeCert and keyChange hostile input", () => {
  let server: AcmeTestServer;
  let client: RawAcmeClient;

  before(async () => {
    server = await startAcmeServer();
    client = await rawAcmeClient(server, { register: true });
  });

  after(async () => {
    await server?.close();
  });

  it("revokeCert rejects bad input without revoking", async () => {
    const leaf = await signWithNewKey(server.t, "/v1/pki/sign/web", `leaf.${TEST_DOMAIN}`);
    const certificate = leaf.der.toString("base64url");
    const stranger = await generateKeyPair("ES256", { extractable: true });
    const strangerJwk = await exportJWK(stranger.publicKey);

    // A second PKI mount is another CA: its certificates are unknown to mount "pki".
    const mounted = await server.t.request({
      method: "POST",
      url: "/v1/sys/mounts/other",
      payload: { type: "pki", config: { max_lease_ttl: "87600h" } },
    });
    assert.equal(mounted.statusCode, 204, mounted.body);
    await ok(server.t, "POST", "/v1/other/root/generate/internal", {
      common_name: "Other Root",
      key_type: "ec",
      ttl: "8760h",
    });
    await ok(server.t, "POST", "/v1/other/roles/any", { allow_any_name: true, key_type: "any" });

    const cases: [string, () => ReturnType<RawAcmeClient["post"]>, number, string][] = [];
    for (const reason of [7, 6, 8, 10, 11, -1, 1.5, "1", null]) {
      cases.push([
        `reason ${JSON.stringify(reason)}`,
        () => revokeWithCertificateKey(client, leaf, { certificate, reason }),
        400,
        "badRevocationReason",
      ]);
    }
    cases.push(
      [
        "truncated DER",
        () =>
          revokeWithCertificateKey(client, leaf, {
            certificate: leaf.der.subarray(0, leaf.der.length - 5).toString("base64url"),
          }),
        400,
        "malformed",
      ],
      [
        "standard base64",
        () =>
          revokeWithCertificateKey(client, leaf, {
            certificate: `${leaf.der.toString("base64")}+/=`,
          }),
        400,
        "malformed",
      ],
      [
        "key that is not the certificate's",
        () =>
          client.post(client.directory.revokeCert!, {
            payload: { certificate },
            useJwk: true,
            header: { jwk: strangerJwk },
            signingKey: stranger.privateKey,
          }),
        403,
        "unauthorized",
      ],
      [
        "off-curve jwk",
        () =>
          client.post(client.directory.revokeCert!, {
            payload: { certificate },
            useJwk: true,
            header: { jwk: offCurve(leaf.jwk) },
            signingKey: leaf.privateKey,
          }),
        400,
        "badPublicKey",
      ],
      [
        "certificate of another CA",
        async () => {
          const foreign = await signWithNewKey(server.t, "/v1/other/sign/any", "foreign.example");
          return revokeWithCertificateKey(client, foreign, {
            certificate: foreign.der.toString("base64url"),
          });
        },
        403,
        "unauthorized",
      ],
    );

    for (const [name, send, status, type] of cases) {
      const response = await send();
      assert.equal(response.statusCode, status, `${name}: ${response.body}`);
      assert.equal(response.json().type, PROBLEM + type, `${name}: ${response.body}`);
    }
    const record = await server.t.keyward.pki("pki")!.inventory.find(leaf.serialHex);
    assert.equal(record?.revokedAt, undefined);

    const revoked = await revokeWithCertificateKey(client, leaf, { certificate, reason: 1 });
    assert.equal(revoked.statusCode, 200, revoked.body);
    const again = await revokeWithCertificateKey(client, leaf, { certificate });
    assert.equal(again.statusCode, 400, again.body);
    assert.equal(again.json().type, `${PROBLEM}alreadyRevoked`, again.body);
  });

  it("keyChange rejects odd inner JWS", async () => {
    const acme = await rawAcmeClient(server, { register: true });
    const url = acme.directory.keyChange!;
    const fresh = await generateKeyPair("ES256", { extractable: true });
    const freshJwk = await exportJWK(fresh.publicKey);
    const inner = (payload: string, jwk: JWK = freshJwk) =>
      new FlattenedSign(new TextEncoder().encode(payload))
        .setProtectedHeader({ alg: "ES256", jwk, url })
        .sign(fresh.privateKey);
    const innerOf = (body: object, jwk?: JWK) => inner(JSON.stringify(body), jwk);

    const cases: ProblemCase[] = [
      ["payload not JSON", await inner("{"), 400, "malformed"],
      ["payload empty", await inner(""), 400, "malformed"],
      ["payload null", await inner("null"), 400, "malformed"],
      ["payload a string", await inner('"x"'), 400, "malformed"],
      ["payload an array", await inner("[]"), 403, "unauthorized"],
      [
        "oldKey empty object",
        await innerOf({ account: acme.kid, oldKey: {} }),
        400,
        "badPublicKey",
      ],
      ["oldKey a string", await innerOf({ account: acme.kid, oldKey: "key" }), 403, "unauthorized"],
      [
        "new key off the curve",
        await innerOf({ account: acme.kid, oldKey: acme.jwk }, offCurve(freshJwk)),
        400,
        "badPublicKey",
      ],
      [
        "new key x of 33 bytes",
        await innerOf(
          { account: acme.kid, oldKey: acme.jwk },
          { ...freshJwk, x: Buffer.alloc(33, 1).toString("base64url") },
        ),
        400,
        "badPublicKey",
      ],
      [
        "new key symmetric",
        await innerOf({ account: acme.kid, oldKey: acme.jwk }, { kty: "oct", k: "AAAA" }),
        400,
        "badPublicKey",
      ],
      [
        "new key is the account key",
        await new FlattenedSign(
          new TextEncoder().encode(JSON.stringify({ account: acme.kid, oldKey: acme.jwk })),
        )
          .setProtectedHeader({ alg: "ES256", jwk: acme.jwk, url })
          .sign(acme.privateKey),
        409,
        "malformed",
      ],
    ];
    await assertProblems(acme, url, cases);

    const body = await acme.sign(url, {
      payload: await innerOf({ account: acme.kid, oldKey: acme.jwk }),
    });
    const changed = await acme.post(url, { payload: {}, body });
    assert.equal(changed.statusCode, 200, changed.body);
    const replayed = await acme.post(url, { payload: {}, body });
    assert.equal(replayed.statusCode, 400, replayed.body);
    assert.equal(replayed.json().type, `${PROBLEM}badNonce`, replayed.body);
  });
});
