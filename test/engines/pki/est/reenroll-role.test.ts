import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { decodeCertsOnly } from "../../../../src/engines/pki/est/pkcs7.ts";
import { normaliseSerialHex } from "../../../../src/engines/pki/key-pairs.ts";
import * as x509 from "../../../../src/engines/pki/x509.ts";
import type { TestApp } from "../../../helpers/app.ts";
import { ok } from "../fixtures.ts";
import {
  createEstApp,
  type EstTlsServer,
  makeCsr,
  PKCS10,
  privateKeyPem,
  startTlsServer,
  tlsRequest,
} from "./fixtures.ts";

interface ClientCertificate {
  certPem: string;
  keyPem: string;
  serial: string;
}

/**
 * Re-enrolment and serverkeygen with a client certificate accept only a
 * certificate that the mount stored as issued under the role of the EST
 * path called. `createEstApp` serves role `devices` without a label and
 * role `sensors` at label `sensors`. This suite adds role `identity`, which
 * EST does not serve (as a device registry role would be), and role
 * `ephemeral` with `no_store`, served at label `ephemeral`.
 */
describe("EST re-enrolment role check", () => {
  let t: TestApp;
  let server: EstTlsServer;

  before(async () => {
    t = await createEstApp({ allowInsecureHttp: false });
    await ok(t, "POST", "/v1/pki/roles/identity", {
      allowed_domains: ["devices.example.com"],
      allow_subdomains: true,
      key_type: "ec",
      key_bits: 256,
      max_ttl: "720h",
    });
    await ok(t, "POST", "/v1/pki/roles/ephemeral", {
      allowed_domains: ["devices.example.com"],
      allow_subdomains: true,
      key_type: "ec",
      key_bits: 256,
      max_ttl: "720h",
      no_store: true,
    });
    await ok(t, "POST", "/v1/pki/config/est", {
      label_to_path_policy: { sensors: "role:sensors", ephemeral: "role:ephemeral" },
    });
    server = await startTlsServer(t);
  });
  after(async () => {
    await server.close();
    await t.close();
  });

  /** Issues an EC certificate for `commonName` through `pki/issue/<role>`. */
  async function issue(role: string, commonName: string): Promise<ClientCertificate> {
    const issued = await ok(t, "POST", `/v1/pki/issue/${role}`, {
      common_name: commonName,
      private_key_format: "pkcs8",
    });
    return {
      certPem: issued.certificate as string,
      keyPem: issued.private_key as string,
      serial: issued.serial_number as string,
    };
  }

  /** Signs a CSR for `commonName` through `pki/sign/<role>`, the call the device registry makes. */
  async function sign(role: string, commonName: string): Promise<ClientCertificate> {
    const csr = await makeCsr(`CN=${commonName}`);
    const csrPem = `-----BEGIN CERTIFICATE REQUEST-----\n${csr.base64}\n-----END CERTIFICATE REQUEST-----\n`;
    const signed = await ok(t, "POST", `/v1/pki/sign/${role}`, { csr: csrPem });
    return {
      certPem: signed.certificate as string,
      keyPem: await privateKeyPem(csr.keys),
      serial: signed.serial_number as string,
    };
  }

  /** Posts a CSR for `commonName` to `path` under `/.well-known/est/`, presenting `client`. */
  async function post(path: string, client: ClientCertificate, commonName: string) {
    const csr = await makeCsr(`CN=${commonName}`);
    return tlsRequest(server, {
      method: "POST",
      path: `/.well-known/est/${path}`,
      headers: PKCS10,
      body: csr.base64,
      clientCertificate: { certPem: client.certPem, keyPem: client.keyPem },
    });
  }

  async function storedSerials(): Promise<number> {
    return (await t.keyward.pki("pki")!.inventory.serials()).length;
  }

  it("ok issue route under the label's role", async () => {
    const client = await issue("devices", "issued.devices.example.com");
    const response = await post("simplereenroll", client, "issued.devices.example.com");
    assert.equal(response.status, 200, response.body);
    const [der] = decodeCertsOnly(Buffer.from(response.body, "base64"));
    assert.ok(der, "the response contains a certificate");
    const renewed = new x509.X509Certificate(der);
    assert.equal(renewed.subject, "CN=issued.devices.example.com");
  });

  const rejections: {
    name: string;
    role: string;
    route: "issue" | "sign";
    path: string;
    message: RegExp;
  }[] = [
    {
      name: "fail reenroll role not served by EST",
      role: "identity",
      route: "issue",
      path: "simplereenroll",
      message:
        /issued under role "identity", but this EST path renews only certificates of role "devices"/,
    },
    {
      name: "fail reenroll signed under registry-like role",
      role: "identity",
      route: "sign",
      path: "simplereenroll",
      message: /issued under role "identity"/,
    },
    {
      name: "fail reenroll role of another label",
      role: "devices",
      route: "issue",
      path: "sensors/simplereenroll",
      message:
        /issued under role "devices", but this EST path renews only certificates of role "sensors"/,
    },
    {
      name: "fail serverkeygen role not served by EST",
      role: "identity",
      route: "issue",
      path: "serverkeygen",
      message: /issued under role "identity"/,
    },
    {
      name: "fail reenroll no_store certificate",
      role: "ephemeral",
      route: "issue",
      path: "ephemeral/simplereenroll",
      message:
        /not in the certificate inventory of mount "pki"; re-enrolment needs a certificate that Keyward stored/,
    },
    {
      name: "fail serverkeygen no_store certificate",
      role: "ephemeral",
      route: "issue",
      path: "ephemeral/serverkeygen",
      message: /re-enrolment needs a certificate that Keyward stored/,
    },
  ];
  for (const [index, testCase] of rejections.entries()) {
    it(testCase.name, async () => {
      const commonName = `reject-${index}.devices.example.com`;
      const client =
        testCase.route === "issue"
          ? await issue(testCase.role, commonName)
          : await sign(testCase.role, commonName);
      const before = await storedSerials();

      const response = await post(testCase.path, client, commonName);

      assert.equal(response.status, 403, response.body);
      assert.match(String(response.headers["content-type"]), /^text\/plain/);
      assert.match(response.body, testCase.message);
      assert.equal(await storedSerials(), before, "nothing is issued");
      const serialHex = normaliseSerialHex(client.serial.replaceAll(":", ""));
      const stored = await t.keyward.pki("pki")!.inventory.find(serialHex);
      if (testCase.role === "ephemeral") {
        assert.equal(stored, undefined, "a no_store certificate has no record");
      } else {
        assert.ok(stored, "the client certificate's record stays");
        assert.equal(stored.revokedAt, undefined, "the client certificate stays unrevoked");
      }
    });
  }

  it("fail reenroll certificate the device registry owns", async () => {
    // The registry signs with PkiService.sign and its owner, here under the
    // role that EST serves, which a configuration could name for both.
    const commonName = "owned.devices.example.com";
    const csr = await makeCsr(`CN=${commonName}`);
    const signed = await t.keyward
      .pki("pki")!
      .sign("devices", { csr: csr.base64, format: "pem" }, undefined, "devices");
    const client = { certPem: signed.certificate, keyPem: await privateKeyPem(csr.keys) };
    const before = await storedSerials();

    const response = await post("simplereenroll", { ...client, serial: "" }, commonName);

    assert.equal(response.status, 403, response.body);
    assert.match(response.body, /issued for Keyward's devices service, which renews it/);
    assert.equal(await storedSerials(), before, "nothing is issued");
  });

  it("ok same certificate at its own label", async () => {
    // The certificate rejected at the sensors label still renews at the label of its role.
    const client = await issue("devices", "own-label.devices.example.com");
    const rejected = await post("sensors/simplereenroll", client, "own-label.devices.example.com");
    assert.equal(rejected.status, 403, rejected.body);

    const response = await post("simplereenroll", client, "own-label.devices.example.com");
    assert.equal(response.status, 200, response.body);
  });
});
