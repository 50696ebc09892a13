import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { HMAC_PREFIX } from "../../src/audit/redact.ts";
import { type BrokerFixture, openBroker, readLines, requestEntry } from "./fixtures.ts";

const LOOKED_UP = "kw.LookedUpTokenLookedUpTokenLookedUpToken00";
const CHOSEN = "operator-chosen-root-token";

// Under auth/token/, `id` is a token: the one a root caller chooses in
// create, and the one lookup and lookup-self return.
describe("audit of token IDs", () => {
  let fixture: BrokerFixture;
  let path: string;

  before(async () => {
    fixture = await openBroker();
    path = join(fixture.dir, "audit.log");
    await fixture.broker.enable("file", "file", { file_path: path });
  });
  after(async () => {
    await fixture.cleanup();
  });

  it("hides the token a lookup returns", async () => {
    const entry = requestEntry(1, {});
    entry.request = { ...entry.request, path: "auth/token/lookup-self", data: undefined };
    await fixture.broker.logRequest(entry);
    await fixture.broker.logResponse({
      ...entry,
      response: { status: 200, data: { request_id: "r1", data: { id: LOOKED_UP, ttl: 60 } } },
    });
    const text = readLines(path).join("\n");
    assert.equal(text.includes(LOOKED_UP), false);
    const response = JSON.parse(readLines(path).at(-1) ?? "{}");
    assert.ok(response.response.data.data.id.startsWith(HMAC_PREFIX));
    assert.equal(response.response.data.request_id, "r1");
  });

  it("hides the ID chosen in a create request", async () => {
    const entry = requestEntry(2, {});
    entry.request = { ...entry.request, path: "auth/token/create", data: { id: CHOSEN } };
    await fixture.broker.logRequest(entry);
    const text = readLines(path).join("\n");
    assert.equal(text.includes(CHOSEN), false);
  });

  it("keeps `id` fields of other paths", async () => {
    const entry = requestEntry(3, {});
    entry.request = { ...entry.request, path: "transit/keys/k", data: { id: "not-a-token" } };
    await fixture.broker.logRequest(entry);
    const record = JSON.parse(readLines(path).at(-1) ?? "{}");
    assert.equal(record.request.data.id, "not-a-token");
  });
});
