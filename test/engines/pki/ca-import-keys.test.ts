import assert from "node:assert/strict";
import { createPrivateKey, generateKeyPairSync } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { IssuerKeys } from "../../../src/engines/pki/issuer-keys.ts";
import { readPrivateKeyPem } from "../../../src/engines/pki/key-pairs.ts";
import type { IssuerRecord, KeyRecord } from "../../../src/engines/pki/types.ts";
import { KeywardError } from "../../../src/errors.ts";
import { requirePeer } from "../../helpers/peers.ts";
import { caImportApp, derToPem, type KeyedCertificate, openssl } from "./ca-import-fixtures.ts";
import { ok } from "./fixtures.ts";

/** Returns an RSA private key as PKCS#1 PEM whose prime q belongs to another key, so n is not p*q. */
function rsaKeyWithForeignPrime(): string {
  const own = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey;
  const other = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey;
  const jwk = { ...own.export({ format: "jwk" }), q: other.export({ format: "jwk" }).q };
  // OpenSSL imports such a key, and signs with it by falling back to the private exponent.
  const key = createPrivateKey({ key: jwk, format: "jwk" });
  return key.export({ format: "pem", type: "pkcs1" }) as string;
}

describe("private key checks", () => {
  it("rejects RSA key whose primes mismatch", () => {
    const pem = rsaKeyWithForeignPrime();

    assert.throws(
      () => readPrivateKeyPem(pem, "pem_bundle"),
      (error: unknown) =>
        error instanceof KeywardError &&
        error.code === "invalid_certificate" &&
        error.field === "pem_bundle",
    );
  });

  it("accepts consistent RSA, EC and Ed25519 keys", () => {
    const keys = [
      generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey,
      generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey,
      generateKeyPairSync("ed25519").privateKey,
    ];
    for (const key of keys) {
      const pem = key.export({ format: "pem", type: "pkcs8" }) as string;

      const pkcs8 = readPrivateKeyPem(pem, "pem_bundle");

      assert.ok(pkcs8.length > 0, key.asymmetricKeyType);
    }
  });

  it("signing key rejection is not cached", async () => {
    const pkcs8 = generateKeyPairSync("ec", { namedCurve: "P-256" })
      .privateKey.export({ format: "der", type: "pkcs8" })
      .toString("base64");
    const record: KeyRecord = {
      id: "key-1",
      name: "",
      type: "ec",
      bits: 384,
      pkcs8,
      exported: false,
      createdAt: new Date(0).toISOString(),
    };
    const issuer = { id: "issuer-1", name: "", keyId: record.id } as IssuerRecord;
    const keys = new IssuerKeys();

    // A P-256 key imported as P-384 fails.
    await assert.rejects(
      keys.keyFor(issuer, record, new Uint8Array()),
      (error: unknown) => error instanceof KeywardError && error.code === "invalid_state",
    );
    const loaded = await keys.keyFor(issuer, { ...record, bits: 256 }, new Uint8Array());

    assert.equal(loaded.keySpec.bits, 256);
  });
});

// A SEC 1 EC private key carries its public point next to the scalar, and
// OpenSSL takes that point as given without checking that the scalar
// produces it. A key with the scalar of one CA and the point of another
// would look like the second CA's key when keys are matched to
// certificates by their public key.

describe("bundle private keys", () => {
  const pki = caImportApp("keys");
  let victim: KeyedCertificate;
  let forgedKeyPem: string;

  /** Builds a SEC 1 key with the scalar of a new key and the public point of `victim`'s key. */
  function fixtures(): void {
    if (victim) return;
    victim = pki.certificate("point-victim");
    const donor = pki.certificate("point-donor");
    const donorDerPath = join(pki.files.dir, "donor-sec1.der");
    const victimPublicPath = join(pki.files.dir, "victim-public.der");
    openssl(["ec", "-in", donor.keyPath, "-outform", "DER", "-out", donorDerPath]);
    openssl(["ec", "-in", victim.keyPath, "-pubout", "-outform", "DER", "-out", victimPublicPath]);
    const sec1 = readFileSync(donorDerPath);
    const victimPoint = readFileSync(victimPublicPath).subarray(-65);
    // The optional publicKey [1] BIT STRING ends the structure; its last 65 bytes are the point.
    assert.equal(sec1[sec1.length - 65], 0x04);
    victimPoint.copy(sec1, sec1.length - 65);
    forgedKeyPem = derToPem(sec1, "EC PRIVATE KEY");
  }

  it("rejects EC key with foreign point", async (context) => {
    if (!requirePeer(context, "openssl")) return;
    fixtures();
    const mount = await pki.newMount();

    const response = await pki.importBundle(mount, victim.certificatePem + forgedKeyPem);

    assert.equal(response.statusCode, 400, response.body);
    assert.equal(response.json().code, "invalid_certificate");
    assert.equal(response.json().field, "pem_bundle");
  });

  it("mount with rejected key returns 4xx", async (context) => {
    if (!requirePeer(context, "openssl")) return;
    fixtures();
    const mount = await pki.newMount();
    const imported = await pki.importBundle(
      mount,
      victim.certificatePem + forgedKeyPem,
      "config/ca",
    );
    assert.equal(imported.statusCode, 400, imported.body);
    await ok(pki.t, "POST", `/v1/${mount}/roles/web`, {
      allow_any_name: true,
      ttl: "1h",
      key_type: "ec",
    });

    const issued = await pki.t.request({
      method: "POST",
      url: `/v1/${mount}/issue/web`,
      payload: { common_name: "www.example.test" },
    });
    const crl = await pki.t.request({ method: "GET", url: `/v1/${mount}/crl/pem` });

    assert.ok(issued.statusCode < 500, issued.body);
    assert.ok(crl.statusCode < 500, crl.body);
  });

  it("rejects RSA key whose primes mismatch", async () => {
    const mount = await pki.newMount();

    const response = await pki.importBundle(mount, rsaKeyWithForeignPrime());

    assert.equal(response.statusCode, 400, response.body);
    assert.equal(response.json().code, "invalid_certificate");
    assert.equal(response.json().field, "pem_bundle");
  });

  // CA certificates may have RSA keys of 2048 to 8192 bits, but Keyward
  // stores CA private keys of 2048, 3072 or 4096 bits only.
  it("odd RSA key size names pem_bundle", async (context) => {
    if (!requirePeer(context, "openssl")) return;
    const odd = pki.certificate("rsa-2560-root", { keyArgs: ["-newkey", "rsa:2560"] });
    const mount = await pki.newMount();

    const response = await pki.importBundle(mount, odd.certificatePem + odd.keyPem);

    assert.equal(response.statusCode, 400, response.body);
    assert.equal(response.json().code, "unsupported_key_type");
    assert.equal(response.json().field, "pem_bundle");
    assert.match(response.json().errors[0], /pem_bundle/);
  });
});
