import assert from "node:assert/strict";
import { createHash, type webcrypto } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { AsnConvert } from "@peculiar/asn1-schema";
import { CertificateList } from "@peculiar/asn1-x509";
import { buildCrl } from "../../../../src/engines/pki/revocation/crl.ts";
import type { RevokedEntry } from "../../../../src/engines/pki/revocation/types.ts";
import * as x509 from "../../../../src/engines/pki/x509.ts";
import { KeywardError } from "../../../../src/errors.ts";
import { requirePeer } from "../../../helpers/peers.ts";
import {
  issueLeaf,
  KEY_ALGORITHMS,
  type KeyKind,
  makeCa,
  openssl,
  type TestCa,
  writeCrlPem,
  writePem,
} from "./fixtures.ts";

const HOUR = 3600 * 1000;

/** CRL validity around the current time, because openssl verify rejects a CRL outside it. */
function window() {
  const now = Date.now();
  return { thisUpdate: new Date(now - HOUR), nextUpdate: new Date(now + 24 * HOUR) };
}

const SIGNATURE_NAMES: Record<KeyKind, string> = {
  "ecdsa-p256": "ecdsa-with-SHA256",
  "ecdsa-p384": "ecdsa-with-SHA384",
  "ecdsa-p521": "ecdsa-with-SHA512",
  rsa: "sha256WithRSAEncryption",
  ed25519: "ED25519",
};

