import assert from "node:assert/strict";
import { createPublicKey, X509Certificate } from "node:crypto";
import { after, before, describe, it, type TestContext } from "node:test";
import { transitDataSigner } from "../../../src/engines/pki/ca-transit.ts";
import { signCertificate } from "../../../src/engines/pki/certificate.ts";
import * as x509 from "../../../src/engines/pki/x509.ts";
import { requirePeer } from "../../helpers/peers.ts";
import { requireSoftHsm, softHsmInstalled } from "../../hsm/softhsm.ts";
import { createHsmTestApp, type HsmTestApp, objectsLabelled } from "../transit/hsm-fixture.ts";
import { run, tempFiles } from "./fixtures.ts";

const ROOT_KEY = "root-ca";
const EC_P256 = { type: "ec", bits: 256 } as const;

describe("PKI root CA with an HSM-held transit key", () => {
  let fixture: HsmTestApp | undefined;
  const files = tempFiles();

  before(async () => {
    if (softHsmInstalled()) fixture = await createHsmTestApp();
  });

  after(async () => {
    await fixture?.close();
    files.cleanup();
  });

  async function ok(method: "GET" | "POST", url: string, payload?: object) {
    const response = await fixture!.request({
      method,
      url,
      ...(payload === undefined ? {} : { payload }),
    });
    assert.ok(response.statusCode < 300, `${method} ${url}: ${response.body}`);
    return response.body === "" ? undefined : response.json().data;
  }

  /** Self-signs the root CA certificate through transit, as an operator would with an external tool. */
  async function selfSignedRoot(publicKeyPem: string): Promise<string> {
    const transit = fixture!.keyward.transit("transit");
    assert.ok(transit);
    const spki = createPublicKey(publicKeyPem).export({ format: "der", type: "spki" });
    const certificate = await signCertificate(
      {
        subject: [{ CN: ["Keyward HSM Root"] }],
        publicKey: spki,
        serialHex: "01a2b3c4d5e6f708",
        notBefore: new Date(Date.now() - 60_000),
        notAfter: new Date(Date.now() + 365 * 24 * 3600 * 1000),
        ca: {},
        keyUsage: x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        extKeyUsageOids: [],
        altNames: [],
        policyOids: [],
        issuingCertificateUrls: [],
        ocspServers: [],
        crlDistributionPoints: [],
      },
      {
        selfSigner: transitDataSigner(
          transit,
          { mount: "transit", name: ROOT_KEY, version: 1 },
          EC_P256,
        ),
        keySpec: EC_P256,
      },
    );
    return certificate.toString("pem");
  }

  it("issues a leaf openssl verifies", async (t: TestContext) => {
    if (!requireSoftHsm(t) || !fixture || !requirePeer(t, "openssl")) return;
    const key = await ok("POST", `/v1/transit/keys/${ROOT_KEY}`, {
      type: "ecdsa-p256",
      hsm: true,
    });
    assert.equal(key.hsm, true);
    const rootPem = await selfSignedRoot(key.keys["1"].public_key);

    await ok("POST", "/v1/sys/mounts/pki", { type: "pki", config: { max_lease_ttl: "87600h" } });
    const imported = await ok("POST", "/v1/pki/issuers/import/transit", {
      certificate: rootPem,
      transit_key: ROOT_KEY,
    });
    assert.equal(imported.transit_key_version, 1);
    await ok("POST", "/v1/pki/roles/web", {
      allowed_domains: "example.test",
      allow_subdomains: true,
      key_type: "ec",
      ttl: "1h",
    });
    const issued = await ok("POST", `/v1/pki/issuer/${imported.issuer_id}/issue/web`, {
      common_name: "www.example.test",
    });

    const leaf = new X509Certificate(issued.certificate);
    const root = new X509Certificate(rootPem);
    assert.equal(leaf.checkIssued(root), true);
    assert.equal(leaf.verify(root.publicKey), true);

    const rootFile = files.write("hsm-root.pem", rootPem);
    const leafFile = files.write("hsm-leaf.pem", issued.certificate);
    const verified = run("openssl", ["verify", "-CAfile", rootFile, leafFile]);
    assert.equal(verified.status, 0, verified.output);
    assert.match(verified.output, /hsm-leaf\.pem: OK/);

    if (!requirePeer(t, "pkcs11-tool")) return;
    const listed = fixture.listObjects();
    const pair = objectsLabelled(listed.output, `keyward/transit/${ROOT_KEY}/v1`);
    const privateKey = pair.find((block) => block.startsWith("Private Key Object; EC"));
    assert.ok(privateKey, listed.output);
    assert.match(privateKey, /never extractable/);
  });
});
