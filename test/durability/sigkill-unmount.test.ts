import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { type ServerProcess, startDevServer } from "../helpers/server-process.ts";

/** Keys in the mount being unmounted: enough that deleting them takes a few hundred milliseconds. */
const KEY_COUNT = 1000;
/** Concurrent requests while the keys are created. */
const WRITERS = 8;
/** Kill rounds, each at a later moment of the unmount. */
const ROUNDS = 3;
const ROOT_TOKEN = "sigkill-unmount-root-token";

async function call(server: ServerProcess, method: string, path: string, body?: unknown) {
  const response = await fetch(`${server.address}/v1/${path}`, {
    method,
    headers: { "x-vault-token": server.rootToken, "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, body: text === "" ? undefined : JSON.parse(text) };
}

async function createKeys(server: ServerProcess, mount: string) {
  let next = 0;
  const writer = async () => {
    while (next < KEY_COUNT) {
      const name = `old-${next++}`;
      const created = await call(server, "POST", `${mount}/keys/${name}`, {});
      assert.equal(created.status, 200, `creating ${name} failed: ${created.status}`);
    }
  };
  await Promise.all(Array.from({ length: WRITERS }, writer));
}

describe("durability of an unmount under SIGKILL", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "keyward-sigkill-unmount-"));
  after(() => rmSync(dataDir, { recursive: true, force: true }));

  it("never lets a new mount inherit old keys", async () => {
    const start = () => startDevServer({ dataDir, args: ["--dev-root-token", ROOT_TOKEN] });
    for (let round = 0; round < ROUNDS; round++) {
      const mount = `doomed-${round}`;
      const server = await start();
      assert.equal(
        (await call(server, "POST", `sys/mounts/${mount}`, { type: "transit" })).status,
        204,
      );
      await createKeys(server, mount);

      const unmount = call(server, "DELETE", `sys/mounts/${mount}`).catch(() => undefined);
      await new Promise((resolve) => setTimeout(resolve, 50 + round * 100));
      await server.stop("SIGKILL");
      const unmounted = await unmount;

      const restarted = await start();
      try {
        const mounts = await call(restarted, "GET", "sys/mounts");
        if (unmounted?.status === 204) {
          assert.equal(
            mounts.body.data[`${mount}/`],
            undefined,
            "an acknowledged unmount came back",
          );
        }
        if (mounts.body.data[`${mount}/`] === undefined) {
          const remounted = await call(restarted, "POST", `sys/mounts/${mount}`, {
            type: "transit",
          });
          assert.equal(remounted.status, 204);
          const listed = await call(restarted, "GET", `${mount}/keys?list=true`);
          assert.equal(listed.status, 404, `round ${round}: old keys visible in the new mount`);
        } else {
          // Killed before the mount table write: every key must still be there.
          const listed = await call(restarted, "GET", `${mount}/keys?list=true`);
          assert.equal(listed.body.data.keys.length, KEY_COUNT);
        }
      } finally {
        await restarted.stop();
      }
    }
  });
});
