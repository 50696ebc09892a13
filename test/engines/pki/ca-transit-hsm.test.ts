import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { after, describe, it, type TestContext } from "node:test";
import { requirePeer } from "../../helpers/peers.ts";
import { issueLeafFromTransitRoot, selfSignTransitCa } from "../../helpers/transit-ca.ts";
import { objectsLabelled, useHsmTestApp } from "../transit/hsm-fixture.ts";
import { run, tempFiles } from "./fixtures.ts";

const ROOT_KEY = "root-ca";
const EC_P256 = { type: "ec", bits: 256 } as const;

describe("PKI root CA with an HSM-held transit key", () => {
  const hsmApp = useHsmTestApp();
  const files = tempFiles();

  after(() => files.cleanup());

  async function ok(method: "GET" | "POST", url: string, payload?: object) {
    const response = await hsmApp.app.request({
      method,
      url,
      ...(payload === undefined ? {} : { payload }),
    });
    assert.ok(response.statusCode < 300, `${method} ${url}: ${response.body}`);
    return response.body === "" ? undefined : response.json().data;
  }

  /** Self-signs the root CA certificate through transit, as an operator would with an external tool. */
  function selfSignedRoot(publicKeyPem: string): Promise<string> {
    const transit = hsmApp.app.keyward.transit("transit");
    assert.ok(transit);
    return selfSignTransitCa(transit, {
      name: ROOT_KEY,
      publicKeyPem,
      keySpec: EC_P256,
      commonName: "Keyward HSM Root",
      serialHex: "01a2b3c4d5e6f708",
    });
  }

  it("issues a leaf openssl verifies", async (t: TestContext) => {
    const fixture = hsmApp.ready(t);
    if (!fixture || !requirePeer(t, "openssl")) return;
    const key = await ok("POST", `/v1/transit/keys/${ROOT_KEY}`, {
      type: "ecdsa-p256",
      hsm: true,
    });
    assert.equal(key.hsm, true);
    const rootPem = await selfSignedRoot(key.keys["1"].public_key);

    const { imported, issued } = await issueLeafFromTransitRoot(fixture, rootPem, ROOT_KEY);
    assert.equal(imported.transit_key_version, 1);

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
