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
      // hostapd 2.10 rejects a keyid of 32 characters.
      [
        "POST",
        "/v1/wifi/networks/home/keys/k1",
        { mac: "02:00:00:00:00:01", key_id: "k".repeat(32) },
        400,
        "invalid_field",
        "key_id",
      ],
      // A key name longer than 31 characters cannot be its key ID.
      [
        "POST",
        `/v1/wifi/networks/home/keys/${"k".repeat(32)}`,
        { mac: "02:00:00:00:00:01" },
        400,
        "invalid_field",
        "key_id",
      ],
      [
        "POST",
        "/v1/wifi/networks/bad",
        { ssid: "a", security: "wpa2-psk", rotation_period: "24h", grace_window: "25h" },
        400,
        "invalid_field",
        "grace_window",
      ],
      [
        "POST",
        "/v1/wifi/networks/bad",
        { ssid: "a", security: "wpa2-enterprise", passphrase: "long enough passphrase" },
        400,
        "invalid_field",
        "passphrase",
      ],
      // JSON values of the wrong type are rejected, not coerced.
      [
        "POST",
        "/v1/wifi/networks/bad",
        { ssid: true, security: "wpa2-psk" },
        400,
        "invalid_field",
        "ssid",
      ],
      [
        "POST",
        "/v1/wifi/networks/bad",
        { ssid: "a", security: "wpa2-psk", vlans: [[10]] },
        400,
        "invalid_field",
        "vlans[0]",
      ],
      [
        "POST",
        "/v1/wifi/networks/bad",
        { ssid: "a", security: "wpa2-psk", hidden: 5 },
        400,
        "invalid_field",
        "hidden",
      ],
      ["POST", "/v1/wifi/networks/home/rotate", { bogus: 1 }, 400, "unknown_field", "bogus"],
      [
        "POST",
        "/v1/wifi/networks/home/keys/k1/rotate",
        { bogus: 1 },
        400,
        "unknown_field",
        "bogus",
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

  it("rejects a grace window longer than the period", async () => {
    const created = await t.request({
      method: "POST",
      url: "/v1/wifi/networks/rotating",
      payload: { ssid: "Rotating", security: "wpa2-psk", grace_window: "48h" },
    });
    assert.equal(created.statusCode, 200, created.body);
    const shorter = await t.request({
      method: "POST",
      url: "/v1/wifi/networks/rotating",
      payload: { rotation_period: "24h" },
    });
    assert.equal(shorter.statusCode, 400, shorter.body);
    assert.equal(shorter.json().code, "invalid_field");
    assert.equal(shorter.json().field, "rotation_period");
    const equal = await t.request({
      method: "POST",
      url: "/v1/wifi/networks/rotating",
      payload: { rotation_period: "48h" },
    });
    assert.equal(equal.statusCode, 200, equal.body);
  });

  it("requires a unique key_id of at most 31", async () => {
    const longName = "k".repeat(40);
    const named = await t.request({
      method: "POST",
      url: `/v1/wifi/networks/home/keys/${longName}`,
      payload: { mac: "02:00:00:00:01:01", key_id: "k".repeat(31) },
    });
    assert.equal(named.statusCode, 200, named.body);
    assert.equal(named.json().data.key_id, "k".repeat(31));

    // Another long name whose first 31 characters are the same must not share the key ID.
    const sameStart = await t.request({
      method: "POST",
      url: `/v1/wifi/networks/home/keys/${"k".repeat(39)}x`,
      payload: { mac: "02:00:00:00:01:02", key_id: "k".repeat(31) },
    });
    assert.equal(sameStart.statusCode, 409, sameStart.body);
    assert.equal(sameStart.json().code, "already_exists");
    assert.equal(sameStart.json().field, "key_id");

    // The default key ID of "k.1" is "k_1", which another key already has.
    const explicit = await t.request({
      method: "POST",
      url: "/v1/wifi/networks/home/keys/other",
      payload: { mac: "02:00:00:00:01:03", key_id: "k_1" },
    });
    assert.equal(explicit.statusCode, 200, explicit.body);
    const defaulted = await t.request({
      method: "POST",
      url: "/v1/wifi/networks/home/keys/k.1",
      payload: { mac: "02:00:00:00:01:04" },
    });
    assert.equal(defaulted.statusCode, 409, defaulted.body);
    assert.equal(defaulted.json().code, "already_exists");
    assert.equal(defaulted.json().field, "key_id");
  });

  it("raises the version across delete and create", async () => {
    const url = "/v1/wifi/networks/again";
    const payload = { ssid: "Again", security: "wpa2-psk", generate_passphrase: true };
    const first = await t.request({ method: "POST", url, payload });
    assert.equal(first.statusCode, 200, first.body);
    const updated = await t.request({ method: "POST", url, payload: { hidden: true } });
    assert.equal(updated.statusCode, 200, updated.body);
    const before = updated.json().data.version;
    assert.equal(before, 2);

    const deleted = await t.request({ method: "DELETE", url });
    assert.equal(deleted.statusCode, 204, deleted.body);
    const created = await t.request({ method: "POST", url, payload });
    assert.equal(created.statusCode, 200, created.body);
    assert.ok(
      created.json().data.version > before,
      `version ${created.json().data.version} after create is not above ${before}`,
    );

    // A second round starts above the second network's last version.
    const again = created.json().data.version;
    assert.equal((await t.request({ method: "DELETE", url })).statusCode, 204);
    const third = await t.request({ method: "POST", url, payload });
    assert.equal(third.statusCode, 200, third.body);
    assert.ok(third.json().data.version > again);

    const list = await t.request({ method: "GET", url: "/v1/wifi/networks?list=true" });
    assert.ok(list.json().data.keys.includes("again"), list.body);
  });

  it("onboarding reveals passphrase, audit redacts", async () => {
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
