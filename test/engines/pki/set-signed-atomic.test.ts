import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { TestApp } from "../../helpers/app.ts";
import { requirePeer } from "../../helpers/peers.ts";
import {
  issuerIds,
  type KeyedCertificate,
  mountPki,
  pendingIntermediate,
  selfSigned,
  signCsr,
} from "./ca-import-fixtures.ts";
import { createPkiApp, ok, tempFiles } from "./fixtures.ts";

// A rejected intermediate/set-signed request stores nothing. Each case
// runs on its own mount whose only state is the key from
// intermediate/generate, so any issuer left after the 400 came from the
// rejected request.

describe("set-signed rejection", () => {
  let t: TestApp;
  const files = tempFiles();
  let root: KeyedCertificate;
  let unrelated: KeyedCertificate;
  let leaf: KeyedCertificate;
  let smallRsa: KeyedCertificate;
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
    root = selfSigned(files, "external-root");
    unrelated = selfSigned(files, "unrelated-root");
    leaf = selfSigned(files, "leaf", { ca: false });
    smallRsa = selfSigned(files, "rsa-1024-root", {
      keyArgs: ["-newkey", "rsa:1024"],
    });
  }

  async function newMount(): Promise<string> {
    const mount = `set-signed-${mounts++}`;
    await mountPki(t, mount);
    return mount;
  }

  async function setSigned(mount: string, certificate: string) {
    return t.request({
      method: "POST",
      url: `/v1/${mount}/intermediate/set-signed`,
      payload: { certificate },
    });
  }

  it("stores no issuer for a foreign certificate", async (context) => {
    if (!requirePeer(context, "openssl")) return;
    fixtures();
    const mount = await newMount();
    await pendingIntermediate(t, mount);

    const response = await setSigned(mount, unrelated.certificatePem);

    assert.equal(response.statusCode, 400, response.body);
    assert.equal(response.json().field, "certificate");
    assert.deepEqual(await issuerIds(t, mount), []);
  });

  it("stores no issuer for a reversed chain", async (context) => {
    if (!requirePeer(context, "openssl")) return;
    fixtures();
    const mount = await newMount();
    const csr = await pendingIntermediate(t, mount);
    const intermediate = signCsr(files, `${mount}-intermediate`, csr, root);

    const response = await setSigned(mount, root.certificatePem + intermediate);

    assert.equal(response.statusCode, 400, response.body);
    assert.equal(response.json().field, "certificate");
    assert.deepEqual(await issuerIds(t, mount), []);
  });

  it("stores no issuer when a chain certificate is not a CA", async (context) => {
    if (!requirePeer(context, "openssl")) return;
    fixtures();
    const mount = await newMount();
    const csr = await pendingIntermediate(t, mount);
    const intermediate = signCsr(files, `${mount}-intermediate`, csr, root);

    const response = await setSigned(mount, intermediate + leaf.certificatePem);

    assert.equal(response.statusCode, 400, response.body);
    assert.equal(response.json().code, "invalid_certificate");
    assert.deepEqual(await issuerIds(t, mount), []);
  });

  it("stores no issuer when a chain key is unsupported", async (context) => {
    if (!requirePeer(context, "openssl")) return;
    fixtures();
    const mount = await newMount();
    const csr = await pendingIntermediate(t, mount);
    const intermediate = signCsr(files, `${mount}-intermediate`, csr, root);

    const response = await setSigned(mount, intermediate + smallRsa.certificatePem);

    assert.equal(response.statusCode, 400, response.body);
    assert.equal(response.json().code, "unsupported_key_type");
    assert.deepEqual(await issuerIds(t, mount), []);
  });

  it("rejects a key without a certificate", async (context) => {
    if (!requirePeer(context, "openssl")) return;
    fixtures();
    const mount = await newMount();
    await pendingIntermediate(t, mount);

    const response = await setSigned(mount, root.keyPem);

    assert.equal(response.statusCode, 400, response.body);
    assert.equal(response.json().field, "certificate");
    assert.deepEqual(await issuerIds(t, mount), []);
  });

  it("rejected certificate never becomes default", async (context) => {
    if (!requirePeer(context, "openssl")) return;
    fixtures();
    const mount = await newMount();
    const csr = await pendingIntermediate(t, mount);
    const intermediate = signCsr(files, `${mount}-intermediate`, csr, root);
    const rejected = await setSigned(mount, unrelated.certificatePem);
    assert.equal(rejected.statusCode, 400, rejected.body);

    const imported = await ok(t, "POST", `/v1/${mount}/intermediate/set-signed`, {
      certificate: intermediate + root.certificatePem,
    });

    assert.equal(imported.imported_issuers.length, 2);
    const defaultIssuer = await ok(t, "GET", `/v1/${mount}/issuer/default`);
    assert.equal(defaultIssuer.issuer_id, imported.imported_issuers[0]);
  });
});
