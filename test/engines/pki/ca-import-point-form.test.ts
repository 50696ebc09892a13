import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import { requirePeer } from "../../helpers/peers.ts";
import {
  caImportApp,
  derToPem,
  issuerIds,
  openssl,
  pemBody,
  signCsr,
  signedIntermediate,
} from "./ca-import-fixtures.ts";
import { ok } from "./fixtures.ts";

// CA certificates whose EC public key uses an unusual point encoding
// (SEC 1 section 2.3.3): the hybrid forms 06 and 07, which Keyward does
// not accept, and the compressed forms 02 and 03, which it does.

/** BIT STRING header of a P-256 uncompressed point: tag 03, length 66, no unused bits, form 04. */
const UNCOMPRESSED_P256_POINT = Buffer.from("03420004", "hex");

/** Returns the certificate with the first byte of its P-256 point set to `form`; the signature no longer verifies. */
function withPointForm(certificatePem: string, form: number): string {
  const der = pemBody(certificatePem);
  const at = der.indexOf(UNCOMPRESSED_P256_POINT);
  assert.ok(at > 0, "no uncompressed P-256 point in the certificate");
  der[at + 3] = form;
  return derToPem(der, "CERTIFICATE");
}

describe("CA certificates with EC point forms", () => {
  const pki = caImportApp("point");
  const root = () => pki.certificate("point-root");

  /** A request carrying a hybrid point, rejected with the certificate error on `field`. */
  interface HybridCase {
    name: string;
    field: string;
    send(mount: string): ReturnType<typeof pki.importBundle>;
  }

  const hybridCases: HybridCase[] = [
    ...[0x06, 0x07].map((form) => ({
      name: `bundle rejects hybrid form 0${form.toString(16)}`,
      field: "pem_bundle",
      send: (mount: string) => pki.importBundle(mount, withPointForm(root().certificatePem, form)),
    })),
    {
      name: "set-signed rejects hybrid chain certificate",
      field: "certificate",
      send: async (mount) => {
        const intermediate = await signedIntermediate(pki.t, pki.files, mount, root());
        return pki.setSigned(mount, intermediate + withPointForm(root().certificatePem, 0x06));
      },
    },
  ];

  for (const hybrid of hybridCases) {
    it(hybrid.name, async (context) => {
      if (!requirePeer(context, "openssl")) return;
      const mount = await pki.newMount();

      const response = await hybrid.send(mount);

      assert.equal(response.statusCode, 400, response.body);
      assert.equal(response.json().code, "invalid_certificate");
      assert.equal(response.json().field, hybrid.field);
      assert.deepEqual(await issuerIds(pki.t, mount), []);
    });
  }

  it("compressed point matches pending key", async (context) => {
    if (!requirePeer(context, "openssl")) return;
    const mount = await pki.newMount();
    const exported = await ok(pki.t, "POST", `/v1/${mount}/intermediate/generate/exported`, {
      common_name: "Compressed intermediate",
      key_type: "ec",
    });
    const keyPath = pki.files.write(`${mount}.key`, exported.private_key);
    const compressedPath = join(pki.files.dir, `${mount}-compressed.pub`);
    openssl(["ec", "-in", keyPath, "-pubout", "-conv_form", "compressed", "-out", compressedPath]);
    const intermediate = signCsr(pki.files, mount, exported.csr, root(), {
      extraArgs: ["-force_pubkey", compressedPath],
    });

    const response = await pki.setSigned(mount, intermediate + root().certificatePem);

    assert.equal(response.statusCode, 200, response.body);
    const data = response.json().data;
    assert.equal(data.mapping[data.imported_issuers[0]], exported.key_id);
  });
});
