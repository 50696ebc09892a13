import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createTestApp, type TestApp } from "../../helpers/app.ts";

/** The WireGuard engine as the server mounts it: tokens, policies and audit in front. */
describe("wireguard engine mounted in the server", () => {
  let t: TestApp;

  before(async () => {
    t = await createTestApp();
    const mounted = await t.request({
      method: "POST",
      url: "/v1/sys/mounts/vpn",
      payload: { type: "wireguard" },
    });
    assert.equal(mounted.statusCode, 204, mounted.body);
    const network = await t.request({
      method: "POST",
      url: "/v1/vpn/networks/office",
      payload: { address_ranges: ["10.20.0.0/24"] },
    });
    assert.equal(network.statusCode, 200, network.body);
  });

  after(async () => {
    await t.close();
  });

  it("keeps generated keys out of the audit log", async () => {
    const created = await t.request({
      method: "POST",
      url: "/v1/vpn/networks/office/peers/printer",
      payload: { generate_key: true },
    });
    assert.equal(created.statusCode, 200, created.body);
    const privateKey = created.json().data.private_key as string;
    assert.equal(privateKey.length, 44);

    const search = await t.request({
      method: "GET",
      url: "/v1/sys/audit/search?path_prefix=vpn/networks/&type=response",
    });
    assert.equal(search.statusCode, 200, search.body);
    const records = JSON.stringify(search.json().data.records);
    assert.ok(records.includes("hmac-sha256:"));
    assert.ok(!records.includes(privateKey));
  });

  it("lists networks and peers", async () => {
    const networks = await t.request({ method: "GET", url: "/v1/vpn/networks?list=true" });
    assert.equal(networks.statusCode, 200, networks.body);
    assert.deepEqual(networks.json().data.keys, ["office"]);
    const peers = await t.request({
      method: "GET",
      url: "/v1/vpn/networks/office/peers?list=true",
    });
    assert.equal(peers.statusCode, 200, peers.body);
    assert.deepEqual(peers.json().data.keys, ["printer"]);
  });

  it("renders a configuration", async () => {
    const response = await t.request({
      method: "GET",
      url: "/v1/vpn/networks/office/peers/printer/config",
    });
    assert.equal(response.statusCode, 200, response.body);
    const data = response.json().data;
    assert.equal(data.format, "wg-quick");
    assert.match(data.config_text, /^Address = 10\.20\.0\.1\/24$/m);
  });

  it("denies access without a policy", async () => {
    const created = await t.request({
      method: "POST",
      url: "/v1/auth/token/create",
      payload: { policies: ["default"] },
    });
    assert.equal(created.statusCode, 200, created.body);
    const token = created.json().auth.client_token as string;
    const response = await t.request({
      method: "GET",
      url: "/v1/vpn/networks/office/peers/printer/config",
      token,
    });
    assert.equal(response.statusCode, 403, response.body);
  });

  it("routes nothing on other mounts", async () => {
    const response = await t.request({ method: "GET", url: "/v1/nowhere/networks/office" });
    assert.equal(response.statusCode, 404, response.body);
  });
});
