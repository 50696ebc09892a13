import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { generateKeyPair } from "../../../src/engines/wireguard/index.ts";
import { createWireguardRouteFixture, ok, type WireguardRouteFixture } from "./fixtures.ts";

interface Case {
  name: string;
  method?: "POST" | "GET" | "DELETE";
  url: string;
  body?: Record<string, unknown>;
  status: number;
  code?: string;
  field?: string;
}

const taken = generateKeyPair().publicKey;
const fresh = () => generateKeyPair().publicKey;
const valid = fresh();
const network = (body: Record<string, unknown>, name = "other") => ({
  url: `/v1/wireguard/networks/${name}`,
  body,
});
const peer = (body: Record<string, unknown>, name = "new") => ({
  url: `/v1/wireguard/networks/office/peers/${name}`,
  body: { public_key: fresh(), ...body },
});
const badKey = (name: string, key: unknown): Case => ({
  name,
  ...peer({ public_key: key }),
  status: 400,
  code: "invalid_field",
  field: "public_key",
});

const CASES: Case[] = [
  { name: "ok network", ...network({ address_ranges: "10.50.0.0/24" }, "ok1"), status: 200 },
  { name: "ok peer", ...peer({}, "ok2"), status: 200 },
  { name: "ok ipv6 endpoint", ...peer({ endpoint: "[2001:db8::1]:51820" }, "ok3"), status: 200 },
  badKey("fail key too short", valid.slice(0, 43)),
  badKey("fail key too long", `${valid}A`),
  badKey("fail key padding bits", `${valid.slice(0, 42)}B=`),
  badKey("fail key bad characters", `${valid.slice(0, 42)}-=`),
  badKey("fail key 33 bytes base64", Buffer.alloc(33, 7).toString("base64")),
  badKey("fail key all zero", Buffer.alloc(32).toString("base64")),
  {
    name: "fail key and generate",
    ...peer({ generate_key: true }),
    status: 400,
    code: "invalid_request",
    field: "generate_key",
  },
  {
    name: "fail key already used",
    ...peer({ public_key: taken }),
    status: 409,
    code: "already_exists",
    field: "public_key",
  },
  {
    name: "fail overlapping range",
    ...network({ address_ranges: "10.20.0.128/25" }),
    status: 409,
    code: "address_conflict",
    field: "address_ranges",
  },
  {
    name: "fail range host bits",
    ...network({ address_ranges: "10.60.0.1/24" }),
    status: 400,
    code: "invalid_field",
    field: "address_ranges",
  },
  {
    name: "fail bad cidr",
    ...network({ address_ranges: "10.60.0.0/40" }),
    status: 400,
    code: "invalid_field",
    field: "address_ranges",
  },
  {
    name: "fail two ipv4 ranges",
    ...network({ address_ranges: ["10.60.0.0/24", "10.61.0.0/24"] }),
    status: 400,
    code: "invalid_field",
    field: "address_ranges",
  },
  {
    name: "fail missing range",
    ...network({ listen_port: 51820 }),
    status: 400,
    code: "missing_field",
    field: "address_ranges",
  },
  {
    name: "fail unknown topology",
    ...network({ address_ranges: "10.60.0.0/24", topology: "ring" }),
    status: 400,
    code: "invalid_field",
    field: "topology",
  },
  {
    name: "fail listen port zero",
    ...network({ address_ranges: "10.60.0.0/24", listen_port: 0 }),
    status: 400,
    code: "invalid_field",
    field: "listen_port",
  },
  {
    name: "fail bad rotation period",
    ...network({ address_ranges: "10.60.0.0/24", rotation_period: "soon" }),
    status: 400,
    code: "invalid_field",
    field: "rotation_period",
  },
  {
    name: "fail bad rotation notice",
    ...network({ address_ranges: "10.60.0.0/24", rotation_notice: "later" }),
    status: 400,
    code: "invalid_field",
    field: "rotation_notice",
  },
  {
    name: "fail negative rotation notice",
    ...network({ address_ranges: "10.60.0.0/24", rotation_notice: -1 }),
    status: 400,
    code: "invalid_field",
    field: "rotation_notice",
  },
  {
    name: "fail rotation notice over 30 days",
    ...network({ address_ranges: "10.60.0.0/24", rotation_notice: "31d" }),
    status: 400,
    code: "invalid_field",
    field: "rotation_notice",
  },
  {
    name: "fail rotation notice as boolean",
    ...network({ address_ranges: "10.60.0.0/24", rotation_notice: true }),
    status: 400,
    code: "invalid_field",
    field: "rotation_notice",
  },
  {
    name: "fail rotation notice as list",
    ...network({ address_ranges: "10.60.0.0/24", rotation_notice: [5] }),
    status: 400,
    code: "invalid_field",
    field: "rotation_notice",
  },
  {
    name: "fail device id as boolean",
    ...peer({ device_id: true }),
    status: 400,
    code: "invalid_field",
    field: "device_id",
  },
  {
    name: "fail rotation notice as object",
    ...network({ address_ranges: "10.60.0.0/24", rotation_notice: { hours: 1 } }),
    status: 400,
    code: "invalid_field",
    field: "rotation_notice",
  },
  {
    name: "fail rotation request without device",
    url: "/v1/wireguard/networks/office/peers/alpha/request-rotation",
    status: 409,
    code: "invalid_state",
    field: "device_id",
  },
  {
    name: "fail rotation request unknown peer",
    url: "/v1/wireguard/networks/office/peers/nobody/request-rotation",
    status: 404,
    code: "not_found",
  },
  {
    name: "fail rotation request with body",
    url: "/v1/wireguard/networks/office/peers/alpha/request-rotation",
    body: { now: true },
    status: 400,
    code: "unknown_field",
    field: "now",
  },
  {
    name: "fail bad dns entry",
    ...network({ address_ranges: "10.60.0.0/24", dns: "not a host" }),
    status: 400,
    code: "invalid_field",
    field: "dns",
  },
  {
    name: "fail unknown network field",
    ...network({ address_ranges: "10.60.0.0/24", cidr: "x" }),
    status: 400,
    code: "unknown_field",
    field: "cidr",
  },
  {
    name: "fail address outside range",
    ...peer({ addresses: "10.21.0.9" }),
    status: 400,
    code: "invalid_field",
    field: "addresses",
  },
  {
    name: "fail address taken",
    ...peer({ addresses: "10.20.0.1" }),
    status: 409,
    code: "address_conflict",
    field: "addresses",
  },
  {
    name: "fail address not an ip",
    ...peer({ addresses: "ten.twenty" }),
    status: 400,
    code: "invalid_field",
    field: "addresses",
  },
  {
    name: "fail endpoint without port",
    ...peer({ endpoint: "192.0.2.1" }),
    status: 400,
    code: "invalid_field",
    field: "endpoint",
  },
  {
    name: "fail endpoint port too high",
    ...peer({ endpoint: "192.0.2.1:65536" }),
    status: 400,
    code: "invalid_field",
    field: "endpoint",
  },
  {
    name: "fail endpoint bare ipv6",
    ...peer({ endpoint: "2001:db8::1:51820" }),
    status: 400,
    code: "invalid_field",
    field: "endpoint",
  },
  {
    name: "fail endpoint with newline",
    ...peer({ endpoint: "a.example\nPostUp = x:1" }),
    status: 400,
    code: "invalid_field",
    field: "endpoint",
  },
  {
    name: "fail route bad cidr",
    ...peer({ allowed_ips: "192.168.0.0/33" }),
    status: 400,
    code: "invalid_field",
    field: "allowed_ips",
  },
  {
    name: "fail bad device id",
    ...peer({ device_id: "gw 1" }),
    status: 400,
    code: "invalid_field",
    field: "device_id",
  },
  {
    name: "fail bad peer name",
    ...peer({}, "bad%20name"),
    status: 400,
    code: "invalid_field",
    field: "peer",
  },
  {
    name: "fail unknown network",
    url: "/v1/wireguard/networks/nowhere/peers/alpha",
    body: { public_key: fresh() },
    status: 404,
    code: "not_found",
  },
  {
    name: "fail unknown peer",
    method: "GET",
    url: "/v1/wireguard/networks/office/peers/ghost",
    status: 404,
    code: "not_found",
  },
  {
    name: "fail unknown peer config",
    method: "GET",
    url: "/v1/wireguard/networks/office/peers/ghost/config",
    status: 404,
    code: "not_found",
  },
  {
    name: "fail unknown config format",
    method: "GET",
    url: "/v1/wireguard/networks/office/peers/alpha/config?format=ini",
    status: 400,
    code: "invalid_field",
    field: "format",
  },
  {
    name: "fail rotate unknown peer",
    url: "/v1/wireguard/networks/office/peers/ghost/rotate",
    body: { public_key: fresh() },
    status: 404,
    code: "not_found",
  },
  {
    name: "fail rotate malformed key",
    url: "/v1/wireguard/networks/office/peers/alpha/rotate",
    body: { public_key: "abc" },
    status: 400,
    code: "invalid_field",
    field: "public_key",
  },
  {
    name: "fail delete unknown network",
    method: "DELETE",
    url: "/v1/wireguard/networks/nowhere",
    status: 404,
    code: "not_found",
  },
];

