import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { generateKeyPair } from "../../../src/engines/wireguard/index.ts";
import { createWireguardRouteFixture, ok, type WireguardRouteFixture } from "./fixtures.ts";

/**
 * Host names that glibc's `inet_aton` reads as numbers before any DNS
 * lookup, so `wg` would connect to an address other than the one written, or fail to
 * resolve the name and reject every configuration that lists the peer.
 */
const NUMERIC_NAMES = ["300.1.1.1", "010.1.1.1", "1.2.3", "2130706433", "0x7f.1", "0x7f000001"];

const REAL_NAMES = ["vpn.example.com", "1e100.net", "0x7f.example", "a1.b2.example", "host-1"];

describe("WireGuard numeric host names", () => {
  let fixture: WireguardRouteFixture;

  before(async () => {
    fixture = await createWireguardRouteFixture();
    await ok(fixture, "POST", "/v1/wireguard/networks/office", {
      address_ranges: ["10.20.0.0/24"],
    });
  });
  after(async () => fixture.close());

  for (const name of NUMERIC_NAMES) {
    it(`rejects endpoint ${name}`, async () => {
      const url = "/v1/wireguard/networks/office/peers/numeric";
      const response = await fixture.request({
        method: "POST",
        url,
        payload: { public_key: generateKeyPair().publicKey, endpoint: `${name}:51820` },
      });
      assert.equal(response.statusCode, 400, response.body);
      assert.equal(response.json().code, "invalid_field");
      assert.equal(response.json().field, "endpoint");
      const read = await fixture.request({ method: "GET", url });
      assert.equal(read.statusCode, 404, "a rejected peer is not stored");
    });

    it(`rejects dns entry ${name}`, async () => {
      const response = await fixture.request({
        method: "POST",
        url: "/v1/wireguard/networks/office",
        payload: { dns: ["192.0.2.53", name] },
      });
      assert.equal(response.statusCode, 400, response.body);
      assert.equal(response.json().field, "dns");
      const network = await ok(fixture, "GET", "/v1/wireguard/networks/office");
      assert.deepEqual(network.dns, [], "a rejected write changes nothing");
    });
  }

  it("accepts real host names", async () => {
    for (const [index, name] of REAL_NAMES.entries()) {
      const peer = await ok(fixture, "POST", `/v1/wireguard/networks/office/peers/real${index}`, {
        public_key: generateKeyPair().publicKey,
        endpoint: `${name}:51820`,
      });
      assert.equal(peer.endpoint, `${name}:51820`);
    }
    const network = await ok(fixture, "POST", "/v1/wireguard/networks/office", {
      dns: ["192.0.2.53", ...REAL_NAMES],
    });
    assert.deepEqual(network.dns, ["192.0.2.53", ...REAL_NAMES]);
  });

  it("renders accepted endpoints unchanged", async () => {
    const config = await ok(fixture, "GET", "/v1/wireguard/networks/office/peers/real0/config");
    const endpoints = config.config_text
      .split("\n")
      .filter((line: string) => line.startsWith("Endpoint = "));
    assert.deepEqual(
      endpoints.sort(),
      REAL_NAMES.slice(1)
        .map((name) => `Endpoint = ${name}:51820`)
        .sort(),
    );
  });
});
