import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { AsnConvert } from "@peculiar/asn1-schema";
import { Certificate } from "@peculiar/asn1-x509";
import { ok } from "../fixtures.ts";
import { type LeafWithKey, revokeWithCertificateKey, signWithNewKey } from "./certificate-key.ts";
import { type AcmeTestServer, rawAcmeClient, startAcmeServer, TEST_DOMAIN } from "./fixtures.ts";
import type { RawAcmeClient } from "./jws-client.ts";

const PROBLEM = "urn:ietf:params:acme:error:";

/** Returns `der` re-encoded with `serial` as the content octets of its serial number INTEGER. */
function withSerial(der: Buffer, serial: Uint8Array): Buffer {
  const certificate = AsnConvert.parse(der, Certificate);
  certificate.tbsCertificate.serialNumber = serial.slice().buffer;
  return Buffer.from(AsnConvert.serialize(certificate));
}

describe("ACME revokeCert with the certificate key", () => {
  let server: AcmeTestServer;
  let client: RawAcmeClient;

  before(async () => {
    server = await startAcmeServer();
    client = await rawAcmeClient(server);
  });

  after(async () => {
    await server?.close();
  });

  async function revokedAt(leaf: LeafWithKey): Promise<string | undefined> {
    const record = await server.t.keyward.pki("pki")!.inventory.find(leaf.serialHex);
    return record?.revokedAt;
  }

  it("revokes after issuer deletion", async () => {
    await ok(server.t, "POST", "/v1/pki/root/generate/internal", {
      common_name: "Deleted Root",
      key_type: "ec",
      ttl: "8760h",
      issuer_name: "deleted",
    });
    const leaf = await signWithNewKey(
      server.t,
      "/v1/pki/issuer/deleted/sign/web",
      `orphan.${TEST_DOMAIN}`,
    );
    const deleted = await server.t.request({ method: "DELETE", url: "/v1/pki/issuer/deleted" });
    assert.equal(deleted.statusCode, 204, deleted.body);
    const certificate = leaf.der.toString("base64url");

    const response = await revokeWithCertificateKey(client, leaf, { certificate });
    const again = await revokeWithCertificateKey(client, leaf, { certificate });

    // No issuer of the mount can sign a CRL for it, so it is revoked without one.
    assert.equal(response.statusCode, 200, response.body);
    assert.notEqual(await revokedAt(leaf), undefined);
    assert.equal(again.statusCode, 400, again.body);
    assert.equal(again.json().type, `${PROBLEM}alreadyRevoked`, again.body);
  });

  for (const [name, serial] of [
    ["empty serial", new Uint8Array(0)],
    ["21-octet serial", new Uint8Array(21).fill(0x41)],
    ["2000-octet serial", new Uint8Array(2000).fill(0x41)],
  ] as const) {
    it(`rejects ${name} as malformed`, async () => {
      const leaf = await signWithNewKey(server.t, "/v1/pki/sign/web", `serial.${TEST_DOMAIN}`);
      const forged = withSerial(leaf.der, serial);

      const response = await revokeWithCertificateKey(client, leaf, {
        certificate: forged.toString("base64url"),
      });

      assert.equal(response.statusCode, 400, response.body);
      const problem = response.json();
      assert.equal(problem.type, `${PROBLEM}malformed`, response.body);
      assert.match(problem.detail, /serial number must be 1 to 20 octets/, response.body);
      assert.doesNotMatch(problem.detail, /storage|pki\/certs\//, response.body);
      assert.equal(await revokedAt(leaf), undefined);
    });
  }

  it("accepts 20-octet serial with sign octet", async () => {
    const leaf = await signWithNewKey(server.t, "/v1/pki/sign/web", `sign.${TEST_DOMAIN}`);
    // 00 and 20 octets whose first bit is set: a positive 20-octet serial, unknown to the mount.
    const forged = withSerial(leaf.der, Uint8Array.of(0, ...new Uint8Array(20).fill(0xff)));

    const response = await revokeWithCertificateKey(client, leaf, {
      certificate: forged.toString("base64url"),
    });

    assert.equal(response.statusCode, 403, response.body);
    assert.equal(response.json().type, `${PROBLEM}unauthorized`, response.body);
  });

  for (const [name, trailer] of [
    ["zero bytes", Buffer.of(0, 0)],
    ["a second certificate", undefined],
  ] as const) {
    it(`rejects DER followed by ${name}`, async () => {
      const leaf = await signWithNewKey(server.t, "/v1/pki/sign/web", `trailing.${TEST_DOMAIN}`);
      const padded = Buffer.concat([leaf.der, trailer ?? leaf.der]);

      const response = await revokeWithCertificateKey(client, leaf, {
        certificate: padded.toString("base64url"),
      });

      assert.equal(response.statusCode, 400, response.body);
      assert.equal(response.json().type, `${PROBLEM}malformed`, response.body);
      assert.match(response.json().detail, /no bytes after it/, response.body);
      assert.equal(await revokedAt(leaf), undefined);
    });
  }
});
