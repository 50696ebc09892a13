import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { escapeWifiUriValue } from "../../../src/engines/wifi/onboarding.ts";
import { createTestApp, type TestApp } from "../../helpers/app.ts";

describe("wifi engine mounted in the server", () => {
  let t: TestApp;

  before(async () => {
    t = await createTestApp();
    const mounted = await t.request({
      method: "POST",
      url: "/v1/sys/mounts/wifi",
      payload: { type: "wifi" },
    });
    assert.equal(mounted.statusCode, 204, mounted.body);
    const network = await t.request({
      method: "POST",
      url: "/v1/wifi/networks/home",
      payload: { ssid: "Home;Net", security: "wpa2-wpa3", vlans: [10], generate_passphrase: true },
    });
    assert.equal(network.statusCode, 200, network.body);
  });

  after(async () => {
    await t.close();
  });

  it("rejects bad input with stable codes", async () => {
    const cases: [string, string, object, number, string, string][] = [
      [
        "POST",
        "/v1/wifi/networks/bad",
        { ssid: "x".repeat(33), security: "wpa2-psk" },
        400,
        "invalid_field",
        "ssid",
      ],
      [
        "POST",
        "/v1/wifi/networks/bad",
        { ssid_hex: "zz", security: "wpa2-psk" },
        400,
        "invalid_field",
        "ssid_hex",
      ],
      [
        "POST",
        "/v1/wifi/networks/bad",
        { ssid: "a", security: "wep" },
        400,
        "invalid_field",
        "security",
      ],
      [
        "POST",
        "/v1/wifi/networks/bad",
        { ssid: "a", security: "wpa2-psk", passphrase: "short" },
        400,
        "invalid_field",
        "passphrase",
      ],
      [
        "POST",
        "/v1/wifi/networks/bad",
        { ssid: "a", security: "wpa2-psk", passphrase: "pässwörd123" },
        400,
        "invalid_field",
        "passphrase",
      ],
      [
        "POST",
        "/v1/wifi/networks/bad",
        { ssid: "a", security: "wpa3-sae", passphrase: "a".repeat(64) },
        400,
        "invalid_field",
        "passphrase",
      ],
      [
        "POST",
        "/v1/wifi/networks/home/keys/k1",
        { mac: "01:00:5e:00:00:01" },
        400,
        "invalid_field",
        "mac",
      ],
      [
        "POST",
        "/v1/wifi/networks/home/keys/k1",
        { mac: "02:00:00:00:00:01", vlan: 99 },
        400,
        "unknown_vlan",
        "vlan",
      ],
    ];
    for (const [method, url, payload, status, code, field] of cases) {
      const response = await t.request({ method: method as "POST", url, payload });
      assert.equal(
        response.statusCode,
        status,
        `${url} ${JSON.stringify(payload)}: ${response.body}`,
      );
      assert.equal(response.json().code, code);
      assert.equal(response.json().field, field);
    }
    const missing = await t.request({ method: "GET", url: "/v1/wifi/networks/bad" });
    assert.equal(missing.statusCode, 404, "a rejected network must not be half created");
  });

  it("rejects a duplicate MAC with 409", async () => {
    const first = await t.request({
      method: "POST",
      url: "/v1/wifi/networks/home/keys/laptop",
      payload: { mac: "02:11:22:33:44:55", vlan: 10, sae_password_id: "laptop" },
    });
    assert.equal(first.statusCode, 200, first.body);
    assert.equal(first.json().data.passphrase.generation, 1);
    assert.ok(!first.body.includes('"passphrase":"'));
    const second = await t.request({
      method: "POST",
      url: "/v1/wifi/networks/home/keys/tablet",
      payload: { mac: "02-11-22-33-44-55" },
    });
    assert.equal(second.statusCode, 409, second.body);
    assert.equal(second.json().code, "mac_address_conflict");
    assert.equal(second.json().field, "mac");
  });

  it("reveals a passphrase only on onboarding, redacted in audit", async () => {
    const read = await t.request({ method: "GET", url: "/v1/wifi/networks/home" });
    assert.equal(read.statusCode, 200, read.body);
    const onboarding = await t.request({
      method: "GET",
      url: "/v1/wifi/networks/home/keys/laptop/onboarding",
    });
    assert.equal(onboarding.statusCode, 200, onboarding.body);
    const data = onboarding.json().data;
    assert.equal(data.passphrase.length, 24);
    assert.ok(!read.body.includes(data.passphrase));
    assert.equal(
      data.wifi_uri,
      `WIFI:T:WPA;S:Home\\;Net;P:${escapeWifiUriValue(data.passphrase)};H:false;;`,
    );
    assert.equal(Buffer.from(data.qr_code_png, "base64").subarray(1, 4).toString(), "PNG");
    const png = await t.request({
      method: "GET",
      url: "/v1/wifi/networks/home/onboarding?format=png",
    });
    assert.equal(png.headers["content-type"], "image/png");

    const search = await t.request({
      method: "GET",
      url: "/v1/sys/audit/search?path_prefix=wifi/&type=response",
    });
    assert.equal(search.statusCode, 200, search.body);
    assert.ok(!JSON.stringify(search.json().data.records).includes(data.passphrase));
  });

  it("escapes WIFI URI special characters", () => {
    assert.equal(escapeWifiUriValue('a\\b;c,d"e:f'), 'a\\\\b\\;c\\,d\\"e\\:f');
  });
});
