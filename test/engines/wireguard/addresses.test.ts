import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  formatPrefix,
  lowestFree,
  parsePrefix,
  prefixesOverlap,
} from "../../../src/engines/wireguard/addresses.ts";
import { formatAddress, parseAddress } from "../../../src/util/ip-address.ts";

const prefix = (text: string) => parsePrefix(text, "address_ranges", true);

describe("wireguard addresses", () => {
  for (const [input, canonical] of [
    ["10.0.0.1", "10.0.0.1"],
    ["fd00::1", "fd00::1"],
    ["FD00:0:0:0:0:0:0:1", "fd00::1"],
    ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
    ["::ffff:192.0.2.1", "::ffff:c000:201"],
    ["::", "::"],
    ["1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"],
  ] as const) {
    it(`ok formats ${input}`, () => {
      const parsed = parseAddress(input);
      assert.ok(parsed);
      assert.equal(formatAddress(parsed.family, parsed.value), canonical);
    });
  }

  it("rejects host bits in ranges", () => {
    assert.throws(() => prefix("10.0.0.1/24"), { code: "invalid_field", field: "address_ranges" });
    assert.equal(formatPrefix(parsePrefix("10.0.0.1/24", "addresses", false)), "10.0.0.1/24");
  });

  for (const bad of [
    "10.0.0.0/33",
    "10.0.0/24",
    "fd00::/129",
    "10.0.0.0/024",
    "example/24",
    "fe80::1%eth0/64",
  ]) {
    it(`fail parses ${bad}`, () => {
      assert.throws(() => prefix(bad), { code: "invalid_field" });
    });
  }

  it("detects overlapping ranges", () => {
    assert.ok(prefixesOverlap(prefix("10.0.0.0/16"), prefix("10.0.5.0/24")));
    assert.ok(prefixesOverlap(prefix("10.0.5.0/24"), prefix("10.0.0.0/16")));
    assert.ok(!prefixesOverlap(prefix("10.0.0.0/24"), prefix("10.0.1.0/24")));
    assert.ok(!prefixesOverlap(prefix("10.0.0.0/8"), prefix("fd00::/8")));
    assert.ok(prefixesOverlap(prefix("fd00::/64"), prefix("fd00::/48")));
  });

  it("allocates the lowest free address", () => {
    const range = prefix("10.0.0.0/29");
    assert.equal(lowestFree(range, new Set()), 0x0a000001n);
    assert.equal(lowestFree(range, new Set(["10.0.0.1", "10.0.0.3"])), 0x0a000002n);
    const full = new Set(["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"]);
    assert.equal(lowestFree(range, full), undefined);
  });

  it("skips the IPv6 subnet-router address", () => {
    const range = prefix("fd00:20::/64");
    const first = lowestFree(range, new Set());
    assert.equal(formatAddress(6, first ?? 0n), "fd00:20::1");
  });
});
