import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createTestApp } from "../helpers/app.ts";

// Init opens the barrier itself to store the root token. A share that
// anyone sends to sys/unseal meanwhile must not join in: when it did, init
// failed after the seal configuration was stored, and the shares that the
// response should carry were lost for good.
describe("sys/init racing sys/unseal", () => {
  it("init returns usable shares", async () => {
    const t = await createTestApp({ uninitialised: true });
    try {
      const init = t.request({
        method: "PUT",
        url: "/v1/sys/init",
        payload: { secret_shares: 3, secret_threshold: 2 },
        token: null,
      });
      let settled = false;
      void init.then(() => {
        settled = true;
      });
      // A 33-byte share of no installation, sent until init has responded.
      const unrelatedShare = "ab".repeat(33);
      while (!settled) {
        await t.request({
          method: "PUT",
          url: "/v1/sys/unseal",
          payload: { key: unrelatedShare },
          token: null,
        });
      }

      const response = await init;
      assert.equal(response.statusCode, 200, response.body);
      const keys = JSON.parse(response.body).keys as string[];
      assert.equal(keys.length, 3);

      await t.request({
        method: "PUT",
        url: "/v1/sys/unseal",
        payload: { reset: true },
        token: null,
      });
      for (const key of keys.slice(0, 2)) {
        await t.request({ method: "PUT", url: "/v1/sys/unseal", payload: { key }, token: null });
      }
      const status = await t.request({ method: "GET", url: "/v1/sys/seal-status", token: null });
      assert.equal(JSON.parse(status.body).sealed, false, "the returned shares unseal the server");
    } finally {
      await t.close();
    }
  });
});
