import assert from "node:assert/strict";
import { createPrivateKey, createPublicKey, webcrypto } from "node:crypto";
import { after, before, describe, it } from "node:test";
import * as x509 from "../../src/engines/pki/x509.ts";
import { createPkiApp } from "../engines/pki/fixtures.ts";
import type { TestApp } from "../helpers/app.ts";

// The scalar d of an EC private key must satisfy 1 <= d < n, where n is
// the group order. Node's createPrivateKey accepts a P-256 key with
// d >= n, and its public point is (d mod n)G, so the checks for the point
// at infinity pass unless d is a multiple of n. WebCrypto and
// @noble/curves reject such a key when they sign, so Keyward returns 500
// on transit prehashed signing and on every PKI issue and CRL. These
// tests expect the import to fail with 400 instead.

/** The order n of the P-256 group, big-endian. */
const P256_ORDER = "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551";

const OUT_OF_RANGE_SCALARS = {
  "n + 1": "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632552",
  "2^256 - 1": "ff".repeat(32),
};

/** Builds a P-256 private key with the given 32-byte scalar from its SEC 1 encoding. */
function p256PrivateKey(scalarHex: string) {
  const sec1 = Buffer.from(`30310201010420${scalarHex}a00a06082a8648ce3d030107`, "hex");
  return createPrivateKey({ key: sec1, format: "der", type: "sec1" });
}

describe("EC scalar out of range", () => {
  let t: TestApp;

  before(async () => {
    t = await createPkiApp();
  });

  after(async () => {
    await t.close();
  });

  it("order is n", () => {
    // A scalar of exactly n gives the point at infinity, which the existing checks reject.
    const publicKey = createPublicKey(p256PrivateKey(P256_ORDER));
    assert.equal(
      publicKey.export({ format: "der", type: "spki" }).subarray(-2).toString("hex"),
      "0000",
    );
  });

  for (const [label, scalar] of Object.entries(OUT_OF_RANGE_SCALARS)) {
    it(`transit restore rejects d = ${label}`, async () => {
      const created = await t.request({
        method: "POST",
        url: "/v1/transit/keys/scalar-source",
        payload: { type: "ecdsa-p256", exportable: true, allow_plaintext_backup: true },
      });
      assert.ok(created.statusCode === 200 || created.statusCode === 204, created.body);
      const backup = await t.request({ method: "GET", url: "/v1/transit/backup/scalar-source" });
      assert.equal(backup.statusCode, 200, backup.body);
      const document = JSON.parse(
        Buffer.from(backup.json().data.backup, "base64").toString("utf8"),
      );

      const privateKey = p256PrivateKey(scalar);
      const name = `scalar-${label.replace(/[^0-9a-z]+/g, "-")}`;
      document.key.name = name;
      document.key.versions["1"].secret = privateKey
        .export({ format: "der", type: "pkcs8" })
        .toString("base64");
      document.key.versions["1"].publicKeyPem = createPublicKey(privateKey)
        .export({ format: "pem", type: "spki" })
        .toString();
      const restored = await t.request({
        method: "POST",
        url: "/v1/transit/restore",
        payload: { backup: Buffer.from(JSON.stringify(document)).toString("base64") },
      });

      // If the restore is accepted, a prehashed signature shows the failure.
      const signed =
        restored.statusCode < 300
          ? await t.request({
              method: "POST",
              url: `/v1/transit/sign/${name}`,
              payload: { input: Buffer.alloc(32, 1).toString("base64"), prehashed: true },
            })
          : undefined;
      assert.ok(
        signed?.statusCode !== 500,
        `restore returned ${restored.statusCode}, then sign returned 500`,
      );
      assert.equal(restored.statusCode, 400, restored.body);
      assert.equal(restored.json().code, "invalid_field");
    });
  }

  it("PKI config/ca rejects d = n + 1", async () => {
    // d = 1 has the same public point G as d = n + 1, and WebCrypto accepts it for the certificate.
    const signingKey = p256PrivateKey(`${"00".repeat(31)}01`);
    const algorithm = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
    const keys = {
      privateKey: await webcrypto.subtle.importKey(
        "pkcs8",
        signingKey.export({ format: "der", type: "pkcs8" }),
        algorithm,
        false,
        ["sign"],
      ),
      publicKey: await webcrypto.subtle.importKey(
        "spki",
        createPublicKey(signingKey).export({ format: "der", type: "spki" }),
        algorithm,
        true,
        ["verify"],
      ),
    };
    const certificate = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: "01",
      name: "CN=Scalar Range Root",
      notBefore: new Date(Date.now() - 60_000),
      notAfter: new Date(Date.now() + 86_400_000),
      keys,
      signingAlgorithm: algorithm,
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true),
        new x509.KeyUsagesExtension(
          x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
          true,
        ),
      ],
    });
    const keyPem = p256PrivateKey(OUT_OF_RANGE_SCALARS["n + 1"])
      .export({ format: "pem", type: "pkcs8" })
      .toString();

    const imported = await t.request({
      method: "POST",
      url: "/v1/pki/config/ca",
      payload: { pem_bundle: `${keyPem}\n${certificate.toString("pem")}` },
    });

    // If the import is accepted, the CA can neither issue nor sign a CRL.
    if (imported.statusCode < 300) {
      await t.request({
        method: "POST",
        url: "/v1/pki/roles/any",
        payload: { allow_any_name: true, key_type: "ec", ttl: "24h" },
      });
      const issued = await t.request({
        method: "POST",
        url: "/v1/pki/issue/any",
        payload: { common_name: "host.example.net" },
      });
      assert.ok(issued.statusCode !== 500, "config/ca accepted the key, then issue returned 500");
      const crl = await t.request({ method: "GET", url: "/v1/pki/crl/rotate" });
      assert.ok(crl.statusCode !== 500, "config/ca accepted the key, then crl/rotate returned 500");
    }
    assert.equal(imported.statusCode, 400, imported.body);
  });
});
