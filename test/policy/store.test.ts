import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isKeywardError } from "../../src/errors.ts";
import { DEFAULT_POLICY_TEXT } from "../../src/policy/builtin.ts";
import { POLICY_PREFIX, PolicyStore } from "../../src/policy/store.ts";
import { MemoryBarrier } from "../helpers/memory-barrier.ts";

const READER = 'path "secret/*" { capabilities = ["read"] }';
const WRITER = 'path "secret/*" { capabilities = ["update"] }';

function setup() {
  const barrier = new MemoryBarrier();
  return { barrier, store: new PolicyStore(barrier) };
}

function rejectsWith(code: string, message?: RegExp) {
  return (error: unknown) => {
    assert.ok(isKeywardError(error), "throws a KeywardError");
    assert.equal(error.code, code);
    if (message) assert.match(error.message, message);
    return true;
  };
}

describe("PolicyStore", () => {
  it("starts with default and root", async () => {
    const { store } = setup();
    assert.deepEqual(await store.list(), ["default", "root"]);
    const builtIn = await store.get("default");
    assert.equal(builtIn?.raw, DEFAULT_POLICY_TEXT);
    assert.equal((await store.get("root"))?.name, "root");
  });

  it("writes, reads, lists and deletes", async () => {
    const { store } = setup();
    const written = await store.put("reader", READER);
    assert.equal(written.name, "reader");
    assert.equal(written.rules[0]?.path, "secret/*");

    const read = await store.get("reader");
    assert.equal(read?.raw, READER);
    assert.deepEqual(await store.list(), ["default", "reader", "root"]);

    await store.delete("reader");
    assert.equal(await store.get("reader"), undefined);
    assert.deepEqual(await store.list(), ["default", "root"]);
  });

  it("stores name and text under the barrier", async () => {
    const { barrier, store } = setup();
    await store.put("reader", READER);
    const stored = barrier.values.get(`${POLICY_PREFIX}reader`);
    assert.ok(stored, "stored at sys/policies/acl/reader");
    assert.deepEqual(JSON.parse(Buffer.from(stored).toString("utf8")), {
      name: "reader",
      raw: READER,
    });
  });

  it("reads what another instance wrote", async () => {
    const { barrier, store } = setup();
    await store.put("reader", READER);
    const other = new PolicyStore(barrier);
    assert.equal((await other.get("reader"))?.raw, READER);
  });

  it("lowercases names", async () => {
    const { store } = setup();
    await store.put("Ops-Team", READER);
    assert.equal((await store.get("OPS-TEAM"))?.name, "ops-team");
    assert.deepEqual(await store.list(), ["default", "ops-team", "root"]);
  });

  it("rejects invalid names", async () => {
    const { store } = setup();
    for (const name of ["", "a b", "a/b", "x".repeat(129), "..", "é"]) {
      await assert.rejects(
        store.put(name, READER),
        rejectsWith("invalid_field", /invalid policy name/),
      );
    }
    assert.equal((await store.put("a.b_c-1", READER)).name, "a.b_c-1");
    assert.equal((await store.put("x".repeat(128), READER)).name.length, 128);
  });

  it("rejects an invalid policy unstored", async () => {
    const { barrier, store } = setup();
    await assert.rejects(
      store.put("bad", 'path "a" { capabilities = ["reed"] }'),
      rejectsWith("invalid_policy", /line 1, column 28/),
    );
    assert.equal(barrier.writes, 0);
    assert.equal(await store.get("bad"), undefined);
  });

  it("protects the root policy", async () => {
    const { store } = setup();
    await assert.rejects(
      store.put("root", READER),
      rejectsWith("invalid_request", /cannot be modified/),
    );
    await assert.rejects(store.put("ROOT", READER), rejectsWith("invalid_request"));
    await assert.rejects(store.delete("root"), rejectsWith("invalid_request", /cannot be deleted/));
    assert.equal((await store.acl(["root"])).root, true);
  });

  it("lets default change but stay", async () => {
    const { store } = setup();
    await store.put("default", READER);
    assert.equal((await store.get("default"))?.raw, READER);
    await assert.rejects(
      store.delete("default"),
      rejectsWith("invalid_request", /cannot be deleted/),
    );
    assert.equal((await store.get("default"))?.raw, READER);
  });

  it("deletes a missing policy quietly", async () => {
    const { store } = setup();
    await store.delete("never-written");
  });

  it("keeps the old policy when writes fail", async () => {
    const { barrier, store } = setup();
    await store.put("p", READER);
    const before = await store.acl(["p"]);
    barrier.failWrites = true;
    await assert.rejects(store.put("p", WRITER), rejectsWith("storage_failure"));
    await assert.rejects(store.delete("p"), rejectsWith("storage_failure"));
    assert.equal((await store.get("p"))?.raw, READER);
    assert.equal(await store.acl(["p"]), before);
  });

  it("reports a corrupted record", async () => {
    const { barrier, store } = setup();
    barrier.values.set(`${POLICY_PREFIX}broken`, Buffer.from("not json"));
    await assert.rejects(store.get("broken"), rejectsWith("storage_failure"));
    barrier.values.set(
      `${POLICY_PREFIX}unparsable`,
      Buffer.from(JSON.stringify({ name: "unparsable", raw: "path {" })),
    );
    await assert.rejects(store.get("unparsable"), rejectsWith("storage_failure"));
  });

  it("fails while sealed", async () => {
    const { barrier, store } = setup();
    barrier.sealed = true;
    await assert.rejects(store.get("reader"), rejectsWith("sealed"));
    await assert.rejects(store.list(), rejectsWith("sealed"));
  });
});

