import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { generateKeyPair } from "../../../src/engines/wireguard/keys.ts";
import { createTestApp, type TestApp } from "../../helpers/app.ts";

/** The field prime of Curve25519, 2^255 - 19. */
const FIELD_PRIME = (1n << 255n) - 19n;

/** Encodes a u-coordinate as 32 little-endian bytes in base64, as WireGuard keys are written. */
function encodeU(u: bigint): string {
  return Buffer.from(u.toString(16).padStart(64, "0"), "hex").reverse().toString("base64");
}

/** Returns `key` with bit 255 set. X25519 ignores that bit (RFC 7748 section 5), so it is the same point. */
function withHighBit(key: string): string {
  const bytes = Buffer.from(key, "base64");
  bytes[31] = (bytes[31] as number) | 0x80;
  return bytes.toString("base64");
}

/**
 * The same X25519 point has other encodings: with bit 255 set, and u + p
 * for u below 19. The holder of the private key can complete handshakes
 * under either, so Keyward takes only the form `wg pubkey` prints, and a
 * peer cannot register another peer's key under another spelling.
 */
describe("wireguard keys in other encodings", () => {
  let t: TestApp;

  before(async () => {
    t = await createTestApp();
    const mounted = await t.request({
      method: "POST",
      url: "/v1/sys/mounts/wg",
      payload: { type: "wireguard" },
    });
    assert.equal(mounted.statusCode, 204, mounted.body);
    const network = await t.request({
      method: "POST",
      url: "/v1/wg/networks/office",
      payload: { address_ranges: ["10.20.0.0/24"] },
    });
    assert.equal(network.statusCode, 200, network.body);
  });
  after(async () => t.close());

  async function expectRejected(existing: string, alias: string, peer: string): Promise<void> {
    const first = await t.request({
      method: "POST",
      url: `/v1/wg/networks/office/peers/${peer}-first`,
      payload: { public_key: existing },
    });
    assert.equal(first.statusCode, 200, first.body);

    const second = await t.request({
      method: "POST",
      url: `/v1/wg/networks/office/peers/${peer}-second`,
      payload: { public_key: alias },
    });
    assert.equal(second.statusCode, 400, second.body);
    assert.equal(second.json().code, "invalid_field", second.body);
    assert.equal(second.json().field, "public_key", second.body);

    const read = await t.request({
      method: "GET",
      url: `/v1/wg/networks/office/peers/${peer}-second`,
    });
    assert.equal(read.statusCode, 404, `a rejected peer is not stored: ${read.body}`);
  }

  it("rejects bit 255 set", async () => {
    const { publicKey } = generateKeyPair();
    await expectRejected(publicKey, withHighBit(publicKey), "high-bit");
  });

  it("rejects non-canonical u + p", async () => {
    await expectRejected(encodeU(9n), encodeU(9n + FIELD_PRIME), "non-canonical");
  });
});
