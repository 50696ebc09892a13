import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { after, before, describe, it } from "node:test";
import {
  type CertificateKeyType,
  certificatePublicKey,
  generateCertificateKey,
  makeCertificateCsr,
} from "../../src/agent/certificate-keys.ts";
import {
  createDeviceApp,
  type DeviceApp,
  deviceRequest,
  type EnrolledDevice,
  enrolDevice,
  errorCode,
  ok,
  startTlsServer,
  type TlsServer,
} from "./fixtures.ts";

async function csrFor(
  commonName: string,
  altNames: string[],
  type: CertificateKeyType = "ec-p256",
): Promise<{ csr: string; publicKey: string }> {
  const key = generateCertificateKey(type);
  return {
    csr: await makeCertificateCsr(key, type, { commonName, altNames }),
    publicKey: key.publicKeySpki,
  };
}

describe("device certificates", () => {
  let t: DeviceApp;
  let server: TlsServer;
  let gateway: EnrolledDevice;
  let other: EnrolledDevice;

  /** Posts `body`, or only the `csr` of a request that `csrFor` made. */
  const post = (device: EnrolledDevice, name: string, body: unknown) =>
    deviceRequest(server, {
      method: "POST",
      path: `/v1/devices/self/certificates/${name}`,
      body:
        body !== null && typeof body === "object" && "publicKey" in body
          ? { csr: (body as unknown as { csr: string }).csr }
          : body,
      device,
    });

  const artifact = async (device: EnrolledDevice, id: string) => {
    const response = await deviceRequest(server, {
      method: "GET",
      path: "/v1/devices/self/state",
      device,
    });
    assert.equal(response.status, 200, response.body);
    // biome-ignore lint/suspicious/noExplicitAny: the artifact as sent.
    return response.json().data.artifacts.find((item: any) => item.id === id);
  };

  before(async () => {
    t = await createDeviceApp();
    server = await startTlsServer(t);
    await ok(t, "POST", "/v1/pki/roles/ipsec", {
      allow_any_name: true,
      allow_ip_sans: true,
      key_type: "any",
      max_ttl: "720h",
    });
    gateway = await enrolDevice(t, "gw-1", { groups: ["gateways"] });
    other = await enrolDevice(t, "gw-2", { groups: ["gateways"] });
  });
  after(async () => {
    await server.close();
    await t.close();
  });

  it("creates, reads, lists and deletes assignments", async () => {
    const created = await ok(t, "POST", "/v1/devices/certificates/scratch", {
      pki_mount: "pki",
      role: "ipsec",
      devices: ["gw-9"],
      common_name: "{{device}}.example.net",
    });
    assert.equal(created.artifact_id, "certificate:scratch");
    assert.deepEqual(created.alt_names, []);
    assert.equal(created.ttl, null);
    assert.ok(Math.abs(created.renew_fraction - 2 / 3) < 1e-9);
    const updated = await ok(t, "POST", "/v1/devices/certificates/scratch", { ttl: "24h" });
    assert.equal(updated.ttl, 86400);
    assert.equal(updated.common_name, "{{device}}.example.net");
    const list = await ok(t, "GET", "/v1/devices/certificates?list=true");
    assert.deepEqual(list.keys, ["scratch"]);
    const read = await ok(t, "GET", "/v1/devices/certificates/scratch");
    assert.equal(read.role, "ipsec");
    await ok(t, "DELETE", "/v1/devices/certificates/scratch", undefined, 204);
    const gone = await errorCode(
      t,
      { method: "GET", url: "/v1/devices/certificates/scratch" },
      404,
    );
    assert.equal(gone.code, "not_found");
  });

  it("renders names per device", async () => {
    await ok(t, "POST", "/v1/devices/certificates/ike", {
      pki_mount: "pki",
      role: "ipsec",
      groups: ["gateways"],
      common_name: "{{device}}.vpn.example.net",
      alt_names: ["{{device}}.vpn.example.net", "VPN.example.net", "192.0.2.10", "2001:DB8::0:1"],
      ttl: "48h",
    });
    const first = await artifact(gateway, "certificate:ike");
    assert.equal(first.kind, "certificate");
    assert.deepEqual(first.secrets, {});
    assert.equal(first.fields.common_name, "gw-1.vpn.example.net");
    assert.deepEqual(first.fields.alt_names, [
      "gw-1.vpn.example.net",
      "vpn.example.net",
      "192.0.2.10",
      "2001:db8::1",
    ]);
    assert.equal(first.fields.certificate, null);
    assert.equal(first.fields.renew_after, null);
    const second = await artifact(other, "certificate:ike");
    assert.equal(second.fields.common_name, "gw-2.vpn.example.net");
  });

  it("rejects a CSR with other names", async () => {
    const wrongCn = await post(gateway, "ike", await csrFor("gw-2.vpn.example.net", []));
    assert.equal(wrongCn.status, 400, wrongCn.body);
    assert.equal(wrongCn.json().code, "invalid_field");
    assert.equal(wrongCn.json().field, "csr");
    assert.match(wrongCn.json().errors[0], /gw-1\.vpn\.example\.net/);

    const names = ["gw-1.vpn.example.net", "vpn.example.net", "192.0.2.11"];
    const wrongSans = await post(gateway, "ike", await csrFor("gw-1.vpn.example.net", names));
    assert.equal(wrongSans.status, 400, wrongSans.body);
    assert.equal(wrongSans.json().field, "csr");
    assert.match(wrongSans.json().errors[0], /missing 192\.0\.2\.10, 2001:db8::1/);
    assert.match(wrongSans.json().errors[0], /unexpected 192\.0\.2\.11/);
  });

  it("issues and renews a certificate", async () => {
    const names = ["gw-1.vpn.example.net", "vpn.example.net", "192.0.2.10", "2001:db8::1"];
    const before = await artifact(gateway, "certificate:ike");
    const request = await csrFor("gw-1.vpn.example.net", names);
    const response = await post(gateway, "ike", request);
    assert.equal(response.status, 200, response.body);
    const issued = response.json().data;
    assert.equal(certificatePublicKey(issued.certificate), request.publicKey);
    const certificate = new X509Certificate(issued.certificate);
    assert.equal(certificate.subject, "CN=gw-1.vpn.example.net");
    assert.equal(
      certificate.subjectAltName,
      "DNS:gw-1.vpn.example.net, DNS:vpn.example.net, IP Address:192.0.2.10, IP Address:2001:DB8:0:0:0:0:0:1",
    );
    assert.ok(issued.renew_after > Date.now() / 1000);
    assert.ok(issued.renew_after < issued.expiration);

    const after = await artifact(gateway, "certificate:ike");
    assert.equal(after.version, before.version + 1);
    assert.equal(after.fields.certificate, issued.certificate);
    assert.equal(after.fields.serial_number, issued.serial_number);
    assert.deepEqual(after.fields.ca_chain, issued.ca_chain);

    const renewal = await csrFor("gw-1.vpn.example.net", names, "rsa-2048");
    const renewed = await post(gateway, "ike", renewal);
    assert.equal(renewed.status, 200, renewed.body);
    assert.notEqual(renewed.json().data.serial_number, issued.serial_number);
    const latest = await artifact(gateway, "certificate:ike");
    assert.equal(latest.version, after.version + 1);
    assert.equal(certificatePublicKey(latest.fields.certificate), renewal.publicKey);
    const old = await ok(t, "GET", `/v1/pki/cert/${issued.serial_number}`);
    assert.equal(old.revocation_time, 0, "the previous certificate stays valid");
  });

  it("raises the version when the names change", async () => {
    const before = await artifact(gateway, "certificate:ike");
    await ok(t, "POST", "/v1/devices/certificates/ike", {
      alt_names: ["{{device}}.vpn.example.net"],
    });
    const after = await artifact(gateway, "certificate:ike");
    assert.equal(after.version, before.version + 1);
    assert.deepEqual(after.fields.alt_names, ["gw-1.vpn.example.net"]);
    assert.equal(
      after.fields.certificate,
      before.fields.certificate,
      "the old certificate is kept",
    );
  });

  it("rejects a device outside the audience", async () => {
    await ok(t, "POST", "/v1/devices/certificates/radius", {
      pki_mount: "pki",
      role: "ipsec",
      devices: ["gw-2"],
      common_name: "radius.example.net",
    });
    const response = await post(gateway, "radius", await csrFor("radius.example.net", []));
    assert.equal(response.status, 403, response.body);
    assert.equal(response.json().code, "permission_denied");
    assert.equal(await artifact(gateway, "certificate:radius"), undefined);
  });

  it("requires mutual TLS", async () => {
    const response = await deviceRequest(server, {
      method: "POST",
      path: "/v1/devices/self/certificates/ike",
      body: { csr: "x" },
    });
    assert.equal(response.status, 401, response.body);
    assert.equal(response.json().code, "device_authentication_failed");
  });

  it("revokes a revoked device's certificates", async () => {
    const device = await enrolDevice(t, "gw-3", { groups: ["gateways"] });
    const names = ["gw-3.vpn.example.net"];
    const first = await post(device, "ike", await csrFor("gw-3.vpn.example.net", names));
    assert.equal(first.status, 200, first.body);
    const second = await post(device, "ike", await csrFor("gw-3.vpn.example.net", names));
    assert.equal(second.status, 200, second.body);
    await ok(t, "POST", "/v1/devices/registry/gw-3/revoke", {});
    for (const response of [first, second]) {
      const record = await ok(t, "GET", `/v1/pki/cert/${response.json().data.serial_number}`);
      assert.ok(record.revocation_time > 0, "the service certificate is revoked in the PKI");
    }
    const kept = await artifact(gateway, "certificate:ike");
    const stored = await ok(t, "GET", `/v1/pki/cert/${kept.fields.serial_number}`);
    assert.equal(stored.revocation_time, 0, "other devices' certificates stay valid");
  });

  it("rejects bad input", async () => {
    const cases: [string, object, string, string][] = [
      ["scratch", { role: "ipsec", common_name: "x" }, "invalid_field", "pki_mount"],
      ["scratch", { pki_mount: "pki", common_name: "x" }, "invalid_field", "role"],
      ["scratch", { pki_mount: "pki", role: "ipsec" }, "invalid_field", "common_name"],
      [
        "scratch",
        { pki_mount: "nope", role: "ipsec", common_name: "x" },
        "invalid_field",
        "pki_mount",
      ],
      ["scratch", { pki_mount: "pki", role: "nope", common_name: "x" }, "invalid_field", "role"],
      [
        "scratch",
        { pki_mount: "pki", role: "ipsec", common_name: "{{name}}" },
        "invalid_field",
        "common_name",
      ],
      [
        "scratch",
        { pki_mount: "pki", role: "ipsec", common_name: "" },
        "invalid_field",
        "common_name",
      ],
      [
        "scratch",
        {
          pki_mount: "pki",
          role: "ipsec",
          common_name: "x",
          alt_names: ["ok.example", "bad name"],
        },
        "invalid_field",
        "alt_names[1]",
      ],
      [
        "scratch",
        { pki_mount: "pki", role: "ipsec", common_name: "x", ttl: "soon" },
        "invalid_field",
        "ttl",
      ],
      [
        "scratch",
        { pki_mount: "pki", role: "ipsec", common_name: "x", renew_fraction: 1 },
        "invalid_field",
        "renew_fraction",
      ],
      [
        "scratch",
        { pki_mount: "pki", role: "ipsec", common_name: "x", groups: ["-x"] },
        "invalid_field",
        "groups[0]",
      ],
      ["bad name", { pki_mount: "pki", role: "ipsec", common_name: "x" }, "invalid_field", "name"],
    ];
    for (const [name, payload, code, field] of cases) {
      const response = await t.request({
        method: "POST",
        url: `/v1/devices/certificates/${encodeURIComponent(name)}`,
        payload,
      });
      assert.equal(response.statusCode, 400, `${JSON.stringify(payload)}: ${response.body}`);
      assert.equal(response.json().code, code, JSON.stringify(payload));
      assert.equal(response.json().field, field, JSON.stringify(payload));
    }

    const deviceCases: [unknown, string, string][] = [
      [{}, "missing_field", "csr"],
      [{ csr: 5 }, "invalid_field", "csr"],
      [{ csr: "not a csr" }, "invalid_field", "csr"],
      [{ csr: "x", extra: 1 }, "unknown_field", "extra"],
    ];
    for (const [body, code, field] of deviceCases) {
      const response = await post(gateway, "ike", body);
      assert.equal(response.status, 400, `${JSON.stringify(body)}: ${response.body}`);
      assert.equal(response.json().code, code, JSON.stringify(body));
      assert.equal(response.json().field, field, JSON.stringify(body));
    }
  });

  it("rejects templates no CSR can carry", async () => {
    const base = { pki_mount: "pki", role: "ipsec" };
    const cases: [object, string][] = [
      [{ common_name: "gw\u0000.example.net" }, "common_name"],
      [{ common_name: "{{device}} gateway" }, "common_name"],
      [{ common_name: "010.0.0.1" }, "common_name"],
      [{ common_name: "x", alt_names: ["ok.example", "010.0.0.1"] }, "alt_names[1]"],
      [{ common_name: "x", alt_names: ["10.0.{{device}}.1"] }, "alt_names[0]"],
      [{ common_name: "x", alt_names: ["{{device}}.1"] }, "alt_names[0]"],
      [{ common_name: "x", alt_names: ["gw\u0000.example.net"] }, "alt_names[0]"],
      [{ common_name: "x", alt_names: ["A.x.net", "a.X.net"] }, "alt_names[1]"],
      [{ common_name: "x", alt_names: ["{{device}}.x.net", "{{device}}.X.net"] }, "alt_names[1]"],
      [{ common_name: "x", alt_names: ["2001:db8::1", "2001:DB8:0::1"] }, "alt_names[1]"],
    ];
    for (const [payload, field] of cases) {
      const response = await t.request({
        method: "POST",
        url: "/v1/devices/certificates/scratch",
        payload: { ...base, ...payload },
      });
      assert.equal(response.statusCode, 400, `${JSON.stringify(payload)}: ${response.body}`);
      assert.equal(response.json().code, "invalid_field", JSON.stringify(payload));
      assert.equal(response.json().field, field, JSON.stringify(payload));
    }
    const missing = await t.request({ method: "GET", url: "/v1/devices/certificates/scratch" });
    assert.equal(missing.statusCode, 404, "no rejected write was stored");
  });

  it("accepts IPv4-mapped IPv6 alt names", async () => {
    const created = await ok(t, "POST", "/v1/devices/certificates/mapped", {
      pki_mount: "pki",
      role: "ipsec",
      devices: ["gw-1"],
      common_name: "{{device}}.example.net",
      alt_names: ["::FFFF:10.0.0.1", "{{device}}.x.net", "a.x.net"],
    });
    assert.deepEqual(created.alt_names, ["::FFFF:10.0.0.1", "{{device}}.x.net", "a.x.net"]);
    const rendered = await artifact(gateway, "certificate:mapped");
    assert.deepEqual(rendered.fields.alt_names, ["::ffff:10.0.0.1", "gw-1.x.net", "a.x.net"]);

    const csr = await csrFor("gw-1.example.net", rendered.fields.alt_names);
    const response = await post(gateway, "mapped", csr);
    assert.equal(response.status, 200, response.body);
    const issued = new X509Certificate(response.json().data.certificate);
    // 16 address bytes, as Node.js prints an IPv6 iPAddress.
    assert.equal(
      issued.subjectAltName,
      "DNS:gw-1.x.net, DNS:a.x.net, IP Address:0:0:0:0:0:FFFF:A00:1",
    );
    await ok(t, "DELETE", "/v1/devices/certificates/mapped", undefined, 204);
  });
});
