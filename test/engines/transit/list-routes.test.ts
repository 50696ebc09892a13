import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { DAY_MS } from "./fixtures.ts";
import { createRouteFixture, type RouteFixture } from "./route-app.ts";

let fixture: RouteFixture;

async function list(query: string) {
  const response = await fixture.app.inject({
    method: "GET",
    url: `/v1/transit/keys?${query}`,
  });
  return { status: response.statusCode, body: JSON.parse(response.body) };
}

before(async () => {
  fixture = await createRouteFixture();
  for (const name of ["alpha", "beta", "gamma-1", "gamma-2", "gamma-3"]) {
    await fixture.service.createKey(name);
  }
  await fixture.service.configureKey("beta", { deletionAllowed: true });
  await fixture.service.scheduleDeletion("beta", { deletionWindowDays: 10 });
});

after(async () => {
  await fixture.app.close();
});

describe("transit key list parameters", () => {
  it("pages with limit and after", async () => {
    const first = await list("list=true&limit=2");
    assert.equal(first.status, 200);
    assert.deepEqual(first.body.data, { keys: ["alpha", "beta"], next_after: "beta" });
    const second = await list("list=true&limit=2&after=beta");
    assert.deepEqual(second.body.data, { keys: ["gamma-1", "gamma-2"], next_after: "gamma-2" });
    const last = await list("list=true&limit=2&after=gamma-2");
    assert.deepEqual(last.body.data, { keys: ["gamma-3"] });
  });

  it("filters by prefix", async () => {
    const found = await list("list=1&prefix=gamma-");
    assert.deepEqual(found.body.data, { keys: ["gamma-1", "gamma-2", "gamma-3"] });
  });

  it("returns an empty page with 200", async () => {
    const none = await list("list=true&prefix=zeta");
    assert.equal(none.status, 200);
    assert.deepEqual(none.body.data, { keys: [] });
  });

  it("searches an expiry window", async () => {
    const now = fixture.clock.now().getTime();
    const from = new Date(now).toISOString();
    const to = new Date(now + 30 * DAY_MS).toISOString();
    const found = await list(`list=true&expires_after=${from}&expires_before=${to}`);
    assert.equal(found.status, 200);
    assert.deepEqual(found.body.data.keys, ["beta"]);
    assert.deepEqual(found.body.data.key_info, {
      beta: { deletion_date: new Date(now + 10 * DAY_MS).toISOString() },
    });
  });

  it("rejects invalid parameters by field", async () => {
    const cases: [string, string][] = [
      ["limit=0", "limit"],
      ["limit=1001", "limit"],
      ["limit=ten", "limit"],
      ["prefix=a%2Fb", "prefix"],
      ["prefix=", "prefix"],
      ["after=a%20b", "after"],
      ["expires_after=tomorrow", "expires_after"],
      ["rotates_before=2030-01-01", "rotates_before"],
      ["expires_after=2030-02-30T00:00:00Z", "expires_after"],
      ["expires_before=2031-04-31T00:00:00Z", "expires_before"],
      ["expires_after=2030-01-01T00:00:00Z&rotates_after=2030-01-01T00:00:00Z", "rotates_after"],
    ];
    for (const [query, field] of cases) {
      const response = await list(`list=true&${query}`);
      assert.equal(response.status, 400, `${query}: ${JSON.stringify(response.body)}`);
      assert.equal(response.body.code, "invalid_field", query);
      assert.equal(response.body.field, field, query);
    }
  });

  it("still needs list=true", async () => {
    const response = await list("limit=2");
    assert.equal(response.status, 405);
    assert.equal(response.body.code, "method_not_allowed");
  });
});

describe("transit plain key list", () => {
  it("keeps 404 for an empty mount", async () => {
    const empty = await createRouteFixture();
    try {
      const response = await empty.app.inject({ method: "GET", url: "/v1/transit/keys?list=true" });
      assert.equal(response.statusCode, 404);
      const page = await empty.app.inject({
        method: "GET",
        url: "/v1/transit/keys?list=true&limit=10",
      });
      assert.equal(page.statusCode, 200);
    } finally {
      await empty.app.close();
    }
  });
});
