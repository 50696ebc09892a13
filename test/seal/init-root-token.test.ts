import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createTestApp } from "../helpers/app.ts";

// The sys/init schema limits root_token to 512 code points, but the token
// store counts UTF-16 code units. A token of 300 emoji (600 code units)
// passes the schema, and the token store rejects it. Init must check it
// before storing anything, or the installation stays without shares.
describe("sys/init with a root_token of astral characters", () => {
  it("rejection leaves server uninitialised", async () => {
    const t = await createTestApp({ uninitialised: true });
    try {
      const init = await t.request({
        method: "PUT",
        url: "/v1/sys/init",
        payload: { secret_shares: 1, secret_threshold: 1, root_token: "\u{1F600}".repeat(300) },
        token: null,
      });
      assert.equal(init.statusCode, 400, init.body);
      assert.equal(JSON.parse(init.body).field, "root_token");

      const status = JSON.parse(
        (await t.request({ method: "GET", url: "/v1/sys/seal-status", token: null })).body,
      );
      assert.equal(status.initialized, false, "a rejected init must store no seal configuration");
      assert.equal(status.sealed, true, "a rejected init must leave the server sealed");
    } finally {
      await t.close();
    }
  });
});
