import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import * as x509 from "../../../../src/engines/pki/x509.ts";
import type { TestApp } from "../../../helpers/app.ts";
import { createPkiApp, ok } from "../fixtures.ts";

// A certificate whose issuer was deleted can still be revoked. Its record
// is marked revoked, but no issuer of the mount can sign a CRL that lists it.

interface IssuedCertificate {
  serial_number: string;
  certificate: string;
  private_key: string;
}

describe("revocation after issuer deletion", () => {
  let t: TestApp;

  before(async () => {
    t = await createPkiApp();
    for (const [commonName, issuerName] of [
      ["Kept Root", "kept"],
      ["Deleted Root", "deleted"],
    ]) {
      await ok(t, "POST", "/v1/pki/root/generate/internal", {
        common_name: commonName,
        key_type: "ec",
        ttl: "8760h",
        issuer_name: issuerName,
      });
    }
    await ok(t, "POST", "/v1/pki/roles/web", {
      allowed_domains: "example.test",
      allow_subdomains: true,
      key_type: "ec",
      ttl: "1h",
    });
  });

  after(async () => {
    await t.close();
  });

  /** Issues `count` certificates from the issuer "deleted", then deletes that issuer. */
  async function issueThenDelete(count: number): Promise<IssuedCertificate[]> {
    const issued: IssuedCertificate[] = [];
    for (let index = 0; index < count; index++) {
      issued.push(
        (await ok(t, "POST", "/v1/pki/issuer/deleted/issue/web", {
          common_name: `orphan${index}.example.test`,
        })) as IssuedCertificate,
      );
    }
    const deleted = await t.request({ method: "DELETE", url: "/v1/pki/issuer/deleted" });
    assert.equal(deleted.statusCode, 204, deleted.body);
    return issued;
  }

  /** Posts `payload` to `path` of mount `pki` (`revoke` or `revoke-with-key`). */
  function revoke(path: string, payload: Record<string, string>) {
    return t.request({ method: "POST", url: `/v1/pki/${path}`, payload });
  }

  async function crlSerials(): Promise<string[]> {
    const response = await t.request({
      method: "GET",
      url: "/v1/pki/issuer/kept/crl/der",
      token: null,
    });
    assert.equal(response.statusCode, 200, response.body);
    return new x509.X509Crl(response.rawPayload).entries.map((entry) => entry.serialNumber);
  }

  it("revokes by serial, certificate and key", async () => {
    const [bySerial, byCertificate, byKey] = await issueThenDelete(3);

    const first = await revoke("revoke", { serial_number: bySerial!.serial_number });
    const retry = await revoke("revoke", { serial_number: bySerial!.serial_number });
    const certificate = await revoke("revoke", { certificate: byCertificate!.certificate });
    const withKey = await revoke("revoke-with-key", {
      certificate: byKey!.certificate,
      private_key: byKey!.private_key,
    });

    assert.equal(first.statusCode, 200, first.body);
    assert.equal(retry.statusCode, 200, retry.body);
    assert.equal(retry.json().data.revocation_time, first.json().data.revocation_time);
    assert.equal(certificate.statusCode, 200, certificate.body);
    assert.equal(withKey.statusCode, 200, withKey.body);
    for (const entry of [bySerial!, byCertificate!, byKey!]) {
      const read = await ok(t, "GET", `/v1/pki/cert/${entry.serial_number}`);
      assert.ok(read.revocation_time > 0, entry.serial_number);
    }
    const listed = await crlSerials();
    for (const entry of [bySerial!, byCertificate!, byKey!]) {
      const plain = entry.serial_number.replaceAll(":", "");
      assert.ok(!listed.includes(plain), `${plain} on the CRL of another issuer`);
    }
  });
});
