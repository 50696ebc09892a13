import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { TestApp } from "../helpers/app.ts";
import {
  engineRoutes,
  openBadInputApp,
  PARAMETER_VALUES,
  PKI_MOUNT,
  type ProbedRoute,
  probe,
} from "./bad-input-probe.ts";

// PKI routes only serve PKI mounts, so the mount stays fixed while the
// other parameters take each value.
describe("bad input on PKI routes", () => {
  let t: TestApp;
  let routes: ProbedRoute[] = [];

  before(async () => {
    ({ t, routes } = await openBadInputApp());
  });
  after(() => t.close());

  it("never answers 5xx on PKI routes", async () => {
    const failures = await probe(
      t,
      engineRoutes(routes, "pki"),
      // The mount's CA and role are both named after it; transit's key names mean nothing here.
      [PKI_MOUNT, ...PARAMETER_VALUES.filter((value) => value !== "aes" && value !== "signer")],
      (path, value) =>
        path.replace("{mount}", PKI_MOUNT).replace(/\{[^}]+\}/g, encodeURIComponent(value)),
    );
    assert.deepEqual(failures, []);
  });
});
