import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { requirePeer } from "../../helpers/peers.ts";
import { caImportApp, issuerIds, openssl, readText } from "./ca-import-fixtures.ts";
import { ok } from "./fixtures.ts";

// A rejected issuers/import/bundle or config/ca request stores nothing.
// Keys have no list route, so a key left behind shows when its certificate
// is imported alone afterwards: the new issuer is linked to the stored key.
// A bundle of keys alone is imported, as Vault imports it.

describe("bundle import", () => {
  const pki = caImportApp("bundle");

  function certificates() {
    return {
      root: pki.certificate("bundle-root"),
      other: pki.certificate("bundle-other"),
      leaf: pki.certificate("bundle-leaf", { ca: false }),
    };
  }

  /** Imports `certificate` alone and returns the key id its new issuer is linked to ("" for none). */
  async function linkedKeyOf(mount: string, certificate: string): Promise<string> {
    const data = await ok(pki.t, "POST", `/v1/${mount}/issuers/import/bundle`, {
      pem_bundle: certificate,
    });
    const [issuerId] = [...data.imported_issuers, ...data.existing_issuers];
    return data.mapping[issuerId];
  }

  it("imports a key-only bundle", async (context) => {
    if (!requirePeer(context, "openssl")) return;
    const { root } = certificates();
    const mount = await pki.newMount();

    const response = await pki.importBundle(mount, root.keyPem);

    assert.equal(response.statusCode, 200, response.body);
    const data = response.json().data;
    assert.equal(data.imported_keys.length, 1);
    assert.deepEqual(data.imported_issuers, []);
    assert.equal(await linkedKeyOf(mount, root.certificatePem), data.imported_keys[0]);
  });

  it("imports a SEC 1 key alone", async (context) => {
    if (!requirePeer(context, "openssl")) return;
    const { root } = certificates();
    const mount = await pki.newMount();
    const sec1Path = `${pki.files.dir}/bundle-root-sec1.key`;
    openssl(["ec", "-in", root.keyPath, "-out", sec1Path]);
    const sec1 = readText(sec1Path);
    assert.match(sec1, /BEGIN EC PRIVATE KEY/);

    const response = await pki.importBundle(mount, sec1, "config/ca");

    assert.equal(response.statusCode, 200, response.body);
    const [keyId] = response.json().data.imported_keys;
    assert.equal(await linkedKeyOf(mount, root.certificatePem), keyId);
  });

  it("key alone links a stored issuer", async (context) => {
    if (!requirePeer(context, "openssl")) return;
    const { root } = certificates();
    const mount = await pki.newMount();
    const certificateOnly = await ok(pki.t, "POST", `/v1/${mount}/issuers/import/bundle`, {
      pem_bundle: root.certificatePem,
    });
    const [issuerId] = certificateOnly.imported_issuers;
    assert.equal(certificateOnly.mapping[issuerId], "");

    const keyOnly = await ok(pki.t, "POST", `/v1/${mount}/issuers/import/bundle`, {
      pem_bundle: root.keyPem,
    });

    const issuer = await ok(pki.t, "GET", `/v1/${mount}/issuer/${issuerId}`);
    assert.equal(issuer.key_id, keyOnly.imported_keys[0]);
  });

  it("rejects a bundle without keys or certificates", async () => {
    const mount = await pki.newMount();
    const parameters =
      "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n";

    const response = await pki.importBundle(mount, parameters);

    assert.equal(response.statusCode, 400, response.body);
    assert.equal(response.json().field, "pem_bundle");
  });

  it("non-CA certificate keeps no key", async (context) => {
    if (!requirePeer(context, "openssl")) return;
    const { root, leaf } = certificates();
    const mount = await pki.newMount();

    const response = await pki.importBundle(mount, root.keyPem + leaf.certificatePem);

    assert.equal(response.statusCode, 400, response.body);
    assert.equal(response.json().code, "invalid_certificate");
    assert.equal(await linkedKeyOf(mount, root.certificatePem), "");
  });

  it("non-CA second certificate keeps no issuer", async (context) => {
    if (!requirePeer(context, "openssl")) return;
    const { other, leaf } = certificates();
    const mount = await pki.newMount();

    const response = await pki.importBundle(
      mount,
      other.certificatePem + other.keyPem + leaf.certificatePem,
      "config/ca",
    );

    assert.equal(response.statusCode, 400, response.body);
    assert.equal(response.json().field, "pem_bundle");
    assert.deepEqual(await issuerIds(pki.t, mount), []);
    assert.equal(await linkedKeyOf(mount, other.certificatePem), "");
  });

  it("accepts SEC 1 and PKCS#8 keys alike", async (context) => {
    if (!requirePeer(context, "openssl")) return;
    const { other } = certificates();
    const sec1Path = `${pki.files.dir}/bundle-other-sec1.key`;
    openssl(["ec", "-in", other.keyPath, "-out", sec1Path]);
    for (const [name, keyPem] of [
      ["sec1", readText(sec1Path)],
      ["pkcs8", other.keyPem],
    ] as const) {
      const mount = await pki.newMount();
      const data = await ok(pki.t, "POST", `/v1/${mount}/issuers/import/bundle`, {
        pem_bundle: other.certificatePem + keyPem,
      });
      assert.equal(data.imported_keys.length, 1, name);
      assert.equal(data.mapping[data.imported_issuers[0]], data.imported_keys[0], name);
    }
  });
});
