import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { TestApp } from "../../helpers/app.ts";
import { requirePeer } from "../../helpers/peers.ts";
import {
  derToPem,
  issuerIds,
  type KeyedCertificate,
  mountPki,
  openssl,
  pemBody,
  pendingIntermediate,
  readText,
  selfSigned,
} from "./ca-import-fixtures.ts";
import { createPkiApp, ok, tempFiles } from "./fixtures.ts";

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
  let t: TestApp;
  const files = tempFiles();
  let root: KeyedCertificate;
  let mounts = 0;

  before(async () => {
    t = await createPkiApp();
  });
  after(async () => {
    await t.close();
    files.cleanup();
  });

  function fixtures(): void {
    root ??= selfSigned(files, "point-root");
  }

  async function newMount(): Promise<string> {
    const mount = `point-${mounts++}`;
    await mountPki(t, mount);
    return mount;
  }

  for (const form of [0x06, 0x07]) {
    it(`bundle rejects hybrid form 0${form.toString(16)}`, async (context) => {
      if (!requirePeer(context, "openssl")) return;
      fixtures();
      const mount = await newMount();

      const response = await t.request({
        method: "POST",
        url: `/v1/${mount}/issuers/import/bundle`,
        payload: { pem_bundle: withPointForm(root.certificatePem, form) },
      });

      assert.equal(response.statusCode, 400, response.body);
      assert.equal(response.json().code, "invalid_certificate");
      assert.equal(response.json().field, "pem_bundle");
      assert.deepEqual(await issuerIds(t, mount), []);
    });
  }

  it("set-signed rejects hybrid chain certificate", async (context) => {
    if (!requirePeer(context, "openssl")) return;
    fixtures();
    const mount = await newMount();
    const csr = await pendingIntermediate(t, mount);
    const csrPath = files.write(`${mount}.csr`, csr);
    const extensionsPath = files.write(`${mount}.ext`, "basicConstraints=critical,CA:TRUE\n");
    const intermediatePath = join(files.dir, `${mount}.pem`);
    openssl([
      "x509",
      "-req",
      "-in",
      csrPath,
      "-CA",
      root.certificatePath,
      "-CAkey",
      root.keyPath,
      "-days",
      "30",
      "-extfile",
      extensionsPath,
      "-out",
      intermediatePath,
    ]);

    const response = await t.request({
      method: "POST",
      url: `/v1/${mount}/intermediate/set-signed`,
      payload: {
        certificate: readText(intermediatePath) + withPointForm(root.certificatePem, 0x06),
      },
    });

    assert.equal(response.statusCode, 400, response.body);
    assert.equal(response.json().code, "invalid_certificate");
    assert.equal(response.json().field, "certificate");
    assert.deepEqual(await issuerIds(t, mount), []);
  });

  it("compressed point matches pending key", async (context) => {
    if (!requirePeer(context, "openssl")) return;
    fixtures();
    const mount = await newMount();
    const exported = await ok(t, "POST", `/v1/${mount}/intermediate/generate/exported`, {
      common_name: "Compressed intermediate",
      key_type: "ec",
    });
    const keyPath = files.write(`${mount}.key`, exported.private_key);
    const compressedPath = join(files.dir, `${mount}-compressed.pub`);
    openssl(["ec", "-in", keyPath, "-pubout", "-conv_form", "compressed", "-out", compressedPath]);
    const csrPath = files.write(`${mount}.csr`, exported.csr);
    const extensionsPath = files.write(`${mount}.ext`, "basicConstraints=critical,CA:TRUE\n");
    const intermediatePath = join(files.dir, `${mount}.pem`);
    openssl([
      "x509",
      "-req",
      "-in",
      csrPath,
      "-force_pubkey",
      compressedPath,
      "-CA",
      root.certificatePath,
      "-CAkey",
      root.keyPath,
      "-days",
      "30",
      "-extfile",
      extensionsPath,
      "-out",
      intermediatePath,
    ]);

    const response = await t.request({
      method: "POST",
      url: `/v1/${mount}/intermediate/set-signed`,
      payload: { certificate: readText(intermediatePath) + root.certificatePem },
    });

    assert.equal(response.statusCode, 200, response.body);
    const data = response.json().data;
    assert.equal(data.mapping[data.imported_issuers[0]], exported.key_id);
  });
});
