import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { AuditRecord } from "../../src/audit/types.ts";
import { type BrokerFixture, openBroker, requestEntry } from "./fixtures.ts";

describe("audit search", () => {
  let fixture: BrokerFixture;
  let now = Date.parse("2024-05-01T00:00:00Z");

  const log = async (
    index: number,
    path: string,
    accessor: string,
    keyName: string | undefined,
  ) => {
    const base = requestEntry(index);
    await fixture.broker.logRequest({
      request: { ...base.request, path, keyName },
      auth: { ...base.auth, accessor },
    });
    await fixture.broker.logResponse({
      request: { ...base.request, path, keyName },
      auth: { ...base.auth, accessor },
      response: { status: 200 },
    });
    now += 60_000;
  };

  before(async () => {
    fixture = await openBroker({ clock: () => new Date(now), checkpointInterval: 4 });
    await log(1, "transit/encrypt/payments", "alice", "payments");
    await log(2, "transit/decrypt/payments", "bob", "payments");
    await log(3, "transit/encrypt/orders", "alice", "orders");
    await log(4, "sys/mounts", "bob", undefined);
  });
  after(() => fixture.cleanup());

  const ids = (records: unknown[]) => (records as AuditRecord[]).map((record) => record.request.id);

  const cases: Array<[string, Parameters<typeof fixture.broker.search>[0], string[]]> = [
    ["ok no filter", {}, ["req-1", "req-1", "req-2", "req-2", "req-3", "req-3", "req-4", "req-4"]],
    ["ok by accessor", { accessor: "alice", type: "request" }, ["req-1", "req-3"]],
    ["ok by path prefix", { path_prefix: "transit/encrypt/", type: "request" }, ["req-1", "req-3"]],
    ["ok by path with /v1/", { path_prefix: "/v1/sys/", type: "response" }, ["req-4"]],
    ["ok by key", { key: "payments", type: "request" }, ["req-1", "req-2"]],
    [
      "ok by time range",
      { from: "2024-05-01T00:01:00Z", to: "2024-05-01T00:03:00Z", type: "request" },
      ["req-2", "req-3"],
    ],
    ["ok combined filters", { accessor: "bob", key: "payments" }, ["req-2", "req-2"]],
    ["ok with limit and offset", { type: "request", limit: 2, offset: 1 }, ["req-2", "req-3"]],
  ];

  for (const [name, query, expected] of cases) {
    it(name, async () => {
      const result = await fixture.broker.search(query);
      assert.deepEqual(ids(result.records), expected);
    });
  }

  it("returns request then response", async () => {
    const result = await fixture.broker.search({ key: "orders" });
    assert.deepEqual(
      result.records.map((record) => record.type),
      ["request", "response"],
    );
    assert.equal(result.total, 2);
  });

  it("counts matches beyond the page", async () => {
    const result = await fixture.broker.search({ type: "request", limit: 1 });
    assert.equal(result.records.length, 1);
    assert.equal(result.total, 4);
  });

  it("finds checkpoints only when asked", async () => {
    const result = await fixture.broker.search({ type: "checkpoint" });
    assert.deepEqual(
      result.records.map((record) => record.seq),
      [5, 10],
    );
  });

  const invalid: Array<[string, Parameters<typeof fixture.broker.search>[0], string]> = [
    ["fail bad from time", { from: "yesterday" }, "from"],
    ["fail limit above maximum", { limit: 5000 }, "limit"],
    ["fail negative offset", { offset: -1 }, "offset"],
    ["fail unknown type", { type: "other" as "request" }, "type"],
  ];
  for (const [name, query, field] of invalid) {
    it(name, async () => {
      await assert.rejects(fixture.broker.search(query), { code: "invalid_field", field });
    });
  }

  it("fail search of a missing device", async () => {
    await assert.rejects(fixture.broker.search({ device: "nowhere" }), { code: "not_found" });
  });
});
