import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { requirePeer } from "../../helpers/peers.ts";
import { openPkiScaleApp } from "../../scale/pki-scale-app.ts";
import { caImportApp, mountPki, signCsr, signedIntermediate } from "./ca-import-fixtures.ts";
import { ok, opensslCsr } from "./fixtures.ts";

// An imported issuer's stored chain keeps only the bundle's certificates
// that signed it, and is served when the issuer's parent is not an issuer
// of the mount. Importing a bundle reads the stored issuers once, so its
// storage reads grow linearly with its size.

describe("bundle chains", () => {
  const pki = caImportApp("chain");

  function certificates() {
    return { root: pki.certificate("chain-root"), unrelated: pki.certificate("chain-unrelated") };
  }

  it("serves no unrelated certificate as chain", async (context) => {
    if (!requirePeer(context, "openssl")) return;
    const { root, unrelated } = certificates();
    await mountPki(pki.t, "chain-extra");
    const intermediate = await signedIntermediate(pki.t, pki.files, "chain-extra", root);
    // The parent (root) is left out, so the stored chain is what gets served.
    const imported = await ok(pki.t, "POST", "/v1/chain-extra/intermediate/set-signed", {
      certificate: intermediate + unrelated.certificatePem,
    });
    const intermediateId = imported.imported_issuers[0];

    const issuer = await ok(pki.t, "GET", `/v1/chain-extra/issuer/${intermediateId}`);

    assert.ok(
      !issuer.ca_chain.some((pem: string) => pem.trim() === unrelated.certificatePem.trim()),
      `ca_chain lists a certificate that did not sign the intermediate:\n${issuer.ca_chain.join("\n")}`,
    );
  });

  it("keeps the signing root in the chain", async (context) => {
    if (!requirePeer(context, "openssl")) return;
    const { root, unrelated } = certificates();
    await mountPki(pki.t, "chain-kept");
    const intermediate = await signedIntermediate(pki.t, pki.files, "chain-kept", root);
    const imported = await ok(pki.t, "POST", "/v1/chain-kept/intermediate/set-signed", {
      certificate: intermediate + unrelated.certificatePem + root.certificatePem,
    });
    // Without the root as an issuer of the mount, the stored chain is what gets served.
    const deleted = await pki.t.request({
      method: "DELETE",
      url: `/v1/chain-kept/issuer/${imported.imported_issuers[2]}`,
    });
    assert.equal(deleted.statusCode, 204, deleted.body);

    const issuer = await ok(pki.t, "GET", `/v1/chain-kept/issuer/${imported.imported_issuers[0]}`);

    const chain = issuer.ca_chain.map((pem: string) => pem.trim());
    assert.deepEqual(chain, [intermediate.trim(), root.certificatePem.trim()]);
  });

  it("rejects more than 100 certificates", async (context) => {
    if (!requirePeer(context, "openssl")) return;
    const { root } = certificates();
    await mountPki(pki.t, "chain-cap");

    const response = await pki.importBundle("chain-cap", root.certificatePem.repeat(101));

    assert.equal(response.statusCode, 400, response.body);
    assert.equal(response.json().code, "invalid_field");
    assert.equal(response.json().field, "pem_bundle");
  });

  it("bundle storage reads grow linearly", async (context) => {
    if (!requirePeer(context, "openssl")) return;
    const { root } = certificates();
    // CA certificates of one subject and key, distinguished by serial, signed by a CA the mount lacks.
    const { csr } = opensslCsr(pki.files, "many", "/CN=many");
    const bundle: string[] = [];
    for (let serial = 1; serial <= 60; serial++) {
      bundle.push(signCsr(pki.files, `many-${serial}`, csr, root, { serial: 1000 + serial }));
    }

    const readsFor = async (count: number): Promise<number> => {
      const path = join(pki.files.dir, `rows-${count}.db`);
      const scale = await openPkiScaleApp(path);
      try {
        const mounted = await scale.request({
          method: "POST",
          url: "/v1/sys/mounts/rows",
          payload: { type: "pki" },
        });
        assert.equal(mounted.statusCode, 204, mounted.body);
        scale.storage.reset();
        const response = await scale.request({
          method: "POST",
          url: "/v1/rows/issuers/import/bundle",
          payload: { pem_bundle: bundle.slice(0, count).join("") },
        });
        assert.equal(response.statusCode, 200, response.body);
        return scale.storage.counts().read;
      } finally {
        await scale.close();
        rmSync(path, { force: true });
      }
    };
    const small = await readsFor(20);
    const large = await readsFor(60);

    // Three times the certificates should cost about three times the reads; n² growth gives nine.
    assert.ok(
      large <= small * 4,
      `importing 20 certificates read ${small} rows, 60 read ${large} rows`,
    );
  });
});
