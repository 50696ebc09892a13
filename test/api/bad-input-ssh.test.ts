import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { TestApp } from "../helpers/app.ts";
import {
  engineRoutes,
  openBadInputApp,
  PARAMETER_VALUES,
  type ProbedRoute,
  probe,
  SSH_MOUNT,
} from "./bad-input-probe.ts";

// SSH routes only serve SSH mounts, so the mount stays fixed while the
// other parameters take each value.
describe("bad input on SSH routes", () => {
  let t: TestApp;
  let routes: ProbedRoute[] = [];

  before(async () => {
    ({ t, routes } = await openBadInputApp());
  });
  after(() => t.close());

  it("never answers 5xx on SSH routes", async () => {
    const failures = await probe(
      t,
      engineRoutes(routes, "ssh"),
      // The mount's role is named after it.
      [SSH_MOUNT, ...PARAMETER_VALUES.filter((value) => value !== "aes" && value !== "signer")],
      (path, value) =>
        path.replace("{mount}", SSH_MOUNT).replace(/\{[^}]+\}/g, encodeURIComponent(value)),
    );
    assert.deepEqual(failures, []);
  });
});