describe("PolicyStore ACL cache", () => {
  it("compiles the named policies", async () => {
    const { store } = setup();
    await store.put("reader", READER);
    await store.put("writer", WRITER);
    const acl = await store.acl(["reader", "writer"]);
    assert.deepEqual(acl.capabilities("secret/x"), ["read", "update"]);
  });

  it("skips unknown and invalid names", async () => {
    const { store } = setup();
    await store.put("reader", READER);
    const acl = await store.acl(["reader", "missing", "not a name"]);
    assert.deepEqual(acl.capabilities("secret/x"), ["read"]);
  });

  it("keeps name sets apart", async () => {
    const { store } = setup();
    await store.put("a", READER);
    await store.put("b", WRITER);
    const both = await store.acl(["a", "b"]);
    const invalid = await store.acl(["a\nb"]);
    assert.notEqual(invalid, both);
    assert.deepEqual(invalid.capabilities("secret/x"), ["deny"]);
  });

  it("reuses the ACL for one set", async () => {
    const { store } = setup();
    await store.put("reader", READER);
    await store.put("writer", WRITER);
    const first = await store.acl(["reader", "writer"]);
    assert.equal(await store.acl(["writer", "READER", "reader"]), first);
  });

  it("serves the built-in default", async () => {
    const { store } = setup();
    const acl = await store.acl(["default"]);
    assert.equal(acl.check({ path: "auth/token/lookup-self", operation: "read" }).allowed, true);
    assert.equal(acl.check({ path: "auth/token/renew-self", operation: "update" }).allowed, true);
    assert.equal(acl.check({ path: "auth/token/revoke-self", operation: "update" }).allowed, true);
    assert.equal(acl.check({ path: "sys/capabilities-self", operation: "update" }).allowed, true);
    assert.equal(acl.check({ path: "auth/token/create", operation: "update" }).allowed, false);
    assert.equal(
      acl.check({ path: "sys/policies/acl/default", operation: "update" }).allowed,
      false,
    );
  });

  it("drops cached ACLs on put", async () => {
    const { store } = setup();
    await store.put("p", READER);
    const before = await store.acl(["p"]);
    await store.put("p", WRITER);
    const after = await store.acl(["p"]);
    assert.notEqual(after, before);
    assert.deepEqual(after.capabilities("secret/x"), ["update"]);
  });

  it("drops cached ACLs on delete", async () => {
    const { store } = setup();
    await store.put("p", READER);
    assert.deepEqual((await store.acl(["p"])).capabilities("secret/x"), ["read"]);
    await store.delete("p");
    assert.deepEqual((await store.acl(["p"])).capabilities("secret/x"), ["deny"]);
  });

  it("rereads the barrier after clearCache", async () => {
    const { barrier, store } = setup();
    await store.put("p", READER);
    assert.deepEqual((await store.acl(["p"])).capabilities("secret/x"), ["read"]);
    await new PolicyStore(barrier).put("p", WRITER);
    assert.deepEqual((await store.acl(["p"])).capabilities("secret/x"), ["read"]);
    store.clearCache();
    assert.deepEqual((await store.acl(["p"])).capabilities("secret/x"), ["update"]);
  });

  it("never caches a load that a write overtook", async () => {
    const { barrier, store } = setup();
    await store.put("p", READER);
    store.clearCache();
    // Hold the barrier read of the ACL load until the write has finished.
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const originalGet = barrier.get.bind(barrier);
    barrier.get = async (key) => {
      const value = await originalGet(key);
      await gate;
      return value;
    };
    const staleLoad = store.acl(["p"]);
    await store.put("p", WRITER);
    release();
    assert.deepEqual((await staleLoad).capabilities("secret/x"), ["read"]);
    barrier.get = originalGet;
    assert.deepEqual((await store.acl(["p"])).capabilities("secret/x"), ["update"]);
  });
});