/** Requests with bad input get a 4xx with a stable code naming the field, and change nothing. */
describe("wireguard bad input", () => {
  let fixture: WireguardRouteFixture;
  let stateBefore = "";

  const state = async () =>
    JSON.stringify([
      await ok(fixture, "GET", "/v1/wireguard/networks/office"),
      await ok(fixture, "GET", "/v1/wireguard/networks/office/peers/alpha"),
    ]);

  before(async () => {
    fixture = await createWireguardRouteFixture();
    await ok(fixture, "POST", "/v1/wireguard/networks/office", { address_ranges: "10.20.0.0/24" });
    await ok(fixture, "POST", "/v1/wireguard/networks/office/peers/alpha", { public_key: taken });
    stateBefore = await state();
  });

  after(async () => {
    await fixture.close();
  });

  for (const testCase of CASES) {
    it(testCase.name, async () => {
      const response = await fixture.request({
        method: testCase.method ?? "POST",
        url: testCase.url,
        ...(testCase.body ? { payload: testCase.body } : {}),
      });
      assert.equal(response.statusCode, testCase.status, response.body);
      if (testCase.code === undefined) return;
      const body = response.json();
      assert.equal(body.code, testCase.code);
      if (testCase.field !== undefined) assert.equal(body.field, testCase.field);
      const key = testCase.body?.public_key;
      if (typeof key === "string" && key.length > 8) assert.ok(!response.body.includes(key));
    });
  }

  it("leaves the network unchanged", async () => {
    const now = JSON.parse(await state());
    const then = JSON.parse(stateBefore);
    // The two ok peer cases each changed the network once; the failed requests changed nothing.
    assert.equal(now[0].peer_count, then[0].peer_count + 2);
    assert.equal(now[0].revision, then[0].revision + 2);
    const { config_version: _now, ...alphaNow } = now[1];
    const { config_version: _then, ...alphaThen } = then[1];
    assert.deepEqual(alphaNow, alphaThen);
  });
});
