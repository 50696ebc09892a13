import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { KeywardError } from "../../src/errors.ts";
import { MAX_KEY_BYTES } from "../../src/storage/keys.ts";
import type { Storage } from "../../src/storage/storage.ts";

/**
 * The behaviour every Storage backend must show. A backend's test file calls
 * this with a function that opens a new, empty storage on each call, and a
 * cleanup run once after the suite.
 */
export function runStorageContract(
  name: string,
  open: () => Promise<Storage>,
  cleanup: () => Promise<void> = async () => {},
): void {
  async function withStorage(test: (storage: Storage) => Promise<void>): Promise<void> {
    const storage = await open();
    try {
      await test(storage);
    } finally {
      await storage.close();
    }
  }

  function bytes(text: string): Uint8Array {
    return new TextEncoder().encode(text);
  }

  function assertKeywardError(code: string) {
    return (error: unknown) => {
      assert.ok(error instanceof KeywardError, `expected a KeywardError, got ${String(error)}`);
      assert.equal(error.code, code);
      return true;
    };
  }

  describe(`storage contract: ${name}`, () => {
    after(cleanup);

    describe("get, put and delete", () => {
      it("get of missing key returns undefined", () =>
        withStorage(async (storage) => {
          assert.equal(await storage.get("missing"), undefined);
        }));

      it("put then get returns value", () =>
        withStorage(async (storage) => {
          await storage.put("a/b/c", bytes("hello"));
          assert.deepEqual(Buffer.from((await storage.get("a/b/c"))!), Buffer.from("hello"));
        }));

      it("put overwrites existing value", () =>
        withStorage(async (storage) => {
          await storage.put("k", bytes("first"));
          await storage.put("k", bytes("second value"));
          assert.deepEqual(Buffer.from((await storage.get("k"))!), Buffer.from("second value"));
          assert.deepEqual(await storage.list(""), ["k"]);
        }));

      it("delete removes the value", () =>
        withStorage(async (storage) => {
          await storage.put("k", bytes("v"));
          await storage.delete("k");
          assert.equal(await storage.get("k"), undefined);
          assert.deepEqual(await storage.list(""), []);
        }));

      it("delete of missing key succeeds", () =>
        withStorage(async (storage) => {
          await storage.delete("never/written");
          assert.equal(await storage.get("never/written"), undefined);
        }));

      it("keys differing by case stay distinct", () =>
        withStorage(async (storage) => {
          await storage.put("Key", bytes("upper"));
          await storage.put("key", bytes("lower"));
          assert.deepEqual(Buffer.from((await storage.get("Key"))!), Buffer.from("upper"));
          assert.deepEqual(Buffer.from((await storage.get("key"))!), Buffer.from("lower"));
        }));
    });

    describe("binary values", () => {
      const cases: Array<[string, Uint8Array]> = [
        ["ok empty value", new Uint8Array(0)],
        ["ok zero bytes", new Uint8Array(64)],
        ["ok every byte value", Uint8Array.from({ length: 256 }, (_, i) => i)],
        ["ok invalid UTF-8", Uint8Array.from([0xff, 0xfe, 0xc3, 0x28, 0x00, 0x80])],
        ["ok 1 MiB value", Uint8Array.from({ length: 1024 * 1024 }, (_, i) => (i * 7919) & 0xff)],
        ["ok subarray view", Uint8Array.from([9, 1, 2, 3, 9]).subarray(1, 4)],
      ];
      for (const [title, value] of cases) {
        it(title, () =>
          withStorage(async (storage) => {
            await storage.put("binary", value);
            const stored = await storage.get("binary");
            assert.ok(stored instanceof Uint8Array);
            assert.equal(stored.length, value.length);
            assert.ok(Buffer.from(stored).equals(Buffer.from(value)));
          }),
        );
      }
    });

    describe("list", () => {
      it("empty storage lists nothing", () =>
        withStorage(async (storage) => {
          assert.deepEqual(await storage.list(""), []);
          assert.deepEqual(await storage.list("a/"), []);
        }));

      it("lists direct children and folders", () =>
        withStorage(async (storage) => {
          for (const key of ["a/x", "a/y/1", "a/y/2", "a/y/z/3", "a/z", "b", "c/d"]) {
            await storage.put(key, bytes(key));
          }
          assert.deepEqual(await storage.list(""), ["a/", "b", "c/"]);
          assert.deepEqual(await storage.list("a/"), ["x", "y/", "z"]);
          assert.deepEqual(await storage.list("a/y/"), ["1", "2", "z/"]);
          assert.deepEqual(await storage.list("a/y/z/"), ["3"]);
          assert.deepEqual(await storage.list("a/x/"), []);
          assert.deepEqual(await storage.list("missing/"), []);
        }));

      it("lists leaf and folder of same name", () =>
        withStorage(async (storage) => {
          await storage.put("t/key", bytes("leaf"));
          await storage.put("t/key/child", bytes("child"));
          assert.deepEqual(await storage.list("t/"), ["key", "key/"]);
        }));

      it("sorts children in byte order", () =>
        withStorage(async (storage) => {
          // '-' (0x2d) < '/' (0x2f) < '0' (0x30); U+E000 is EE 80 80 in UTF-8
          // and sorts before U+1F600 (F0 9F 98 80), although UTF-16 order is
          // the other way round.
          const keys = ["p/a0", "p/a/x", "p/a-b", "p/a", "p/\u{1F600}", "p/\uE000", "p/B", "p/b"];
          for (const key of keys) await storage.put(key, bytes(key));
          assert.deepEqual(await storage.list("p/"), [
            "B",
            "a",
            "a-b",
            "a/",
            "a0",
            "b",
            "\uE000",
            "\u{1F600}",
          ]);
        }));

      it("treats LIKE wildcards literally", () =>
        withStorage(async (storage) => {
          for (const key of ["a_/1", "ab/2", "a%/3", "axyz/4", "a\\/5", "a_b", "a%b"]) {
            await storage.put(key, bytes(key));
          }
          assert.deepEqual(await storage.list("a_/"), ["1"]);
          assert.deepEqual(await storage.list("a%/"), ["3"]);
          assert.deepEqual(await storage.list("a\\/"), ["5"]);
          assert.deepEqual(await storage.list(""), [
            "a%/",
            "a%b",
            "a\\/",
            "a_/",
            "a_b",
            "ab/",
            "axyz/",
          ]);
          assert.deepEqual(Buffer.from((await storage.get("a_b"))!), Buffer.from("a_b"));
          assert.equal(await storage.get("a_c"), undefined);
        }));

      it("lists large folders completely", () =>
        withStorage(async (storage) => {
          await storage.transaction(async (tx) => {
            for (let i = 0; i < 600; i++) {
              const n = String(i).padStart(4, "0");
              await tx.put(`big/leaf-${n}`, bytes(n));
              await tx.put(`big/deep/${n}/value`, bytes(n));
              await tx.put(`big/folder-${n}/value`, bytes(n));
            }
          });
          const children = await storage.list("big/");
          assert.equal(children.length, 1201);
          assert.equal(children[0], "deep/");
          assert.equal(children[1], "folder-0000/");
          assert.equal(children[600], "folder-0599/");
          assert.equal(children[601], "leaf-0000");
          assert.equal(children[1200], "leaf-0599");
          assert.equal((await storage.list("big/deep/")).length, 600);
        }));
    });

    describe("scan", () => {
      it("pages through every depth in byte order", () =>
        withStorage(async (storage) => {
          for (const key of [
            "s/b",
            "s/a/2",
            "s/a/1",
            "s/a-",
            "s/\u{1F600}",
            "s/\uE000",
            "t/x",
            "r",
          ]) {
            await storage.put(key, bytes(key));
          }
          const all = ["a-", "a/1", "a/2", "b", "\uE000", "\u{1F600}"];
          assert.deepEqual(await storage.scan("s/", { limit: 100 }), all);
          const pages: string[][] = [];
          let after: string | undefined;
          for (;;) {
            const page = await storage.scan("s/", { limit: 2, ...(after ? { after } : {}) });
            if (page.length === 0) break;
            pages.push(page);
            after = page.at(-1);
          }
          assert.deepEqual(pages, [
            ["a-", "a/1"],
            ["a/2", "b"],
            ["\uE000", "\u{1F600}"],
          ]);
          assert.deepEqual(await storage.scan("s/a/", { limit: 10, after: "1" }), ["2"]);
          assert.deepEqual(await storage.scan("missing/", { limit: 10 }), []);
          assert.deepEqual(await storage.scan("", { limit: 3 }), ["r", "s/a-", "s/a/1"]);
        }));

      it("sees a transaction's own writes", () =>
        withStorage(async (storage) => {
          await storage.transaction(async (tx) => {
            await tx.put("q/1", bytes("1"));
            assert.deepEqual(await tx.scan("q/", { limit: 5 }), ["1"]);
          });
        }));

      it("rejects bad pages", () =>
        withStorage(async (storage) => {
          for (const limit of [0, -1, 1.5, 10_001, Number.NaN]) {
            await assert.rejects(
              storage.scan("s/", { limit }),
              assertKeywardError("invalid_request"),
            );
          }
          await assert.rejects(
            storage.scan("s/", { limit: 1, after: "" }),
            assertKeywardError("invalid_request"),
          );
          await assert.rejects(
            storage.scan("s", { limit: 1 }),
            assertKeywardError("invalid_request"),
          );
        }));
    });

    describe("invalid keys", () => {
      const longest = "k".repeat(MAX_KEY_BYTES);
      const validKeys: Array<[string, string]> = [
        ["ok longest key", longest],
        ["ok spaces and wildcards", "a b/%_\\*"],
        ["ok unicode", "schlüssel/\u{1F511}"],
        ["ok dots", "../.."],
      ];
      for (const [title, key] of validKeys) {
        it(title, () =>
          withStorage(async (storage) => {
            await storage.put(key, bytes("v"));
            assert.deepEqual(Buffer.from((await storage.get(key))!), Buffer.from("v"));
            await storage.delete(key);
          }),
        );
      }

      const invalidKeys: Array<[string, string]> = [
        ["fail empty key", ""],
        ["fail leading slash", "/a"],
        ["fail trailing slash", "a/"],
        ["fail empty segment", "a//b"],
        ["fail only slash", "/"],
        ["fail NUL character", "a\u0000b"],
        ["fail unpaired surrogate", "a\uD800b"],
        ["fail key too long", `${longest}k`],
        ["fail multibyte key too long", "\u00e9".repeat(MAX_KEY_BYTES / 2 + 1)],
      ];
      for (const [title, key] of invalidKeys) {
        it(title, () =>
          withStorage(async (storage) => {
            await assert.rejects(storage.get(key), assertKeywardError("invalid_request"));
            await assert.rejects(
              storage.put(key, bytes("v")),
              assertKeywardError("invalid_request"),
            );
            await assert.rejects(storage.delete(key), assertKeywardError("invalid_request"));
            await assert.rejects(
              storage.transaction((tx) => tx.put(key, bytes("v"))),
              assertKeywardError("invalid_request"),
            );
          }),
        );
      }

      const invalidPrefixes: Array<[string, string]> = [
        ["fail prefix without slash", "a"],
        ["fail prefix of only slash", "/"],
        ["fail prefix with leading slash", "/a/"],
        ["fail prefix with empty segment", "a//"],
      ];
      for (const [title, prefix] of invalidPrefixes) {
        it(title, () =>
          withStorage(async (storage) => {
            await assert.rejects(storage.list(prefix), assertKeywardError("invalid_request"));
          }),
        );
      }

      it("fail non-byte value", () =>
        withStorage(async (storage) => {
          await assert.rejects(
            storage.put("k", "text" as unknown as Uint8Array),
            assertKeywardError("invalid_request"),
          );
        }));
    });

    describe("transactions", () => {
      it("commit stores every write", () =>
        withStorage(async (storage) => {
          await storage.put("gone", bytes("old"));
          const result = await storage.transaction(async (tx) => {
            await tx.put("t/1", bytes("one"));
            await tx.put("t/2", bytes("two"));
            await tx.delete("gone");
            return 42;
          });
          assert.equal(result, 42);
          assert.deepEqual(await storage.list("t/"), ["1", "2"]);
          assert.equal(await storage.get("gone"), undefined);
        }));

      it("unsynced commit stores every write", () =>
        withStorage(async (storage) => {
          await storage.transaction(
            async (tx) => {
              await tx.put("u/1", bytes("one"));
              await tx.put("u/2", bytes("two"));
            },
            { syncToDisk: false },
          );
          assert.deepEqual(await storage.list("u/"), ["1", "2"]);
          // A synced transaction still works on the same connection afterwards.
          await storage.transaction(async (tx) => tx.put("u/3", bytes("three")));
          assert.deepEqual(await storage.list("u/"), ["1", "2", "3"]);
        }));

      it("unsynced throw rolls back", () =>
        withStorage(async (storage) => {
          const failure = new Error("work failed");
          await assert.rejects(
            storage.transaction(
              async (tx) => {
                await tx.put("u/1", bytes("one"));
                throw failure;
              },
              { syncToDisk: false },
            ),
            (error) => error === failure,
          );
          assert.equal(await storage.get("u/1"), undefined);
        }));

      it("work sees its own writes", () =>
        withStorage(async (storage) => {
          await storage.put("t/old", bytes("old"));
          await storage.transaction(async (tx) => {
            await tx.put("t/new", bytes("new"));
            await tx.delete("t/old");
            assert.deepEqual(Buffer.from((await tx.get("t/new"))!), Buffer.from("new"));
            assert.equal(await tx.get("t/old"), undefined);
            assert.deepEqual(await tx.list("t/"), ["new"]);
          });
        }));

      it("throw rolls back every write", () =>
        withStorage(async (storage) => {
          await storage.put("t/kept", bytes("before"));
          const failure = new Error("work failed");
          await assert.rejects(
            storage.transaction(async (tx) => {
              await tx.put("t/kept", bytes("after"));
              await tx.put("t/added", bytes("added"));
              await tx.delete("t/kept");
              throw failure;
            }),
            (error) => error === failure,
          );
          assert.deepEqual(Buffer.from((await storage.get("t/kept"))!), Buffer.from("before"));
          assert.equal(await storage.get("t/added"), undefined);
        }));

      it("uncommitted writes stay invisible outside", () =>
        withStorage(async (storage) => {
          await storage.put("iso", bytes("committed"));
          let releaseWork!: () => void;
          const workMayFinish = new Promise<void>((resolve) => {
            releaseWork = resolve;
          });
          let wrote!: () => void;
          const written = new Promise<void>((resolve) => {
            wrote = resolve;
          });

          const transaction = storage.transaction(async (tx) => {
            await tx.put("iso", bytes("uncommitted"));
            wrote();
            await workMayFinish;
            throw new Error("roll back");
          });
          await written;
          const outsideRead = storage.get("iso");
          releaseWork();

          await assert.rejects(transaction, /roll back/);
          assert.deepEqual(Buffer.from((await outsideRead)!), Buffer.from("committed"));
        }));

      it("concurrent transactions lose no update", () =>
        withStorage(async (storage) => {
          await storage.put("counter", bytes("0"));
          const increments = Array.from({ length: 25 }, () =>
            storage.transaction(async (tx) => {
              const current = Number(Buffer.from((await tx.get("counter"))!).toString());
              await new Promise((resolve) => setImmediate(resolve));
              await tx.put("counter", bytes(String(current + 1)));
            }),
          );
          const outcomes = await Promise.allSettled(increments);
          const committed = outcomes.filter((outcome) => outcome.status === "fulfilled").length;
          for (const outcome of outcomes) {
            if (outcome.status === "rejected")
              assertKeywardError("storage_failure")(outcome.reason);
          }
          const counter = Number(Buffer.from((await storage.get("counter"))!).toString());
          assert.equal(counter, committed);
          assert.ok(committed > 0);
        }));

      it("plain calls interleave with transactions", () =>
        withStorage(async (storage) => {
          const calls: Promise<unknown>[] = [];
          for (let i = 0; i < 20; i++) {
            calls.push(storage.put(`mix/plain-${i}`, bytes(String(i))));
            calls.push(
              storage.transaction(async (tx) => {
                await tx.put(`mix/tx-${i}`, bytes(String(i)));
                await tx.get(`mix/plain-${i}`);
              }),
            );
            calls.push(storage.list("mix/"));
          }
          await Promise.all(calls);
          assert.equal((await storage.list("mix/")).length, 40);
        }));

      it("outer call inside work rejects", () =>
        withStorage(async (storage) => {
          await storage.transaction(async () => {
            await assert.rejects(storage.get("k"), assertKeywardError("internal"));
            await assert.rejects(storage.put("k", bytes("v")), assertKeywardError("internal"));
          });
          await storage.put("k", bytes("after"));
        }));

      it("writer after commit rejects", () =>
        withStorage(async (storage) => {
          let leaked: Parameters<Parameters<Storage["transaction"]>[0]>[0] | undefined;
          await storage.transaction(async (tx) => {
            leaked = tx;
          });
          await assert.rejects(leaked!.put("k", bytes("v")), assertKeywardError("internal"));
          assert.equal(await storage.get("k"), undefined);
        }));
    });

    describe("close", () => {
      it("calls after close reject", async () => {
        const storage = await open();
        await storage.close();
        await assert.rejects(storage.get("k"), assertKeywardError("storage_failure"));
        await assert.rejects(storage.put("k", bytes("v")), assertKeywardError("storage_failure"));
        await assert.rejects(storage.list(""), assertKeywardError("storage_failure"));
        await assert.rejects(
          storage.transaction(async () => {}),
          assertKeywardError("storage_failure"),
        );
      });

      it("second close succeeds", async () => {
        const storage = await open();
        await storage.close();
        await storage.close();
      });

      it("close waits for calls in flight", async () => {
        const storage = await open();
        const put = storage.put("inflight", bytes("v"));
        const transaction = storage.transaction(async (tx) => {
          await new Promise((resolve) => setImmediate(resolve));
          await tx.put("inflight-tx", bytes("v"));
        });
        await storage.close();
        await put;
        await transaction;
      });

      it("reports its kind", async () => {
        const storage = await open();
        try {
          assert.equal(typeof storage.kind, "string");
          assert.ok(storage.kind.length > 0);
        } finally {
          await storage.close();
        }
      });
    });
  });
}
