import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { verifyAuditLog } from "../../src/audit/verify.ts";
import { type BrokerFixture, openBroker, readLines, requestEntry } from "./fixtures.ts";

// A record's hash covers its parsed JSON, so edits that parse to the same
// record must still be caught: a repeated key that some JSON readers take
// the first value of, and whitespace.
describe("verify of non-canonical lines", () => {
  let fixture: BrokerFixture;
  let lines: string[];
  let publicKeyPem: string;

  before(async () => {
    fixture = await openBroker();
    const path = join(fixture.dir, "audit.log");
    await fixture.broker.enable("file", "file", { file_path: path });
    for (let index = 1; index <= 4; index++) await fixture.broker.logRequest(requestEntry(index));
    lines = readLines(path);
    publicKeyPem = fixture.broker.publicKey().publicKeyPem;
  });
  after(async () => {
    await fixture.cleanup();
  });

  it("accepts the log as written", async () => {
    const result = await verifyAuditLog(lines, publicKeyPem);
    assert.equal(result.ok, true);
  });

  it("reports a repeated key as altered", async () => {
    const tampered = [...lines];
    const line = tampered[2]!;
    const at = line.indexOf('"request":{') + '"request":{'.length;
    tampered[2] = `${line.slice(0, at)}"path":"sys/health",${line.slice(at)}`;
    const result = await verifyAuditLog(tampered, publicKeyPem);
    assert.equal(result.ok, false);
    assert.equal(result.ok ? undefined : result.firstBad.reason, "altered");
    assert.equal(result.ok ? undefined : result.firstBad.line, 3);
  });

  it("reports added whitespace as altered", async () => {
    const tampered = [...lines];
    tampered[1] = JSON.stringify(JSON.parse(tampered[1]!), null, 1).replaceAll("\n", " ");
    const result = await verifyAuditLog(tampered, publicKeyPem);
    assert.equal(result.ok ? undefined : result.firstBad.reason, "altered");
    assert.equal(result.ok ? undefined : result.firstBad.line, 2);
  });
});
