import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { requirePeer } from "../../helpers/peers.ts";
import {
  caImportApp,
  issuerIds,
  type KeyedCertificate,
  signedIntermediate,
} from "./ca-import-fixtures.ts";
import { ok } from "./fixtures.ts";

// A rejected intermediate/set-signed request stores nothing. Each case
// runs on its own mount whose only state is the key from
// intermediate/generate, so any issuer left after the 400 came from the
// rejected request.

/** Certificates the rejected chains are built from. */
interface Certificates {
  root: KeyedCertificate;
  unrelated: KeyedCertificate;
  leaf: KeyedCertificate;
  smallRsa: KeyedCertificate;
}

/** A set-signed request that must fail with 400 and the given error `code` or `field`. */
interface Rejection {
  name: string;
  /** Builds the `certificate` value from the fixtures and the mount's intermediate signed by `root`. */
  certificate(certificates: Certificates, intermediate: string): string;
  expected: { code: string } | { field: string };
}

const REJECTIONS: Rejection[] = [
  {
    name: "stores no issuer for a foreign certificate",
    certificate: ({ unrelated }) => unrelated.certificatePem,
    expected: { field: "certificate" },
  },
  {
    name: "stores no issuer for a reversed chain",
    certificate: ({ root }, intermediate) => root.certificatePem + intermediate,
    expected: { field: "certificate" },
  },
  {
    name: "stores no issuer when a chain certificate is not a CA",
    certificate: ({ leaf }, intermediate) => intermediate + leaf.certificatePem,
    expected: { code: "invalid_certificate" },
  },
  {
    name: "stores no issuer when a chain key is unsupported",
    certificate: ({ smallRsa }, intermediate) => intermediate + smallRsa.certificatePem,
    expected: { code: "unsupported_key_type" },
  },
  {
    name: "rejects a key without a certificate",
    certificate: ({ root }) => root.keyPem,
    expected: { field: "certificate" },
  },
];

describe("set-signed rejection", () => {
  const pki = caImportApp("set-signed");

  function certificates(): Certificates {
    return {
      root: pki.certificate("external-root"),
      unrelated: pki.certificate("unrelated-root"),
      leaf: pki.certificate("leaf", { ca: false }),
      smallRsa: pki.certificate("rsa-1024-root", { keyArgs: ["-newkey", "rsa:1024"] }),
    };
  }

  for (const rejection of REJECTIONS) {
    it(rejection.name, async (context) => {
      if (!requirePeer(context, "openssl")) return;
      const fixtures = certificates();
      const mount = await pki.newMount();
      const intermediate = await signedIntermediate(pki.t, pki.files, mount, fixtures.root);

      const response = await pki.setSigned(mount, rejection.certificate(fixtures, intermediate));

      assert.equal(response.statusCode, 400, response.body);
      for (const [member, value] of Object.entries(rejection.expected)) {
        assert.equal(response.json()[member], value, member);
      }
      assert.deepEqual(await issuerIds(pki.t, mount), []);
    });
  }

  it("rejected certificate never becomes default", async (context) => {
    if (!requirePeer(context, "openssl")) return;
    const { root, unrelated } = certificates();
    const mount = await pki.newMount();
    const intermediate = await signedIntermediate(pki.t, pki.files, mount, root);
    const rejected = await pki.setSigned(mount, unrelated.certificatePem);
    assert.equal(rejected.statusCode, 400, rejected.body);

    const imported = await ok(pki.t, "POST", `/v1/${mount}/intermediate/set-signed`, {
      certificate: intermediate + root.certificatePem,
    });

    assert.equal(imported.imported_issuers.length, 2);
    const defaultIssuer = await ok(pki.t, "GET", `/v1/${mount}/issuer/default`);
    assert.equal(defaultIssuer.issuer_id, imported.imported_issuers[0]);
  });
});
