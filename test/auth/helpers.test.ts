import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { addressInCidrs, cidrsWithin, parseCidrList } from "../../src/auth/cidr.ts";
import { parseDuration } from "../../src/auth/duration.ts";
import { LoginRateLimiter, rateLimitSource } from "../../src/auth/rate-limiter.ts";
import { childPolicies, normalisePolicies } from "../../src/auth/token-policies.ts";
import { keywardError } from "./fixtures.ts";

describe("parseDuration", () => {
  const cases: [string, number | string, number | undefined][] = [
    ["ok integer", 3600, 3600],
    ["ok digit string", "90", 90],
    ["ok hours", "1h", 3600],
    ["ok combined", "1h30m15s", 5415],
    ["ok days", "2d", 172_800],
    ["ok fraction", "1.5h", 5400],
    ["ok zero", 0, 0],
    ["fail negative", -1, undefined],
    ["fail fraction of a second", "1.5s", undefined],
    ["fail unknown unit", "10w", undefined],
    ["fail sub-second unit", "10ms", undefined],
    ["fail empty", "", undefined],
    ["fail trailing text", "1hx", undefined],
    ["fail float number", 1.5, undefined],
    ["fail above 100 years", "36600d", undefined],
  ];
  for (const [name, input, expected] of cases) {
    it(name, () => {
      if (expected === undefined) {
        assert.throws(() => parseDuration(input, "ttl"), keywardError("invalid_field", "ttl"));
      } else {
        assert.equal(parseDuration(input, "ttl"), expected);
      }
    });
  }
});

describe("CIDR lists", () => {
  it("parses arrays and comma lists", () => {
    assert.deepEqual(parseCidrList(["10.0.0.0/8, 192.0.2.1", "10.0.0.0/8"], "cidrs"), [
      "10.0.0.0/8",
      "192.0.2.1",
    ]);
    assert.deepEqual(parseCidrList("2001:db8::/32", "cidrs"), ["2001:db8::/32"]);
    assert.deepEqual(parseCidrList(undefined, "cidrs"), []);
  });

  for (const bad of [
    "10.0.0.0/33",
    "10.0.0/8",
    "host.example",
    "10.0.0.0/8/1",
    "::/129",
    "10.0.0.0/-1",
  ]) {
    it(`fail ${bad}`, () => {
      assert.throws(() => parseCidrList([bad], "cidrs"), keywardError("invalid_field", "cidrs"));
    });
  }

  it("matches addresses in blocks", () => {
    assert.equal(addressInCidrs("10.9.8.7", ["10.0.0.0/8"]), true);
    assert.equal(addressInCidrs("::ffff:10.9.8.7", ["10.0.0.0/8"]), true);
    assert.equal(addressInCidrs("11.0.0.1", ["10.0.0.0/8"]), false);
    assert.equal(addressInCidrs("192.0.2.1", ["192.0.2.1"]), true);
    assert.equal(addressInCidrs("192.0.2.2", ["192.0.2.1"]), false);
    assert.equal(addressInCidrs("2001:db8::1", ["2001:db8::/32"]), true);
    assert.equal(addressInCidrs("not-an-ip", ["0.0.0.0/0"]), false);
  });

  it("checks that blocks nest", () => {
    assert.equal(cidrsWithin(["10.1.0.0/16", "10.2.3.4"], ["10.0.0.0/8"]), true);
    assert.equal(cidrsWithin(["10.0.0.0/7"], ["10.0.0.0/8"]), false);
    assert.equal(cidrsWithin(["11.0.0.0/16"], ["10.0.0.0/8"]), false);
    assert.equal(cidrsWithin(["2001:db8::/48"], ["10.0.0.0/8"]), false);
    assert.equal(cidrsWithin([], ["10.0.0.0/8"]), true);
  });
});

describe("LoginRateLimiter", () => {
  it("rejects after ten failures", () => {
    let now = 0;
    const limiter = new LoginRateLimiter({ clock: () => now });
    for (let i = 0; i < 10; i++) {
      limiter.check("address:192.0.2.1");
      limiter.fail("address:192.0.2.1");
    }
    assert.throws(() => limiter.check("address:192.0.2.1"), keywardError("rate_limited"));
    limiter.check("address:192.0.2.2");

    // One failure's allowance comes back after a tenth of the minute.
    now += 5_999;
    assert.throws(() => limiter.check("address:192.0.2.1"), keywardError("rate_limited"));
    now += 1;
    limiter.check("address:192.0.2.1");
    now += 60_000;
    limiter.check("address:192.0.2.1");
    assert.equal(limiter.size, 0);
  });

  it("resets on success when told", () => {
    const keeps = new LoginRateLimiter({ capacity: 1, clock: () => 0 });
    keeps.fail("k");
    keeps.succeed("k");
    assert.throws(() => keeps.check("k"), keywardError("rate_limited"));

    const resets = new LoginRateLimiter({ capacity: 1, clock: () => 0, resetOnSuccess: true });
    resets.fail("k");
    resets.succeed("k");
    resets.check("k");
  });

  it("bounds the keys it tracks", () => {
    const limiter = new LoginRateLimiter({ maxKeys: 3, clock: () => 0 });
    for (const key of ["a", "b", "c", "d"]) limiter.fail(key);
    assert.equal(limiter.size, 3);
  });

  it("says when to retry", () => {
    const limiter = new LoginRateLimiter({ capacity: 1, refillMs: 30_000, clock: () => 0 });
    limiter.fail("k");
    assert.throws(
      () => limiter.check("k"),
      (error: Error) => error.message === "too many failed attempts; retry in 30 seconds",
    );
  });

  it("counts an IPv6 /64 as one source", () => {
    const cases = [
      ["10.1.2.3", "10.1.2.3"],
      ["::ffff:10.1.2.3", "10.1.2.3"],
      ["2001:db8::1", "2001:db8::/64"],
      ["2001:db8:0:0:ffff::5", "2001:db8::/64"],
      ["2001:0db8:aaaa:bbbb:1:2:3:4", "2001:db8:aaaa:bbbb::/64"],
      ["2001:db8:1:2::", "2001:db8:1:2::/64"],
      ["::1", "::/64"],
      ["2001:db8::1.2.3.4", "2001:db8::/64"],
      ["not an address", "not an address"],
    ];
    for (const [address, source] of cases) assert.equal(rateLimitSource(address!), source, address);
  });
});

describe("token policies", () => {
  it("normalises as Vault does", () => {
    assert.deepEqual(normalisePolicies([" B", "a,c", "", "a"], true), ["a", "b", "c", "default"]);
    assert.deepEqual(normalisePolicies(["a", "root"], true), ["root"]);
    assert.deepEqual(normalisePolicies([], false), []);
    assert.throws(
      () => normalisePolicies(["a b"], false),
      keywardError("invalid_field", "policies"),
    );
  });

  it("lets root grant anything", () => {
    assert.deepEqual(childPolicies(["root"], ["x"], false), ["default", "x"]);
    assert.deepEqual(childPolicies(["root"], undefined, false), ["root"]);
    assert.deepEqual(childPolicies(["a", "default"], [], true), ["a"]);
  });
});
