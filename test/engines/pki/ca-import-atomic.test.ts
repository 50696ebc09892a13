import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { TestApp } from "../../helpers/app.ts";
import { requirePeer } from "../../helpers/peers.ts";
import {
  issuerIds,
  type KeyedCertificate,
  mountPki,
  openssl,
  readText,
  selfSigned,
} from "./ca-import-fixtures.ts";
import { createPkiApp, ok, tempFiles } from "./fixtures.ts";

// A rejected issuers/import/bundle or config/ca request stores nothing.
// Keys have no list route, so a key left behind shows when its certificate
// is imported alone afterwards: the new issuer is linked to the stored key.
// A bundle of keys alone is imported, as Vault imports it.

describe("bundle import", () => {
  let t: TestApp;
  const files = tempFiles();
  let root: KeyedCertificate;
  let other: KeyedCertificate;
  let leaf: KeyedCertificate;
  let mounts = 0;

  before(async () => {
    t = await createPkiApp();
  });
  after(async () => {
    await t.close();
    files.cleanup();
  });

  function fixtures(): void {
    if (root) return;
    root = selfSigned(files, "bundle-root");
    other = selfSigned(files, "bundle-other");
    leaf = selfSigned(files, "bundle-leaf", { ca: false });
  }

  async function newMount(): Promise<string> {
    const mount = `bundle-${mounts++}`;
    await mountPki(t, mount);
    return mount;
  }

  async function importBundle(mount: string, pemBundle: string, path = "issuers/import/bundle") {
    return t.request({
      method: "POST",
      url: `/v1/${mount}/${path}`,
      payload: { pem_bundle: pemBundle },
    });
  }

  /** Imports `certificate` alone and returns the key id its new issuer is linked to ("" for none). */
  async function linkedKeyOf(mount: string, certificate: string): Promise<string> {
    const data = await ok(t, "POST", `/v1/${mount}/issuers/import/bundle`, {
      pem_bundle: certificate,
    });
    const [issuerId] = [...data.imported_issuers, ...data.existing_issuers];
    return data.mapping[issuerId];
  }

  it("imports a key-only bundle", async (context) => {
    if (!requirePeer(context, "openssl")) return;
    fixtures();
    const mount = await newMount();

    const response = await importBundle(mount, root.keyPem);

    assert.equal(response.statusCode, 200, response.body);
    const data = response.json().data;
    assert.equal(data.imported_keys.length, 1);
    assert.deepEqual(data.imported_issuers, []);
    assert.equal(await linkedKeyOf(mount, root.certificatePem), data.imported_keys[0]);
  });

  it("imports a SEC 1 key alone", async (context) => {
    if (!requirePeer(context, "openssl")) return;
    fixtures();
    const mount = await newMount();
    const sec1Path = `${files.dir}/bundle-root-sec1.key`;
    openssl(["ec", "-in", root.keyPath, "-out", sec1Path]);
    const sec1 = readText(sec1Path);
    assert.match(sec1, /BEGIN EC PRIVATE KEY/);

    const response = await importBundle(mount, sec1, "config/ca");

    assert.equal(response.statusCode, 200, response.body);
    const [keyId] = response.json().data.imported_keys;
    assert.equal(await linkedKeyOf(mount, root.certificatePem), keyId);
  });

  it("key alone links a stored issuer", async (context) => {
    if (!requirePeer(context, "openssl")) return;
    fixtures();
    const mount = await newMount();
    const certificateOnly = await ok(t, "POST", `/v1/${mount}/issuers/import/bundle`, {
      pem_bundle: root.certificatePem,
    });
    const [issuerId] = certificateOnly.imported_issuers;
    assert.equal(certificateOnly.mapping[issuerId], "");

    const keyOnly = await ok(t, "POST", `/v1/${mount}/issuers/import/bundle`, {
      pem_bundle: root.keyPem,
    });

    const issuer = await ok(t, "GET", `/v1/${mount}/issuer/${issuerId}`);
    assert.equal(issuer.key_id, keyOnly.imported_keys[0]);
  });

  it("rejects a bundle without keys or certificates", async () => {
    const mount = await newMount();
    const parameters =
      "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n";

    const response = await importBundle(mount, parameters);

    assert.equal(response.statusCode, 400, response.body);
    assert.equal(response.json().field, "pem_bundle");
  });

  it("non-CA certificate keeps no key", async (context) => {
    if (!requirePeer(context, "openssl")) return;
    fixtures();
    const mount = await newMount();

    const response = await importBundle(mount, root.keyPem + leaf.certificatePem);

    assert.equal(response.statusCode, 400, response.body);
    assert.equal(response.json().code, "invalid_certificate");
    assert.equal(await linkedKeyOf(mount, root.certificatePem), "");
  });

  it("non-CA second certificate keeps no issuer", async (context) => {
    if (!requirePeer(context, "openssl")) return;
    fixtures();
    const mount = await newMount();

    const response = await importBundle(
      mount,
      other.certificatePem + other.keyPem + leaf.certificatePem,
      "config/ca",
    );

    assert.equal(response.statusCode, 400, response.body);
    assert.equal(response.json().field, "pem_bundle");
    assert.deepEqual(await issuerIds(t, mount), []);
    assert.equal(await linkedKeyOf(mount, other.certificatePem), "");
  });

  it("accepts SEC 1 and PKCS#8 keys alike", async (context) => {
    if (!requirePeer(context, "openssl")) return;
    fixtures();
    const sec1Path = `${files.dir}/bundle-other-sec1.key`;
    openssl(["ec", "-in", other.keyPath, "-out", sec1Path]);
    for (const [name, keyPem] of [
      ["sec1", readText(sec1Path)],
      ["pkcs8", other.keyPem],
    ] as const) {
      const mount = await newMount();
      const data = await ok(t, "POST", `/v1/${mount}/issuers/import/bundle`, {
        pem_bundle: other.certificatePem + keyPem,
      });
      assert.equal(data.imported_keys.length, 1, name);
      assert.equal(data.mapping[data.imported_issuers[0]], data.imported_keys[0], name);
    }
  });
});
