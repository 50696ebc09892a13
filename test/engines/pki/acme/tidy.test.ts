import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type {
  AccountRecord,
  AuthorizationRecord,
  OrderRecord,
} from "../../../../src/engines/pki/acme/records.ts";
import type { AcmeStore } from "../../../../src/engines/pki/acme/storage.ts";
import { acmeServiceOf } from "../../../../src/engines/pki/routes/acme.ts";
import type { TestApp } from "../../../helpers/app.ts";
import { createPkiApp, ok } from "../fixtures.ts";

const DAY_MS = 24 * 3600 * 1000;

function ago(ms: number): string {
  return new Date(Date.now() - ms).toISOString();
}

function account(id: string, changes: Partial<AccountRecord> = {}): AccountRecord {
  return {
    id,
    directory: "",
    status: "valid",
    contact: [],
    termsOfServiceAgreed: true,
    jwk: { kty: "EC", crv: "P-256", x: "x", y: "y" },
    thumbprint: `thumb-${id}`,
    createdAt: ago(90 * DAY_MS),
    ...changes,
  };
}

function order(id: string, accountId: string, changes: Partial<OrderRecord>): OrderRecord {
  return {
    id,
    accountId,
    directory: "",
    status: "pending",
    expires: ago(-6 * DAY_MS),
    identifiers: [{ type: "dns", value: `${id}.example.com` }],
    authorizationIds: [],
    createdAt: ago(DAY_MS),
    ...changes,
  };
}

function authorization(id: string, accountId: string, expires: string): AuthorizationRecord {
  return {
    id,
    accountId,
    directory: "",
    identifier: { type: "dns", value: `${id}.example.com` },
    wildcard: false,
    status: "pending",
    expires,
    challenges: [{ type: "http-01", token: `token-${id}`, status: "pending" }],
    createdAt: ago(20 * DAY_MS),
  };
}

async function addCertificate(store: AcmeStore, serialHex: string, notAfter: string) {
  await store.putCertificate({
    serialHex,
    accountId: "active",
    orderId: "",
    directory: "",
    chainPem: "",
    issuerId: "",
    notBefore: ago(60 * DAY_MS),
    notAfter,
  });
}

/** ACME records written straight to the store with past dates, then tidied through the API. */
describe("ACME tidy", () => {
  let t: TestApp;
  let store: AcmeStore;

  before(async () => {
    t = await createPkiApp();
    store = acmeServiceOf(t.keyward.pki("pki")!).store;

    await store.putAccount(account("active"));
    await store.putAccountKey("", "thumb-active", "active");
    await store.createOrder(
      order("expired", "active", {
        status: "invalid",
        expires: ago(10 * DAY_MS),
        authorizationIds: ["stale"],
      }),
    );
    await store.createOrder(
      order("issued", "active", {
        status: "valid",
        expires: ago(10 * DAY_MS),
        authorizationIds: ["used"],
        certificateSerial: "aa01",
      }),
    );
    await store.createOrder(order("open", "active", {}));
    await addCertificate(store, "aa01", ago(-30 * DAY_MS));
    await addCertificate(store, "aa02", ago(2 * DAY_MS));
    await store.createAuthorization(authorization("used", "active", ago(10 * DAY_MS)));
    await store.createAuthorization(authorization("stale", "active", ago(10 * DAY_MS)));
    await store.createAuthorization(authorization("recent", "active", ago(1800 * 1000)));

    await store.putAccount(
      account("gone", { status: "deactivated", statusChangedAt: ago(40 * DAY_MS) }),
    );
    await store.putAccountKey("", "thumb-gone", "gone");
    await store.createOrder(order("orphan", "gone", { authorizationIds: ["orphan-authz"] }));
    await store.createAuthorization(authorization("orphan-authz", "gone", ago(-DAY_MS)));

    await store.putAccount(
      account("resting", { status: "deactivated", statusChangedAt: ago(DAY_MS) }),
    );
  });

  after(async () => {
    await t?.close();
  });

  it("leaves records without tidy_acme", async () => {
    const response = await t.request({
      method: "POST",
      url: "/v1/pki/tidy",
      payload: { tidy_cert_store: true, safety_buffer: "1h" },
    });
    assert.equal(response.statusCode, 202, response.body);
    assert.equal(response.json().data.acme_orders_deleted_count, undefined);
    assert.ok(await store.order("expired"));
  });

  it("deletes ended records on demand", async () => {
    const response = await t.request({
      method: "POST",
      url: "/v1/pki/tidy",
      payload: { tidy_acme: true, safety_buffer: "1h", acme_account_safety_buffer: "720h" },
    });
    assert.equal(response.statusCode, 202, response.body);
    const result = response.json().data;
    assert.equal(result.acme_account_deleted_count, 1);
    assert.equal(result.acme_orders_deleted_count, 2);
    assert.equal(result.acme_authorizations_deleted_count, 2);
    assert.equal(result.acme_certificates_deleted_count, 1);

    const status = await ok(t, "GET", "/v1/pki/tidy-status");
    assert.equal(status.acme_orders_deleted_count, 2);
  });

  it("keeps live and referenced records", async () => {
    assert.ok(await store.account("active"));
    assert.ok(await store.account("resting"));
    assert.ok(await store.order("issued"));
    assert.ok(await store.order("open"));
    assert.ok(await store.authorization("used"));
    assert.ok(await store.authorization("recent"));
    assert.ok(await store.certificate("aa01"));
    assert.deepEqual((await store.accountOrderIds("active")).sort(), ["issued", "open"]);
  });

  it("removes records with their indexes", async () => {
    assert.equal(await store.order("expired"), undefined);
    assert.equal(await store.authorization("stale"), undefined);
    assert.equal(await store.certificate("aa02"), undefined);
    assert.equal(await store.account("gone"), undefined);
    assert.equal(await store.accountIdByKey("", "thumb-gone"), undefined);
    assert.equal(await store.order("orphan"), undefined);
    assert.equal(await store.authorization("orphan-authz"), undefined);
    assert.deepEqual(await store.accountOrderIds("gone"), []);
    assert.deepEqual(await store.accountAuthorizationIds("gone"), []);
    const missing = await t.request({ method: "GET", url: "/v1/pki/acme/mgmt/accounts/gone" });
    assert.equal(missing.statusCode, 404);
  });

  it("stores auto-tidy ACME settings", async () => {
    const before = await ok(t, "GET", "/v1/pki/config/auto-tidy");
    assert.equal(before.tidy_acme, false);
    assert.equal(before.acme_account_safety_buffer, 30 * 24 * 3600);
    const written = await ok(t, "POST", "/v1/pki/config/auto-tidy", {
      enabled: true,
      interval_duration: "1h",
      safety_buffer: "1h",
      tidy_acme: true,
      acme_account_safety_buffer: "1h",
    });
    assert.equal(written.tidy_acme, true);
    assert.equal(written.acme_account_safety_buffer, 3600);
  });

  it("deletes accounts on schedule", async () => {
    const tidy = t.keyward.pki("pki")!.revocation.tidy;
    // The on-demand run just now counts as the last run, so ask as if the interval had passed.
    await tidy.tidyIfDue(new Date(Date.now() + 2 * 3600 * 1000));
    assert.equal(tidy.lastTidy?.acme?.accountsDeleted, 1);
    assert.equal(await store.account("resting"), undefined);
    assert.ok(await store.account("active"));
  });
});
