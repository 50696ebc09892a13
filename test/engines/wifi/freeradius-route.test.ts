import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { renderFreeradiusEapTls } from "../../../src/engines/wifi/freeradius.ts";
import { createDeviceApp, type DeviceApp, errorCode, ok } from "../../devices/fixtures.ts";

const FILES = {
  certificate_file: "/etc/freeradius/3.0/keyward/server.pem",
  private_key_file: "/etc/freeradius/3.0/keyward/server.key",
  ca_file: "/etc/freeradius/3.0/keyward/ca.pem",
  ca_path: "/etc/freeradius/3.0/keyward/ca.d",
};

function freeradiusUrl(network: string, query: Record<string, string>): string {
  return `/v1/wifi/networks/${network}/freeradius?${new URLSearchParams(query)}`;
}

describe("FreeRADIUS route of enterprise networks", () => {
  let t: DeviceApp;
  let chain: string;

  before(async () => {
    t = await createDeviceApp();
    await ok(t, "POST", "/v1/sys/mounts/wifi", { type: "wifi" }, 204);
    await ok(t, "POST", "/v1/wifi/networks/corp", {
      ssid: "Corp",
      security: "wpa3-enterprise",
      pki_mount: "pki",
    });
    chain = (await ok(t, "GET", "/v1/pki/cert/ca_chain")).certificate;
  });

  after(async () => {
    await t.close();
  });

  it("matches the renderer", async () => {
    const response = await t.request({ method: "GET", url: freeradiusUrl("corp", FILES) });
    assert.equal(response.statusCode, 200, response.body);
    assert.match(response.headers["content-type"] as string, /^text\/plain/);
    const expected = renderFreeradiusEapTls({
      caChain: chain,
      certificateFile: FILES.certificate_file,
      privateKeyFile: FILES.private_key_file,
      caFile: FILES.ca_file,
      caPath: FILES.ca_path,
    });
    assert.equal(response.body, expected);
  });

  it("passes CRL settings on", async () => {
    const query = { ...FILES, check_crl: "false", ca_path_reload_interval: "300" };
    const response = await t.request({ method: "GET", url: freeradiusUrl("corp", query) });
    assert.equal(response.statusCode, 200, response.body);
    const expected = renderFreeradiusEapTls({
      caChain: chain,
      certificateFile: FILES.certificate_file,
      privateKeyFile: FILES.private_key_file,
      caFile: FILES.ca_file,
      caPath: FILES.ca_path,
      checkCrl: false,
      caPathReloadIntervalSeconds: 300,
    });
    assert.equal(response.body, expected);
  });

  it("shows the PKI mount in reads", async () => {
    const view = await ok(t, "GET", "/v1/wifi/networks/corp");
    assert.equal(view.pki_mount, "pki");
    assert.equal(view.pki_issuer, "default");
  });

  it("rejects bad requests with stable codes", async () => {
    await ok(t, "POST", "/v1/wifi/networks/home", { ssid: "Home", security: "wpa2-psk" });
    await ok(t, "POST", "/v1/wifi/networks/bare", { ssid: "Bare", security: "wpa2-enterprise" });
    await ok(t, "POST", "/v1/wifi/networks/elsewhere", {
      ssid: "Elsewhere",
      security: "wpa2-enterprise",
      pki_mount: "missing",
    });
    await ok(t, "POST", "/v1/wifi/networks/unknown-issuer", {
      ssid: "Unknown",
      security: "wpa2-enterprise",
      pki_mount: "pki",
      pki_issuer: "nope",
    });
    const { ca_file: _omitted, ...withoutCaFile } = FILES;
    const cases: [string, number, string, string][] = [
      [freeradiusUrl("home", FILES), 409, "invalid_state", "security"],
      [freeradiusUrl("bare", FILES), 409, "invalid_state", "pki_mount"],
      [freeradiusUrl("elsewhere", FILES), 404, "not_found", "pki_mount"],
      [freeradiusUrl("unknown-issuer", FILES), 404, "not_found", "pki_issuer"],
      [freeradiusUrl("missing", FILES), 404, "not_found", ""],
      [
        freeradiusUrl("corp", { ...FILES, ca_file: "relative/ca.pem" }),
        400,
        "invalid_field",
        "ca_file",
      ],
      [
        freeradiusUrl("corp", { ...FILES, ca_file: '/etc/"ca.pem' }),
        400,
        "invalid_field",
        "ca_file",
      ],
      [freeradiusUrl("corp", withoutCaFile), 400, "missing_field", "ca_file"],
      [freeradiusUrl("corp", { ...FILES, check_crl: "maybe" }), 400, "invalid_field", "check_crl"],
    ];
    for (const [url, status, code, field] of cases) {
      const error = await errorCode(t, { method: "GET", url }, status);
      assert.equal(error.code, code, url);
      if (field !== "") assert.equal(error.field, field, url);
    }

    const onPsk = await errorCode(
      t,
      { method: "POST", url: "/v1/wifi/networks/home", payload: { pki_mount: "pki" } },
      409,
    );
    assert.equal(onPsk.code, "invalid_state");
    assert.equal(onPsk.field, "pki_mount");
    const badMount = await errorCode(
      t,
      { method: "POST", url: "/v1/wifi/networks/corp", payload: { pki_mount: "../x" } },
      400,
    );
    assert.equal(badMount.field, "pki_mount");
  });
});
