import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { BasicOCSPResponse, OCSPResponse } from "@peculiar/asn1-ocsp";
import { AsnConvert } from "@peculiar/asn1-schema";
import {
  buildOcspResponse,
  certIdMatchesIssuer,
  type OcspCertStatus,
  type OcspRequestInfo,
  ocspErrorResponse,
  parseOcspRequest,
} from "../../../../src/engines/pki/revocation/ocsp.ts";
import { KeywardError } from "../../../../src/errors.ts";
import { requirePeer } from "../../../helpers/peers.ts";
import {
  certId,
  encodeRequest,
  issueLeaf,
  KEY_ALGORITHMS,
  type KeyKind,
  makeCa,
  openssl,
  type TestCa,
  type TestLeaf,
  writePem,
} from "./fixtures.ts";

const HOUR = 3600 * 1000;

/** Pairs the CertIDs of a request with `list`, in order, valid from an hour ago to an hour ahead. */
function statuses(info: OcspRequestInfo, list: OcspCertStatus[]) {
  const now = Date.now();
  return info.certIds.map((certId, index) => ({
    certId,
    status: list[index] ?? { status: "unknown" as const },
    thisUpdate: new Date(now - HOUR),
    nextUpdate: new Date(now + HOUR),
  }));
}

describe("OCSP with openssl", () => {
  let dir = "";
  let ca: TestCa;
  let good: TestLeaf;
  let revoked: TestLeaf;
  let responder: TestLeaf;
  const paths = { ca: "", good: "", revoked: "", responder: "" };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "keyward-ocsp-"));
    ca = await makeCa("ecdsa-p256");
    good = await issueLeaf(ca, "1001");
    revoked = await issueLeaf(ca, "8002");
    responder = await issueLeaf(ca, "3003", { commonName: "OCSP responder", ocspSigning: true });
    paths.ca = writePem(dir, "ca.pem", ca.certificate);
    paths.good = writePem(dir, "good.pem", good.certificate);
    paths.revoked = writePem(dir, "revoked.pem", revoked.certificate);
    paths.responder = writePem(dir, "responder.pem", responder.certificate);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** Writes a request with openssl, for the certificates named in `args` (-cert or -serial), and parses it. */
  function makeRequest(name: string, args: string[]): OcspRequestInfo {
    const path = join(dir, name);
    const result = openssl(["ocsp", "-issuer", paths.ca, ...args, "-reqout", path]);
    assert.equal(result.status, 0, result.output);
    return parseOcspRequest(readFileSync(path));
  }

  /** Writes a response to `name` and runs `openssl ocsp` on it with `args` added. */
  function checkResponse(name: string, der: Uint8Array, args: string[]) {
    const path = join(dir, name);
    writeFileSync(path, der);
    return openssl(["ocsp", "-respin", path, "-issuer", paths.ca, "-CAfile", paths.ca, ...args]);
  }

  it("parses request without nonce", (t) => {
    if (!requirePeer(t, "openssl")) return;
    const info = makeRequest("plain.der", ["-cert", paths.good, "-no_nonce"]);
    assert.equal(info.certIds.length, 1);
    const [id] = info.certIds;
    assert.equal(id?.hashAlgorithm, "sha1");
    assert.equal(id?.serialHex, "1001");
    assert.equal(id?.serialHex, good.certificate.serialNumber);
    assert.ok(id);
    assert.equal(certIdMatchesIssuer(id, ca.certificate), true);
    const subject = Buffer.from(ca.certificate.subjectName.toArrayBuffer());
    assert.deepEqual(Buffer.from(id.issuerNameHash), createHash("sha1").update(subject).digest());
    assert.equal(info.nonce, undefined);
  });

  it("parses SHA-256 request with nonce", (t) => {
    if (!requirePeer(t, "openssl")) return;
    const info = makeRequest("nonce.der", [
      "-sha256",
      "-cert",
      paths.good,
      "-cert",
      paths.revoked,
      "-serial",
      "0x99",
    ]);
    assert.deepEqual(
      info.certIds.map((id) => [id.hashAlgorithm, id.serialHex]),
      [
        ["sha256", "1001"],
        ["sha256", "8002"],
        ["sha256", "99"],
      ],
    );
    for (const id of info.certIds) assert.ok(certIdMatchesIssuer(id, ca.certificate));
    // OpenSSL sends a 16-byte nonce wrapped in an OCTET STRING (tag 04, length 16).
    assert.equal(info.nonce?.length, 18);
    assert.deepEqual([...(info.nonce ?? []).subarray(0, 2)], [0x04, 0x10]);
  });

  const signerKinds = Object.keys(KEY_ALGORITHMS) as KeyKind[];
  for (const kind of signerKinds) {
    it(`${kind} issuer response verifies`, async (t) => {
      if (!requirePeer(t, "openssl")) return;
      // Each key type gets its own CA and leaves, so the CA key signs the response.
      const kindCa = await makeCa(kind);
      const leafGood = await issueLeaf(kindCa, "0a01");
      const leafRevoked = await issueLeaf(kindCa, "0a02");
      const caPath = writePem(dir, `ca-${kind}.pem`, kindCa.certificate);
      const goodPath = writePem(dir, `good-${kind}.pem`, leafGood.certificate);
      const revokedPath = writePem(dir, `revoked-${kind}.pem`, leafRevoked.certificate);
      const request = join(dir, `request-${kind}.der`);
      const certArgs = ["-cert", goodPath, "-cert", revokedPath, "-serial", "0x0a03"];
      const written = openssl([
        "ocsp",
        "-issuer",
        caPath,
        ...certArgs,
        "-no_nonce",
        "-reqout",
        request,
      ]);
      assert.equal(written.status, 0, written.output);
      const info = parseOcspRequest(readFileSync(request));

      const revokedAt = new Date(Date.now() - 2 * HOUR);
      const der = await buildOcspResponse({
        signer: kindCa,
        responses: statuses(info, [
          { status: "good" },
          { status: "revoked", revokedAt, reason: "keyCompromise" },
          { status: "unknown" },
        ]),
        producedAt: new Date(),
      });
      const path = join(dir, `response-${kind}.der`);
      writeFileSync(path, der);
      const result = openssl([
        "ocsp",
        "-respin",
        path,
        "-issuer",
        caPath,
        "-CAfile",
        caPath,
        "-no_nonce",
        ...certArgs,
      ]);
      assert.equal(result.status, 0, result.output);
      assert.match(result.output, /Response verify OK/);
      assert.match(result.output, new RegExp(`${goodPath}: good`));
      assert.match(result.output, new RegExp(`${revokedPath}: revoked`));
      assert.match(result.output, /Reason: keyCompromise/);
      assert.match(result.output, /0x0a03: unknown/);
    });
  }

  it("delegated responder verifies with VAfile", async (t) => {
    if (!requirePeer(t, "openssl")) return;
    const info = makeRequest("delegated.der", ["-cert", paths.revoked, "-no_nonce"]);
    const der = await buildOcspResponse({
      signer: responder,
      responses: statuses(info, [
        { status: "revoked", revokedAt: new Date(Date.now() - HOUR), reason: "superseded" },
      ]),
      producedAt: new Date(),
      certificates: [responder.certificate],
      responderId: "key",
    });
    const result = checkResponse("delegated-response.der", der, [
      "-VAfile",
      paths.responder,
      "-no_nonce",
      "-cert",
      paths.revoked,
    ]);
    assert.equal(result.status, 0, result.output);
    assert.match(result.output, /Response verify OK/);
    assert.match(result.output, /revoked\.pem: revoked/);
    assert.match(result.output, /Reason: superseded/);
  });

  it("delegated responder chains to CA", async (t) => {
    if (!requirePeer(t, "openssl")) return;
    const info = makeRequest("chained.der", ["-cert", paths.good, "-no_nonce"]);
    const der = await buildOcspResponse({
      signer: responder,
      responses: statuses(info, [{ status: "good" }]),
      producedAt: new Date(),
      certificates: [responder.certificate],
    });
    // Without -VAfile, openssl finds the responder in `certs` and checks
    // that the CA issued it with the OCSP signing extended key usage.
    const result = checkResponse("chained-response.der", der, ["-no_nonce", "-cert", paths.good]);
    assert.equal(result.status, 0, result.output);
    assert.match(result.output, /Response verify OK/);
    assert.match(result.output, /good\.pem: good/);
  });

  it("responder without OCSP EKU fails", async (t) => {
    if (!requirePeer(t, "openssl")) return;
    const info = makeRequest("no-eku.der", ["-cert", paths.good, "-no_nonce"]);
    const der = await buildOcspResponse({
      signer: good,
      responses: statuses(info, [{ status: "good" }]),
      producedAt: new Date(),
      certificates: [good.certificate],
    });
    const result = checkResponse("no-eku-response.der", der, ["-no_nonce", "-cert", paths.good]);
    assert.notEqual(result.status, 0, result.output);
    assert.match(result.output, /Response Verify Failure/);
  });

  it("echoed nonce passes openssl check", async (t) => {
    if (!requirePeer(t, "openssl")) return;
    const info = makeRequest("echo.der", ["-cert", paths.good]);
    assert.ok(info.nonce);
    const der = await buildOcspResponse({
      signer: ca,
      responses: statuses(info, [{ status: "good" }]),
      producedAt: new Date(),
      nonce: info.nonce,
    });
    // With -reqin and no -cert, openssl compares the request's nonce with the response's.
    const result = checkResponse("echo-response.der", der, ["-reqin", join(dir, "echo.der")]);
    assert.equal(result.status, 0, result.output);
    assert.match(result.output, /Response verify OK/);
    assert.doesNotMatch(result.output, /nonce/i);
  });

  it("altered nonce fails openssl check", async (t) => {
    if (!requirePeer(t, "openssl")) return;
    const info = makeRequest("altered.der", ["-cert", paths.good]);
    assert.ok(info.nonce);
    const altered = Uint8Array.from(info.nonce);
    altered[altered.length - 1] = (altered[altered.length - 1] ?? 0) ^ 0xff;
    const der = await buildOcspResponse({
      signer: ca,
      responses: statuses(info, [{ status: "good" }]),
      producedAt: new Date(),
      nonce: altered,
    });
    const result = checkResponse("altered-response.der", der, ["-reqin", join(dir, "altered.der")]);
    assert.notEqual(result.status, 0, result.output);
    assert.match(result.output, /Nonce Verify error/);
  });

  const errorStatuses = [
    ["malformedRequest", 1],
    ["internalError", 2],
    ["tryLater", 3],
    ["sigRequired", 5],
    ["unauthorized", 6],
  ] as const;
  for (const [status, code] of errorStatuses) {
    it(`error response reads ${status}`, (t) => {
      const der = ocspErrorResponse(status);
      // OCSPResponse ::= SEQUENCE { responseStatus ENUMERATED }, with no responseBytes.
      assert.deepEqual([...der], [0x30, 0x03, 0x0a, 0x01, code]);
      if (!requirePeer(t, "openssl")) return;
      const path = join(dir, `error-${status}.der`);
      writeFileSync(path, der);
      const result = openssl(["ocsp", "-respin", path, "-resp_text", "-noverify"]);
      assert.match(result.output, new RegExp(`Responder Error: ${status} \\(${code}\\)`, "i"));
    });
  }
});