describe("buildCrl with openssl", () => {
  let dir = "";

  before(() => {
    dir = mkdtempSync(join(tmpdir(), "keyward-crl-"));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** Writes the CRL in DER and PEM and returns openssl's text form of it. */
  function crlText(name: string, der: Uint8Array): { text: string; pem: string } {
    const derPath = join(dir, `${name}.der`);
    writeFileSync(derPath, der);
    const result = openssl(["crl", "-inform", "DER", "-in", derPath, "-noout", "-text"]);
    assert.equal(result.status, 0, result.output);
    return { text: result.output, pem: writeCrlPem(dir, `${name}.pem`, der) };
  }

  function verify(caPath: string, crlPaths: string[], leafPath: string, extra: string[] = []) {
    const crlArgs = crlPaths.flatMap((path) => ["-CRLfile", path]);
    return openssl(["verify", "-crl_check", ...extra, "-CAfile", caPath, ...crlArgs, leafPath]);
  }

  for (const kind of Object.keys(KEY_ALGORITHMS) as KeyKind[]) {
    it(`${kind} CRL revokes one leaf`, async (t) => {
      if (!requirePeer(t, "openssl")) return;
      const ca = await makeCa(kind);
      const revoked = await issueLeaf(ca, "7a01");
      const unrevoked = await issueLeaf(ca, "7a02");
      const now = Date.now();
      const der = await buildCrl({
        signer: ca,
        entries: [
          {
            serialHex: "7a01",
            revokedAt: new Date(now - 10 * 60 * 1000),
            reason: "keyCompromise",
            invalidityDate: new Date(now - 20 * 60 * 1000),
          },
        ],
        crlNumber: 5n,
        ...window(),
      });

      const { text, pem } = crlText(`crl-${kind}`, der);
      assert.match(text, /Version 2 \(0x1\)/);
      assert.match(text, new RegExp(`Signature Algorithm: ${SIGNATURE_NAMES[kind]}`));
      assert.match(text, /X509v3 CRL Number: \n\s+5\n/);
      assert.match(text, /X509v3 Authority Key Identifier/);
      assert.match(text, /Serial Number: 7A01/);
      assert.match(text, /Key Compromise/);
      assert.match(text, /Invalidity Date/);

      const caPath = writePem(dir, `ca-${kind}.pem`, ca.certificate);
      const revokedResult = verify(
        caPath,
        [pem],
        writePem(dir, `revoked-${kind}.pem`, revoked.certificate),
      );
      assert.notEqual(revokedResult.status, 0, revokedResult.output);
      assert.match(revokedResult.output, /certificate revoked/);
      const unrevokedResult = verify(
        caPath,
        [pem],
        writePem(dir, `unrevoked-${kind}.pem`, unrevoked.certificate),
      );
      assert.equal(unrevokedResult.status, 0, unrevokedResult.output);
      assert.match(unrevokedResult.output, /: OK/);
    });
  }

  it("delta CRL carries its base number", async (t) => {
    if (!requirePeer(t, "openssl")) return;
    const ca = await makeCa("ecdsa-p256");
    const leaf = await issueLeaf(ca, "0d01");
    const base = await buildCrl({
      signer: ca,
      entries: [],
      crlNumber: 10n,
      deltaUrl: "http://127.0.0.1:8200/v1/pki/crl/delta",
      ...window(),
    });
    const delta = await buildCrl({
      signer: ca,
      entries: [
        { serialHex: "0d01", revokedAt: new Date(Date.now() - HOUR), reason: "superseded" },
      ],
      crlNumber: 11n,
      deltaOf: 10n,
      ...window(),
    });

    const baseCrl = crlText("base", base);
    assert.match(baseCrl.text, /X509v3 Freshest CRL/);
    assert.match(baseCrl.text, /URI:http:\/\/127\.0\.0\.1:8200\/v1\/pki\/crl\/delta/);
    assert.match(baseCrl.text, /No Revoked Certificates/);
    const deltaCrl = crlText("delta", delta);
    assert.match(deltaCrl.text, /X509v3 Delta CRL Indicator: critical\n\s+10\n/);
    assert.match(deltaCrl.text, /X509v3 CRL Number: \n\s+11\n/);
    assert.doesNotMatch(deltaCrl.text, /Freshest CRL/);

    // With -use_deltas, openssl applies the delta to the base CRL.
    const caPath = writePem(dir, "delta-ca.pem", ca.certificate);
    const leafPath = writePem(dir, "delta-leaf.pem", leaf.certificate);
    const baseOnly = verify(caPath, [baseCrl.pem], leafPath);
    assert.equal(baseOnly.status, 0, baseOnly.output);
    const withDelta = verify(caPath, [baseCrl.pem, deltaCrl.pem], leafPath, ["-use_deltas"]);
    assert.notEqual(withDelta.status, 0, withDelta.output);
    assert.match(withDelta.output, /certificate revoked/);
  });

  it("CA without key ID verifies", async (t) => {
    if (!requirePeer(t, "openssl")) return;
    const ca = await makeCa("ecdsa-p256", { withSubjectKeyId: false });
    const leaf = await issueLeaf(ca, "0e01");
    const der = await buildCrl({
      signer: ca,
      entries: [{ serialHex: "0e01", revokedAt: new Date(Date.now() - HOUR) }],
      crlNumber: 1n,
      ...window(),
    });
    const crl = new x509.X509Crl(der);
    const aki = crl.getExtension(x509.AuthorityKeyIdentifierExtension);
    const point = (await crypto.subtle.exportKey("raw", ca.publicKey)) as ArrayBuffer;
    assert.equal(aki?.keyId, createHash("sha1").update(Buffer.from(point)).digest("hex"));

    const { pem } = crlText("no-ski", der);
    const caPath = writePem(dir, "no-ski-ca.pem", ca.certificate);
    const result = verify(caPath, [pem], writePem(dir, "no-ski-leaf.pem", leaf.certificate));
    assert.match(result.output, /certificate revoked/);
  });

  it("reason codes print as expected", async (t) => {
    if (!requirePeer(t, "openssl")) return;
    const ca = await makeCa("ecdsa-p256");
    const revokedAt = new Date(Date.now() - HOUR);
    const entries: RevokedEntry[] = [
      { serialHex: "01", revokedAt, reason: "unspecified" },
      { serialHex: "02", revokedAt, reason: "certificateHold" },
      { serialHex: "03", revokedAt, reason: "cessationOfOperation" },
      { serialHex: "04", revokedAt },
    ];
    const der = await buildCrl({ signer: ca, entries, crlNumber: 2n, deltaOf: 1n, ...window() });
    const { text } = crlText("reasons", der);
    assert.match(text, /Certificate Hold/);
    assert.match(text, /Cessation Of Operation/);
    // unspecified and a missing reason both leave the reasonCode extension out.
    assert.equal(text.match(/CRL Reason Code/g)?.length, 2);
  });
});

describe("buildCrl encoding", () => {
  let ca: TestCa;

  before(async () => {
    ca = await makeCa("ecdsa-p256", { name: "CN=Zertifizierungsstelle Ärzte, O=Prüfung, C=DE" });
  });

  it("copies issuer bytes from subject", async () => {
    const der = await buildCrl({ signer: ca, entries: [], crlNumber: 1n, ...window() });
    const list = AsnConvert.parse(der, CertificateList);
    const subject = Buffer.from(ca.certificate.subjectName.toArrayBuffer());
    assert.ok(
      Buffer.from(ca.certificate.rawData).includes(subject),
      "subject re-encodes unchanged",
    );
    assert.ok(Buffer.from(list.tbsCertListRaw ?? new ArrayBuffer(0)).includes(subject));
    assert.equal(list.tbsCertList.revokedCertificates, undefined);
  });

  it("fail subject with invalid UTF-8", async () => {
    // The underscore makes x509 write the name as a UTF8String. asn1-x509
    // would encode the invalid octet FF as C3 BF, so buildCrl reports the
    // mismatch instead of signing a different issuer.
    const utf8Ca = await makeCa("ecdsa-p256", { name: "CN=Test_CA" });
    const raw = Buffer.from(new Uint8Array(utf8Ca.certificate.rawData));
    const at = raw.lastIndexOf(Buffer.from("Test_CA"));
    raw[at + 4] = 0xff;
    const certificate = new x509.X509Certificate(raw);
    await assert.rejects(
      buildCrl({
        signer: { certificate, privateKey: utf8Ca.privateKey },
        entries: [],
        crlNumber: 1n,
        ...window(),
      }),
      (error: unknown) => error instanceof KeywardError && error.code === "internal",
    );
  });

  it("encodes CRL numbers past 2^64", async () => {
    const crlNumber = 2n ** 100n + 7n;
    const der = await buildCrl({ signer: ca, entries: [], crlNumber, ...window() });
    const crl = new x509.X509Crl(der);
    const extension = crl.extensions.find((item) => item.type === "2.5.29.20");
    assert.ok(extension);
    // INTEGER, 13 content octets, 2^100 + 7 in big-endian order.
    const expected = Buffer.from(`020d10${"00".repeat(11)}07`, "hex");
    assert.deepEqual(Buffer.from(extension.value), expected);
  });

  it("writes serials with high bit", async () => {
    const der = await buildCrl({
      signer: ca,
      entries: [
        { serialHex: "ff01", revokedAt: new Date() },
        { serialHex: "00007f", revokedAt: new Date() },
        { serialHex: "abc", revokedAt: new Date() },
      ],
      crlNumber: 1n,
      ...window(),
    });
    const serials = new x509.X509Crl(der).entries.map((entry) => entry.serialNumber);
    assert.deepEqual(serials, ["ff01", "7f", "0abc"]);
  });

  const badOptions: { name: string; change: Record<string, unknown>; message: RegExp }[] = [
    {
      name: "fail negative CRL number",
      change: { crlNumber: -1n },
      message: /outside 0 to 2\^159-1/,
    },
    { name: "fail 21-octet CRL number", change: { crlNumber: 2n ** 159n }, message: /outside/ },
    {
      name: "fail delta base not below number",
      change: { deltaOf: 3n },
      message: /below its CRL number 3/,
    },
    {
      name: "fail delta with delta URL",
      change: { deltaOf: 1n, deltaUrl: "http://127.0.0.1/delta" },
      message: /delta CRL cannot carry/,
    },
    {
      name: "fail nextUpdate before thisUpdate",
      change: { nextUpdate: new Date(0) },
      message: /nextUpdate must be later/,
    },
    {
      name: "fail serial with colons",
      change: { entries: [{ serialHex: "0a:01", revokedAt: new Date() }] },
      message: /serial "0a:01" is not lower-case hex/,
    },
    {
      name: "fail upper-case serial",
      change: { entries: [{ serialHex: "0A01", revokedAt: new Date() }] },
      message: /not lower-case hex/,
    },
    {
      name: "fail duplicate serial",
      change: {
        entries: [
          { serialHex: "0a01", revokedAt: new Date() },
          { serialHex: "a01", revokedAt: new Date() },
        ],
      },
      message: /serial a01 is listed twice/,
    },
  ];
  for (const { name, change, message } of badOptions) {
    it(name, async () => {
      await assert.rejects(
        buildCrl({ signer: ca, entries: [], crlNumber: 3n, ...window(), ...change }),
        (error: unknown) => {
          assert.ok(error instanceof KeywardError, String(error));
          assert.equal(error.code, "invalid_request");
          assert.match(error.message, message);
          return true;
        },
      );
    });
  }

  it("fail RSA key with SHA-384", async () => {
    const keys = (await crypto.subtle.generateKey(
      { ...KEY_ALGORITHMS.rsa, hash: "SHA-384" },
      false,
      ["sign", "verify"],
    )) as webcrypto.CryptoKeyPair;
    await assert.rejects(
      buildCrl({
        signer: { ...ca, privateKey: keys.privateKey },
        entries: [],
        crlNumber: 1n,
        ...window(),
      }),
      (error: unknown) =>
        error instanceof KeywardError &&
        error.code === "unsupported_operation" &&
        /hash SHA-384/.test(error.message),
    );
  });
});
