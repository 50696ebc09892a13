import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isKeywardError } from "../../src/errors.ts";
import { openBroker, requestEntry } from "./fixtures.ts";

// The broker closes for a seal or a shutdown. A request that arrives
// meanwhile gets the 503 of a sealed server, so clients retry it.
describe("closing audit broker", () => {
  it("rejects a record as sealed", async () => {
    const fixture = await openBroker();
    const closed = fixture.broker.close();
    // The close starts once the broker's admin queue runs it.
    while (fixture.broker.isOpen) await Promise.resolve();
    const logged = fixture.broker.logRequest(requestEntry(1)).then(
      () => undefined,
      (error: unknown) => error,
    );
    await closed;
    const error = await logged;
    assert.ok(isKeywardError(error), String(error));
    assert.equal(error.code, "sealed");
    await fixture.cleanup();
  });
});