describe("buildOcspResponse", () => {
  let ca: TestCa;
  let info: OcspRequestInfo;

  before(async () => {
    ca = await makeCa("ecdsa-p256");
    info = parseOcspRequest(encodeRequest([certId()], [new Uint8Array([0x04, 0x02, 0xab, 0xcd])]));
  });

  function parseBasic(der: Uint8Array): BasicOCSPResponse {
    const response = AsnConvert.parse(der, OCSPResponse);
    assert.equal(response.responseStatus, 0);
    assert.ok(response.responseBytes);
    return AsnConvert.parse(response.responseBytes.response.buffer, BasicOCSPResponse);
  }

  it("echoes CertID and nonce bytes", async () => {
    const der = await buildOcspResponse({
      signer: ca,
      responses: statuses(info, [{ status: "good" }]),
      producedAt: new Date(),
      nonce: info.nonce,
    });
    const basic = parseBasic(der);
    const [single] = basic.tbsResponseData.responses;
    assert.ok(single);
    assert.deepEqual(new Uint8Array(AsnConvert.serialize(single.certID)), info.certIds[0]?.der);
    const [extension] = basic.tbsResponseData.responseExtensions ?? [];
    assert.deepEqual(new Uint8Array(extension?.extnValue.buffer ?? []), info.nonce);
    assert.equal(basic.certs, undefined);
  });

  it("byKey responder ID hashes key", async () => {
    const der = await buildOcspResponse({
      signer: ca,
      responses: statuses(info, [{ status: "good" }]),
      producedAt: new Date(),
      responderId: "key",
    });
    const basic = parseBasic(der);
    const spki = (await crypto.subtle.exportKey("raw", ca.publicKey)) as ArrayBuffer;
    const expected = createHash("sha1").update(Buffer.from(spki)).digest();
    const byKey = basic.tbsResponseData.responderID.byKey;
    assert.ok(byKey);
    assert.deepEqual(Buffer.from(byKey.buffer), expected);
  });

  it("omits unspecified revocation reason", async () => {
    const der = await buildOcspResponse({
      signer: ca,
      responses: statuses(info, [
        { status: "revoked", revokedAt: new Date(), reason: "unspecified" },
      ]),
      producedAt: new Date(),
    });
    const revoked = parseBasic(der).tbsResponseData.responses[0]?.certStatus.revoked;
    assert.ok(revoked);
    assert.equal(revoked.revocationReason, undefined);
  });

  it("fail empty response list", async () => {
    await assert.rejects(
      buildOcspResponse({ signer: ca, responses: [], producedAt: new Date() }),
      (error: unknown) => error instanceof KeywardError && error.code === "invalid_request",
    );
  });

  it("fail nextUpdate before thisUpdate", async () => {
    const [certId] = info.certIds;
    assert.ok(certId);
    const now = Date.now();
    await assert.rejects(
      buildOcspResponse({
        signer: ca,
        responses: [
          {
            certId,
            status: { status: "good" },
            thisUpdate: new Date(now),
            nextUpdate: new Date(now - HOUR),
          },
        ],
        producedAt: new Date(now),
      }),
      /nextUpdate is earlier than thisUpdate/,
    );
  });
});
