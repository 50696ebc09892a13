import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createTestApp, type TestApp } from "../helpers/app.ts";

const AES_KEYS = /keyward_keys\{mount="transit",type="aes256-gcm96",state="active"\} (\d+)/;

async function scrapeAesKeys(t: TestApp): Promise<number | undefined> {
  const response = await t.request({ method: "GET", url: "/v1/sys/metrics" });
  assert.equal(response.statusCode, 200);
  const match = AES_KEYS.exec(response.body);
  return match === null ? undefined : Number(match[1]);
}

describe("metrics key counts", () => {
  let t: TestApp;

  before(async () => {
    t = await createTestApp();
  });
  after(() => t.close());

  it("first scrape waits for a count", async () => {
    await t.request({ method: "POST", url: "/v1/transit/keys/first", payload: {} });
    assert.equal(await scrapeAesKeys(t), 1);
  });

  it("later scrapes serve the last count", async () => {
    await t.request({ method: "POST", url: "/v1/transit/keys/second", payload: {} });
    // A new count starts 30 seconds after the last one at the earliest.
    assert.equal(await scrapeAesKeys(t), 1);
  });
});
