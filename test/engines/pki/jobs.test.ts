import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createPkiJobs } from "../../../src/engines/pki/jobs.ts";
import * as x509 from "../../../src/engines/pki/x509.ts";
import type { TestApp } from "../../helpers/app.ts";
import { createPkiApp, ok } from "./fixtures.ts";

const HOUR_MS = 3600 * 1000;

describe("PKI scheduled jobs", () => {
  let t: TestApp;

  const crlNumber = async () => {
    const response = await t.request({ method: "GET", url: "/v1/pki/crl", token: null });
    const extension = new x509.X509Crl(response.rawPayload).getExtension("2.5.29.20");
    return Buffer.from(extension!.value).toString("hex");
  };
  const job = (name: string) => {
    const found = createPkiJobs({
      services: () => [t.keyward.pki("pki")!],
      intervalMs: 60_000,
    }).find((candidate) => candidate.name === name);
    assert.ok(found);
    return found;
  };

  before(async () => {
    t = await createPkiApp();
    await ok(t, "POST", "/v1/pki/root/generate/internal", {
      common_name: "Jobs Root",
      key_type: "ec",
      ttl: "8760h",
    });
  });
  after(() => t.close());

  it("rebuilds expired CRLs", async () => {
    const first = await crlNumber();
    await job("pki-crl-rebuild").run(new Date(Date.now() + HOUR_MS));
    assert.equal(await crlNumber(), first);
    await job("pki-crl-rebuild").run(new Date(Date.now() + 73 * HOUR_MS));
    assert.notEqual(await crlNumber(), first);
  });

  it("rebuilds within the grace period", async () => {
    await ok(t, "POST", "/v1/pki/config/crl", {
      auto_rebuild: true,
      expiry: "24h",
      auto_rebuild_grace_period: "12h",
    });
    await ok(t, "GET", "/v1/pki/crl/rotate");
    const rotated = await crlNumber();
    await job("pki-crl-rebuild").run(new Date(Date.now() + HOUR_MS));
    assert.equal(await crlNumber(), rotated);
    await job("pki-crl-rebuild").run(new Date(Date.now() + 13 * HOUR_MS));
    assert.notEqual(await crlNumber(), rotated);
  });

  it("runs auto-tidy when enabled", async () => {
    await job("pki-auto-tidy").run(new Date());
    assert.equal((await ok(t, "GET", "/v1/pki/tidy-status")).state, "Inactive");
    await ok(t, "POST", "/v1/pki/config/auto-tidy", {
      enabled: true,
      tidy_cert_store: true,
      interval_duration: "1h",
    });
    await job("pki-auto-tidy").run(new Date());
    assert.equal((await ok(t, "GET", "/v1/pki/tidy-status")).state, "Finished");
  });
});
