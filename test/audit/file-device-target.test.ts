import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, statSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { isKeywardError } from "../../src/errors.ts";
import { type BrokerFixture, openBroker } from "./fixtures.ts";

// A file device opens its path and sets the file's mode to 0600. A path
// that names a device (such as /dev/null) or a FIFO, directly or through a
// link, is rejected before the mode changes. The tests use a FIFO of their
// own, never a real device file.
describe("file audit device targets", () => {
  let fixture: BrokerFixture;
  let fifo = "";

  before(async () => {
    fixture = await openBroker();
    fifo = join(fixture.dir, "records.fifo");
    assert.equal(spawnSync("mkfifo", [fifo]).status, 0, "mkfifo failed");
    chmodSync(fifo, 0o644);
    symlinkSync(fifo, join(fixture.dir, "link-to-fifo"));
  });
  after(async () => {
    await fixture.cleanup();
  });

  const targets: [string, string][] = [
    ["fifo", "records.fifo"],
    ["link", "link-to-fifo"],
  ];
  for (const [device, name] of targets) {
    it(`rejects ${name}`, async () => {
      const enabling = fixture.broker.enable(device, "file", {
        file_path: join(fixture.dir, name),
      });
      await assert.rejects(enabling, (error: unknown) => {
        assert.ok(isKeywardError(error), String(error));
        assert.equal(error.code, "invalid_request");
        assert.equal(error.field, "options.file_path");
        assert.match(error.message, /not a regular file/);
        return true;
      });
      assert.equal(statSync(fifo).mode & 0o777, 0o644, "the FIFO's mode changed");
    });
  }

  it("rejects a folder", async () => {
    await assert.rejects(
      fixture.broker.enable("folder", "file", { file_path: fixture.dir }),
      (error: unknown) => isKeywardError(error) && error.field === "options.file_path",
    );
  });
});
