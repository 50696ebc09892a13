import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createTestApp, type TestApp } from "../helpers/app.ts";

describe("sys/health status code options", () => {
  let t: TestApp;

  before(async () => {
    t = await createTestApp();
  });
  after(() => t.close());

  async function health(query: string) {
    return t.request({ method: "GET", url: `/v1/sys/health?${query}`, token: null });
  }

  it("uses a three-digit code", async () => {
    assert.equal((await health("activecode=299")).statusCode, 299);
    assert.equal((await health("activecode=200")).statusCode, 200);
  });

  it("rejects other number spellings", async () => {
    for (const value of ["0x1f4", "%20200", "200%20", "2e2", "200.0", "+200", "0200", "", "abc"]) {
      const response = await health(`activecode=${value}`);
      assert.equal(response.statusCode, 400, `activecode=${value} gave ${response.statusCode}`);
      assert.equal(response.json().code, "invalid_field");
      assert.equal(response.json().field, "activecode");
    }
  });

  it("rejects codes outside 200 to 599", async () => {
    for (const value of ["100", "199", "600", "999"]) {
      const response = await health(`activecode=${value}`);
      assert.equal(response.statusCode, 400, `activecode=${value} gave ${response.statusCode}`);
    }
  });
});
