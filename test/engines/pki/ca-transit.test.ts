import assert from "node:assert/strict";
import { createPublicKey, ECDH, X509Certificate } from "node:crypto";
import { before, describe, it } from "node:test";
import { PkiService } from "../../../src/engines/pki/service.ts";
import * as x509 from "../../../src/engines/pki/x509.ts";
import { TransitService } from "../../../src/engines/transit/service.ts";
import type { KeyType } from "../../../src/keys/types.ts";
import { MemoryBarrier } from "../../helpers/memory-barrier.ts";
import { selfSignTransitCa } from "../../helpers/transit-ca.ts";
import { keywardError } from "../../seal/fixtures.ts";

const TEN_YEARS_SECONDS = 87_600 * 3600;

/** Creates the transit key `name` and returns a self-signed CA certificate for it. */
async function caForTransitKey(transit: TransitService, name: string, type: KeyType) {
  await transit.createKey(name, { type });
  const info = await transit.readKey(name);
  const entry = info.keys[String(info.latestVersion)];
  const keySpec =
    type === "rsa-2048"
      ? ({ type: "rsa", bits: 2048 } as const)
      : type === "ed25519"
        ? ({ type: "ed25519", bits: 0 } as const)
        : type === "ecdsa-p384"
          ? ({ type: "ec", bits: 384 } as const)
          : ({ type: "ec", bits: 256 } as const);
  return selfSignTransitCa(transit, {
    name,
    publicKeyPem: (entry as { public_key: string }).public_key,
    keySpec,
    commonName: `External ${name}`,
    serialHex: "0123456789abcdef",
  });
}

describe("PKI issuers with transit keys", () => {
  const barrier = new MemoryBarrier();
  const transit = new TransitService({ barrier, mount: "transit" });
  const pki = new PkiService({
    barrier,
    mount: "pki",
    mountTtls: () => ({ defaultSeconds: 3600, maxSeconds: TEN_YEARS_SECONDS }),
    transit: (mount) => (mount === "transit" ? transit : undefined),
  });

  before(async () => {
    await pki.writeRole("web", {
      allowed_domains: "example.test",
      allow_subdomains: true,
      key_type: "ec",
      ttl: "1h",
    });
  });

  for (const type of ["ecdsa-p256", "ecdsa-p384", "rsa-2048", "ed25519"] as const) {
    it(`issues through a transit key: ${type}`, async () => {
      const caPem = await caForTransitKey(transit, `ca-${type}`, type);
      const imported = await pki.importTransitIssuer({
        certificate: caPem,
        transit_key: `ca-${type}`,
      });
      assert.equal(imported.transit_key_version, 1);
      const issued = await pki.issue(
        "web",
        { common_name: `${type}.example.test` },
        imported.issuer_id,
      );
      const leaf = new X509Certificate(issued.certificate);
      const ca = new X509Certificate(caPem);
      assert.equal(leaf.verify(ca.publicKey), true);
      assert.equal(leaf.checkIssued(ca), true);

      const issuer = await pki.issuers.resolve(imported.issuer_id);
      const crl = new x509.X509Crl(await pki.revocation.crls.crl(issuer, false));
      assert.equal(
        await crl.verify({ publicKey: new x509.X509Certificate(caPem).publicKey }),
        true,
      );
    });
  }

  it("matches a compressed-point certificate", async () => {
    await transit.createKey("compressed", { type: "ecdsa-p256" });
    const info = await transit.readKey("compressed");
    const pem = (info.keys["1"] as { public_key: string }).public_key;

    const { x, y } = createPublicKey(pem).export({ format: "jwk" });
    const point = Buffer.concat([
      Buffer.from([4]),
      Buffer.from(x!, "base64url"),
      Buffer.from(y!, "base64url"),
    ]);
    const compressed = ECDH.convertKey(point, "prime256v1", undefined, undefined, "compressed");
    // SubjectPublicKeyInfo of id-ecPublicKey on P-256 with a 33-byte point.
    const spki = Buffer.concat([
      Buffer.from("3039301306072a8648ce3d020106082a8648ce3d030107032200", "hex"),
      compressed as Buffer,
    ]);
    const compressedPem = createPublicKey({ key: spki, format: "der", type: "spki" })
      .export({ format: "pem", type: "spki" })
      .toString();

    const caPem = await selfSignTransitCa(transit, {
      name: "compressed",
      publicKeyPem: compressedPem,
      keySpec: { type: "ec", bits: 256 },
      commonName: "External compressed",
      serialHex: "0123456789abcdee",
    });
    const imported = await pki.importTransitIssuer({
      certificate: caPem,
      transit_key: "compressed",
    });
    assert.equal(imported.transit_key_version, 1);
  });

  it("rejects a key that does not match", async () => {
    const caPem = await caForTransitKey(transit, "matching", "ecdsa-p256");
    await transit.createKey("other", { type: "ecdsa-p256" });
    await assert.rejects(
      pki.importTransitIssuer({ certificate: caPem, transit_key: "other" }),
      keywardError("invalid_request", "transit_key"),
    );
  });

  it("rejects an unknown transit mount", async () => {
    const caPem = await caForTransitKey(transit, "elsewhere", "ecdsa-p256");
    await assert.rejects(
      pki.importTransitIssuer({
        certificate: caPem,
        transit_key: "elsewhere",
        transit_mount: "missing",
      }),
      keywardError("not_found", "transit_mount"),
    );
  });
});
