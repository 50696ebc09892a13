import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { TestApp } from "../helpers/app.ts";
import {
  openBadInputApp,
  PARAMETER_VALUES,
  type ProbedRoute,
  probe,
  TRANSIT_MOUNT,
  WIREGUARD_MOUNT,
} from "./bad-input-probe.ts";

// Transit and WireGuard routes under /v1/{mount}; PKI and SSH have their own files.
describe("bad input on mounted engine routes", () => {
  let t: TestApp;
  let routes: ProbedRoute[] = [];

  before(async () => {
    ({ t, routes } = await openBadInputApp());
  });
  after(() => t.close());

  it("never answers 5xx on mounted routes", async () => {
    const failures = await probe(
      t,
      routes.filter((route) => route.engine === undefined && route.path.startsWith("/v1/{mount}")),
      PARAMETER_VALUES,
      // The mount stays fixed, on the engine that serves the route.
      (path, value) =>
        path
          .replace("{mount}", path.includes("/networks") ? WIREGUARD_MOUNT : TRANSIT_MOUNT)
          .replace(/\{[^}]+\}/g, encodeURIComponent(value)),
    );
    assert.deepEqual(failures, []);
  });
});
