import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { TestApp } from "../helpers/app.ts";
import { openBadInputApp, PARAMETER_VALUES, type ProbedRoute, probe } from "./bad-input-probe.ts";

// The routes of mounted engines are probed in their own files, so that the
// files run side by side and each stays within the runner's timeout.
describe("bad input on every route", () => {
  let t: TestApp;
  let routes: ProbedRoute[] = [];

  before(async () => {
    ({ t, routes } = await openBadInputApp());
  });
  after(() => t.close());

  it("covers the API's routes", () => {
    assert.ok(routes.length >= 20, `only ${routes.length} routes found in the OpenAPI document`);
  });

  it("never answers 5xx", async () => {
    const failures = await probe(
      t,
      routes.filter((route) => route.engine === undefined && !route.path.startsWith("/v1/{mount}")),
      PARAMETER_VALUES,
      (path, value) => path.replace(/\{[^}]+\}/g, encodeURIComponent(value)),
    );
    assert.deepEqual(failures, []);
  });

  it("keeps serving afterwards", async () => {
    const response = await t.request({
      method: "POST",
      url: "/v1/transit/encrypt/aes",
      payload: { plaintext: "aGk=" },
    });
    assert.equal(response.statusCode, 200);
    const health = await t.request({ method: "GET", url: "/v1/sys/health", token: null });
    assert.equal(health.statusCode, 200);
  });
});
