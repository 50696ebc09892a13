import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { createTestApp, type TestApp } from "../../helpers/app.ts";
import { callApi, okApi, wrapForImport } from "./import-wrap.ts";

describe("key import races", () => {
  let t: TestApp;
  let wrappingKeyPem = "";

  before(async () => {
    t = await createTestApp();
    const read = await okApi(t, "GET", "transit/wrapping_key");
    wrappingKeyPem = read.data.public_key;
  });
  after(async () => {
    await t.close();
  });

  // import_version builds the version's material for the key it read before
  // the unwrap. A forced restore in between may replace the key with one of
  // another type, which must not get a version of the wrong type.
  it("import_version beside a forced restore", async () => {
    await okApi(t, "POST", "transit/keys/aes-source/import", {
      ciphertext: wrapForImport(wrappingKeyPem, randomBytes(32)),
      exportable: true,
      allow_plaintext_backup: true,
    });
    const backup = (await okApi(t, "GET", "transit/backup/aes-source")).data.backup as string;

    for (let attempt = 0; attempt < 5; attempt++) {
      const name = `mac-${attempt}`;
      await okApi(t, "POST", `transit/keys/${name}/import`, {
        ciphertext: wrapForImport(wrappingKeyPem, randomBytes(48)),
        type: "hmac",
      });
      const [imported, restored] = await Promise.all([
        callApi(t, "POST", `transit/keys/${name}/import_version`, {
          ciphertext: wrapForImport(wrappingKeyPem, randomBytes(48)),
        }),
        callApi(t, "POST", `transit/restore/${name}`, { backup, force: true }),
      ]);
      assert.equal(restored.status, 204, JSON.stringify(restored.json));
      assert.ok(imported.status < 500, `import_version: ${JSON.stringify(imported.json)}`);

      // Whichever request won, the stored key must still work.
      const encrypted = await callApi(t, "POST", `transit/encrypt/${name}`, { plaintext: "aGk=" });
      assert.equal(encrypted.status, 200, `attempt ${attempt}: ${JSON.stringify(encrypted.json)}`);
      if (imported.status === 200) {
        const read = await okApi(t, "GET", `transit/keys/${name}`);
        assert.equal(
          read.data.type,
          "hmac",
          `attempt ${attempt}: the key is now ${read.data.type}`,
        );
      }
    }
  });

  // The first wrapping_key read generates an RSA-4096 key in the background.
  // An unmount and a new mount at the same path during the generation must
  // not leave the old mount's key to the new one.
  it("new mount gets a new wrapping key", async () => {
    await okApi(t, "POST", "sys/mounts/reused", { type: "transit" });
    // Not awaited: the read is still generating while the mount is replaced.
    const oldRead = callApi(t, "GET", "reused/wrapping_key");
    await new Promise((resolve) => setImmediate(resolve));
    await okApi(t, "DELETE", "sys/mounts/reused");
    await okApi(t, "POST", "sys/mounts/reused", { type: "transit" });

    const old = await oldRead;
    const fresh = await okApi(t, "GET", "reused/wrapping_key");
    if (old.status !== 200) {
      // The read failed with the unmount, so no client has the old key.
      assert.ok(old.status < 500, JSON.stringify(old.json));
      return;
    }
    const oldKey = old.json.data.public_key as string;
    assert.notEqual(fresh.data.public_key, oldKey, "the new mount serves the old mount's key");

    const imported = await callApi(t, "POST", "reused/keys/stale/import", {
      ciphertext: wrapForImport(oldKey, randomBytes(32)),
    });
    assert.equal(imported.status, 400, JSON.stringify(imported.json));
    assert.equal(imported.json.code, "key_unwrap_failed");
  });
});
