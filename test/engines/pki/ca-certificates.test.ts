import assert from "node:assert/strict";
import { webcrypto } from "node:crypto";
import { describe, it } from "node:test";
import { CaCertificateCache } from "../../../src/engines/pki/ca-certificates.ts";
import { toPem } from "../../../src/engines/pki/pem.ts";
import * as x509 from "../../../src/engines/pki/x509.ts";

const ALGORITHM = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };

async function newKeys() {
  return webcrypto.subtle.generateKey(ALGORITHM, true, ["sign", "verify"]);
}

/** Returns a CA certificate for `name` signed by `issuer`, or self-signed without one. */
async function caPem(
  name: string,
  keys: webcrypto.CryptoKeyPair,
  issuer?: { name: string; keys: webcrypto.CryptoKeyPair },
): Promise<string> {
  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber: "01",
    subject: `CN=${name}`,
    issuer: `CN=${issuer?.name ?? name}`,
    notBefore: new Date("2026-01-01T00:00:00Z"),
    notAfter: new Date("2036-01-01T00:00:00Z"),
    publicKey: keys.publicKey,
    signingKey: (issuer?.keys ?? keys).privateKey,
    signingAlgorithm: ALGORITHM,
    extensions: [new x509.BasicConstraintsExtension(true, undefined, true)],
  });
  return toPem(certificate.rawData, "CERTIFICATE");
}

describe("CaCertificateCache", async () => {
  const rootKeys = await newKeys();
  const otherKeys = await newKeys();
  const root = await caPem("root", rootKeys);
  const other = await caPem("other", otherKeys);
  const intermediate = await caPem("intermediate", await newKeys(), {
    name: "root",
    keys: rootKeys,
  });

  it("parses each certificate once", async () => {
    const cache = new CaCertificateCache();
    const first = cache.parse(root);
    assert.equal(cache.parse(root), first);
    assert.notEqual(cache.parse(other), first);
    assert.match(await first.keyIdHex, /^[0-9a-f]{40}$/);
  });

  it("reads the subject of the certificate", () => {
    const cache = new CaCertificateCache();
    const parsed = cache.parse(intermediate);
    assert.equal(parsed.certificate.subject, "CN=intermediate");
    assert.ok(
      Buffer.from(parsed.names.subject).equals(
        Buffer.from(parsed.certificate.subjectName.toArrayBuffer()),
      ),
    );
  });

  it("verifies signatures by the right key", async () => {
    const cache = new CaCertificateCache();
    assert.equal(await cache.verifies(root, root), true);
    assert.equal(await cache.verifies(intermediate, root), true);
    assert.equal(await cache.verifies(intermediate, other), false);
    assert.equal(await cache.verifies(intermediate, intermediate), false);
  });

  it("returns cached check results unchanged", async () => {
    const cache = new CaCertificateCache();
    assert.equal(await cache.verifies(intermediate, other), false);
    assert.equal(await cache.verifies(intermediate, other), false);
    assert.equal(await cache.verifies(intermediate, root), true);
    assert.equal(await cache.verifies(intermediate, root), true);
  });
});
