import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { createDeviceApp, type DeviceApp } from "../devices/fixtures.ts";

// A file device cannot fsync a FIFO (EINVAL), so with a FIFO as
// `file_path` every write fails. Enabling such a device must fail with 400
// instead of listing a device that records nothing. The FIFO is made in
// the test's own temporary folder.
describe("file audit device on a FIFO", () => {
  let t: DeviceApp;
  let dir = "";
  let fifo = "";

  before(async () => {
    t = await createDeviceApp({ auditWriteTimeoutMs: 1000 });
    dir = mkdtempSync(join(tmpdir(), "keyward-breakit7-fifo-"));
    fifo = join(dir, "records.fifo");
    assert.equal(spawnSync("mkfifo", [fifo]).status, 0, "mkfifo failed");
  });
  after(async () => {
    await t.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("rejects enabling with 400", async () => {
    const response = await t.request({
      method: "POST",
      url: "/v1/sys/audit/fifo",
      payload: { type: "file", options: { file_path: fifo } },
    });
    assert.equal(response.statusCode, 400, response.body);
    const body = response.json();
    assert.equal(body.code, "invalid_request");
    assert.equal(body.field, "options.file_path");
  });

  it("lists no device afterwards", async () => {
    const response = await t.request({ method: "GET", url: "/v1/sys/audit" });
    assert.equal(response.statusCode, 200, response.body);
    assert.equal(Object.hasOwn(response.json().data, "fifo/"), false);
  });

  it("leaves the FIFO's mode unchanged", () => {
    assert.ok(statSync(fifo).isFIFO());
    assert.notEqual(statSync(fifo).mode & 0o777, 0o600);
  });
});
