import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { KmipItem } from "../../../src/kmip/item.ts";
import { KmipDispatcher } from "../../../src/kmip/server/dispatcher.ts";
import { isKmipOperationError } from "../../../src/kmip/server/errors.ts";
import {
  bytes,
  child,
  children,
  enumItem,
  integer,
  struct,
  text,
  textOf,
} from "../../../src/kmip/server/items.ts";
import { KMIP_NAME_INDEX_MARKER, KMIP_NAMES_PREFIX } from "../../../src/kmip/server/name-index.ts";
import {
  KMIP_OBJECTS_PREFIX,
  type KmipObject,
  KmipObjectStore,
} from "../../../src/kmip/server/object-store.ts";
import { createSealManager } from "../../../src/seal/seal-manager.ts";
import type { Barrier } from "../../../src/seal/types.ts";
import { openPostgresStorage } from "../../../src/storage/index.ts";
import type {
  ScanOptions,
  Storage,
  StorageWriter,
  TransactionOptions,
} from "../../../src/storage/storage.ts";
import { type PostgresServer, postgresSkipReason, startPostgres } from "../../helpers/postgres.ts";
import {
  activeSince,
  call,
  payloadOf,
  requestMessage,
  resultReason,
  resultStatus,
  send,
  uidOf,
} from "./helpers.ts";
import {
  createAes,
  locateByName,
  openNode,
  rotateThroughTransit,
  type TestNode,
} from "./transit-rotation-helpers.ts";

/**
 * A barrier that counts the reads of KMIP objects (`get` of
 * `kmip/objects/<uid>`, each one a barrier decryption when the object is
 * found) and the lists and scans of every object, in transactions too.
 */
class CountingBarrier implements Barrier {
  readonly inner: Barrier;
  objectReads = 0;
  objectLists = 0;

  constructor(inner: Barrier) {
    this.inner = inner;
  }

  get sealed(): boolean {
    return this.inner.sealed;
  }

  reset(): void {
    this.objectReads = 0;
    this.objectLists = 0;
  }

  #counted(writer: StorageWriter): StorageWriter {
    return {
      get: (key) => {
        if (key.startsWith(KMIP_OBJECTS_PREFIX)) this.objectReads += 1;
        return writer.get(key);
      },
      list: (prefix) => {
        if (prefix === KMIP_OBJECTS_PREFIX) this.objectLists += 1;
        return writer.list(prefix);
      },
      scan: (prefix: string, options: ScanOptions) => {
        if (prefix === KMIP_OBJECTS_PREFIX) this.objectLists += 1;
        return writer.scan(prefix, options);
      },
      put: (key, value) => writer.put(key, value),
      delete: (key) => writer.delete(key),
    };
  }

  readonly #direct = this.#counted({
    get: (key) => this.inner.get(key),
    list: (prefix) => this.inner.list(prefix),
    scan: (prefix, options) => this.inner.scan(prefix, options),
    put: (key, value) => this.inner.put(key, value),
    delete: (key) => this.inner.delete(key),
  });

  get(key: string): Promise<Uint8Array | undefined> {
    return this.#direct.get(key);
  }

  list(prefix: string): Promise<string[]> {
    return this.#direct.list(prefix);
  }

  scan(prefix: string, options: ScanOptions): Promise<string[]> {
    return this.#direct.scan(prefix, options);
  }

  put(key: string, value: Uint8Array): Promise<void> {
    return this.#direct.put(key, value);
  }

  delete(key: string): Promise<void> {
    return this.#direct.delete(key);
  }

  transaction<T>(
    work: (tx: StorageWriter) => Promise<T>,
    options?: TransactionOptions,
  ): Promise<T> {
    return this.inner.transaction((tx) => work(this.#counted(tx)), options);
  }
}

/** Builds a Name as a request carries it. */
function nameItem(value: string): KmipItem {
  return struct("Name", [
    text("NameValue", value),
    enumItem("NameType", "UninterpretedTextString"),
  ]);
}

/** Builds a Name attribute value as the object store keeps it. */
function storedName(value: string): KmipItem {
  return struct("AttributeValue", [
    text("NameValue", value),
    enumItem("NameType", "UninterpretedTextString"),
  ]);
}

/** Builds a stored object with the Names given. */
function namedObject(uid: string, names: readonly string[]): KmipObject {
  return {
    uid,
    objectType: "SecretData",
    attributes: names.map((name) => ({ name: "Name", value: storedName(name) })),
    content: struct("SecretData", [bytes("KeyMaterial", Buffer.alloc(16, 7))]),
  };
}

function createPayload(name?: string): KmipItem[] {
  return [
    enumItem("ObjectType", "SymmetricKey"),
    struct("Attributes", [
      enumItem("CryptographicAlgorithm", "AES"),
      integer("CryptographicLength", 256),
      integer("CryptographicUsageMask", 12),
      activeSince(),
      ...(name === undefined ? [] : [nameItem(name)]),
    ]),
  ];
}

async function create(dispatcher: KmipDispatcher, name?: string): Promise<string> {
  return uidOf(payloadOf(await call(dispatcher, "Create", createPayload(name))));
}

async function locate(dispatcher: KmipDispatcher, name: string): Promise<string[]> {
  const payload = payloadOf(
    await call(dispatcher, "Locate", [struct("Attributes", [nameItem(name)])]),
  );
  return children(payload, "UniqueIdentifier").map((item) => textOf(item));
}

function uid(value: string): KmipItem {
  return text("UniqueIdentifier", value);
}

/** Returns the Name index entries in storage, as `<digest>/<uid>`. */
async function indexEntries(barrier: Barrier): Promise<string[]> {
  return barrier.scan(KMIP_NAMES_PREFIX, { limit: 10_000 });
}

/** Returns the identifiers that have an index entry. */
async function indexedUids(barrier: Barrier): Promise<string[]> {
  return (await indexEntries(barrier)).map((entry) => entry.split("/")[1]!).sort();
}

/** Removes every index entry and the marker, as in storage written before the index existed. */
async function dropIndex(barrier: Barrier): Promise<void> {
  for (const entry of await indexEntries(barrier)) await barrier.delete(KMIP_NAMES_PREFIX + entry);
  await barrier.delete(KMIP_NAME_INDEX_MARKER);
}

function nonUniqueName(error: unknown): boolean {
  return isKmipOperationError(error) && error.resultReason === "NonUniqueNameAttribute";
}

describe("KMIP Name index", () => {
  let node: TestNode;
  let barrier: CountingBarrier;

  before(async () => {
    node = await openNode({ kmip: false });
    barrier = new CountingBarrier(node.keyward.seal.barrier);
  });

  after(async () => {
    await node.close();
  });

  /** Builds a dispatcher over its own object store, like a node that starts on the shared storage. */
  function newNode(): { store: KmipObjectStore; dispatcher: KmipDispatcher } {
    const store = new KmipObjectStore(barrier);
    return { store, dispatcher: new KmipDispatcher({ store }) };
  }

  it("lookups by Name read O(1) objects", async () => {
    const { store, dispatcher } = newNode();
    const perMessage = 400;
    for (let start = 0; start < 2_000; start += perMessage) {
      const items = Array.from(
        { length: perMessage },
        (_, index) => ["Create", createPayload(`bulk-${start + index}`)] as const,
      );
      const responses = await send(dispatcher, requestMessage([2, 1], items));
      assert.ok(responses.every((item) => resultStatus(item) === "Success"));
    }
    store.clear();
    barrier.reset();

    const found = await locate(dispatcher, "bulk-1234");
    assert.equal(found.length, 1);
    assert.ok(barrier.objectReads <= 2, `Locate read ${barrier.objectReads} objects`);
    assert.equal(barrier.objectLists, 0);

    barrier.reset();
    await create(dispatcher, "bulk-new");
    assert.ok(barrier.objectReads <= 2, `Create read ${barrier.objectReads} objects`);
    assert.equal(barrier.objectLists, 0);

    barrier.reset();
    const duplicate = await call(dispatcher, "Create", createPayload("bulk-77"));
    assert.equal(resultReason(duplicate), "NonUniqueNameAttribute");
    assert.ok(barrier.objectReads <= 2, `duplicate Create read ${barrier.objectReads} objects`);
    assert.equal(barrier.objectLists, 0);
  });

  it("rejects a Name another object has", async () => {
    const { dispatcher } = newNode();
    const holder = await create(dispatcher, "taken");
    const other = await create(dispatcher, "free-1");

    const created = await call(dispatcher, "Create", createPayload("taken"));
    assert.equal(resultReason(created), "NonUniqueNameAttribute");

    const registered = await call(dispatcher, "Register", [
      enumItem("ObjectType", "SecretData"),
      struct("Attributes", [nameItem("taken")]),
      struct("SecretData", [
        enumItem("SecretDataType", "Password"),
        struct("KeyBlock", [
          enumItem("KeyFormatType", "Opaque"),
          struct("KeyValue", [bytes("KeyMaterial", Buffer.from("secret"))]),
        ]),
      ]),
    ]);
    assert.equal(resultReason(registered), "NonUniqueNameAttribute");

    const added = await call(dispatcher, "AddAttribute", [
      uid(other),
      struct("NewAttribute", [nameItem("taken")]),
    ]);
    assert.equal(resultReason(added), "NonUniqueNameAttribute");

    const modified = await call(dispatcher, "ModifyAttribute", [
      uid(other),
      struct("CurrentAttribute", [nameItem("free-1")]),
      struct("NewAttribute", [nameItem("taken")]),
    ]);
    assert.equal(resultReason(modified), "NonUniqueNameAttribute");

    const reKeyed = await call(dispatcher, "ReKey", [
      uid(other),
      struct("Attributes", [nameItem("taken")]),
    ]);
    assert.equal(resultReason(reKeyed), "NonUniqueNameAttribute");

    // An object keeps its own Name when Modify Attribute rewrites it.
    payloadOf(
      await call(dispatcher, "ModifyAttribute", [
        uid(holder),
        struct("CurrentAttribute", [nameItem("taken")]),
        struct("NewAttribute", [nameItem("taken")]),
      ]),
    );
    assert.deepEqual(await locate(dispatcher, "taken"), [holder]);
  });

  it("keeps the Names of destroyed objects", async () => {
    const { dispatcher } = newNode();
    const destroyed = uidOf(
      payloadOf(
        await call(dispatcher, "Create", [
          enumItem("ObjectType", "SymmetricKey"),
          struct("Attributes", [
            enumItem("CryptographicAlgorithm", "AES"),
            integer("CryptographicLength", 128),
            nameItem("destroyed-name"),
          ]),
        ]),
      ),
    );
    payloadOf(await call(dispatcher, "Destroy", [uid(destroyed)]));

    assert.deepEqual(await locate(dispatcher, "destroyed-name"), []);
    const created = await call(dispatcher, "Create", createPayload("destroyed-name"));
    assert.equal(resultReason(created), "NonUniqueNameAttribute");
  });

  it("Re-key moves the entry", async () => {
    const { dispatcher } = newNode();
    const old = await create(dispatcher, "line");
    const replacement = uidOf(payloadOf(await call(dispatcher, "ReKey", [uid(old)])));

    assert.deepEqual(await locate(dispatcher, "line"), [replacement]);
    const entries = (await indexEntries(barrier)).map((entry) => entry.split("/")[1]);
    assert.ok(entries.includes(replacement));
    assert.ok(!entries.includes(old));
    const added = await call(dispatcher, "AddAttribute", [
      uid(old),
      struct("NewAttribute", [nameItem("line")]),
    ]);
    assert.equal(resultReason(added), "NonUniqueNameAttribute");
  });

  it("Undo removes the entry", async () => {
    const { dispatcher } = newNode();
    const existing = await create(dispatcher);
    const entriesBefore = await indexEntries(barrier);
    const items = await send(
      dispatcher,
      requestMessage(
        [2, 1],
        [
          ["Create", createPayload("undone-create")],
          ["AddAttribute", [uid(existing), struct("NewAttribute", [nameItem("undone-add")])]],
          ["Get", [uid("missing")]],
        ],
        [enumItem("BatchErrorContinuationOption", "Undo")],
      ),
    );
    assert.deepEqual(items.map(resultStatus), [
      "OperationUndone",
      "OperationUndone",
      "OperationFailed",
    ]);

    assert.deepEqual(await indexEntries(barrier), entriesBefore);
    assert.deepEqual(await locate(dispatcher, "undone-create"), []);
    assert.deepEqual(await locate(dispatcher, "undone-add"), []);
    await create(dispatcher, "undone-create");
    await create(dispatcher, "undone-add");
  });

  it("Delete Attribute frees the Name", async () => {
    const { dispatcher } = newNode();
    const first = await create(dispatcher, "released");
    payloadOf(
      await call(dispatcher, "DeleteAttribute", [
        uid(first),
        struct("CurrentAttribute", [nameItem("released")]),
      ]),
    );

    assert.deepEqual(await locate(dispatcher, "released"), []);
    const second = await create(dispatcher, "released");
    assert.deepEqual(await locate(dispatcher, "released"), [second]);
  });

  it("Locate applies the other criteria", async () => {
    const { dispatcher } = newNode();
    const pair = payloadOf(
      await call(dispatcher, "CreateKeyPair", [
        struct("CommonAttributes", [
          enumItem("CryptographicAlgorithm", "EC"),
          integer("CryptographicLength", 256),
          nameItem("pair-name"),
        ]),
        struct("PrivateKeyAttributes", [integer("CryptographicUsageMask", 1)]),
        struct("PublicKeyAttributes", [integer("CryptographicUsageMask", 2)]),
      ]),
    );
    const privateUid = textOf(child(pair, "PrivateKeyUniqueIdentifier")!);
    const publicUid = textOf(child(pair, "PublicKeyUniqueIdentifier")!);

    // Both keys of a pair take the request's common Name.
    assert.deepEqual(
      await locate(dispatcher, "pair-name"),
      [publicUid, privateUid].sort().reverse(),
    );
    const privateOnly = payloadOf(
      await call(dispatcher, "Locate", [
        struct("Attributes", [nameItem("pair-name"), enumItem("ObjectType", "PrivateKey")]),
      ]),
    );
    assert.deepEqual(
      children(privateOnly, "UniqueIdentifier").map((item) => textOf(item)),
      [privateUid],
    );
    const paged = payloadOf(
      await call(dispatcher, "Locate", [
        integer("MaximumItems", 1),
        integer("OffsetItems", 1),
        struct("Attributes", [nameItem("pair-name")]),
      ]),
    );
    assert.equal(child(paged, "LocatedItems")?.value, 2);
    assert.deepEqual(
      children(paged, "UniqueIdentifier").map((item) => textOf(item)),
      [[publicUid, privateUid].sort()[0]],
    );
  });

  it("ignores an entry whose Name differs", async () => {
    const { store, dispatcher } = newNode();
    const holder = await create(dispatcher, "collision");
    const unnamed = await create(dispatcher);
    const entry = (await indexEntries(barrier)).find((name) => name.endsWith(`/${holder}`));
    assert.ok(entry !== undefined, "the holder has an index entry");
    const digest = entry.split("/")[0]!;
    // An entry under the same digest that contains another Name, as a SHA-256 collision would.
    await barrier.put(`${KMIP_NAMES_PREFIX}${digest}/${unnamed}`, Buffer.from("another name"));

    assert.deepEqual(await locate(dispatcher, "collision"), [holder]);
    payloadOf(
      await call(dispatcher, "DeleteAttribute", [
        uid(holder),
        struct("CurrentAttribute", [nameItem("collision")]),
      ]),
    );
    const created = await create(dispatcher, "collision");
    assert.deepEqual(await store.exclusive((tx) => tx.named(storedName("collision"))), [created]);
    await barrier.delete(`${KMIP_NAMES_PREFIX}${digest}/${unnamed}`);
  });

  it("rejects a Name another node took meanwhile", async () => {
    const first = newNode().store;
    const second = newNode().store;
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let reportChecked: () => void = () => {};
    const checked = new Promise<void>((resolve) => {
      reportChecked = resolve;
    });
    const firstUid = first.newUid();
    const slow = first.exclusive(async (tx) => {
      assert.deepEqual(await tx.named(storedName("contested")), []);
      reportChecked();
      await gate;
      await tx.put(namedObject(firstUid, ["contested"]));
    });
    await checked;
    const secondUid = second.newUid();
    await second.exclusive(async (tx) => {
      assert.deepEqual(await tx.named(storedName("contested")), []);
      await tx.put(namedObject(secondUid, ["contested"]));
    });
    release();

    await assert.rejects(slow, nonUniqueName);
    assert.equal(await first.find(firstUid), undefined);
    assert.deepEqual(await first.exclusive((tx) => tx.named(storedName("contested"))), [secondUid]);
    assert.ok(!(await indexedUids(barrier)).includes(firstUid));
  });

  it("backfill indexes objects stored before the index", async () => {
    const writer = newNode().store;
    const uids: string[] = [];
    await writer.exclusive(async (tx) => {
      for (let index = 0; index < 250; index++) {
        const id = writer.newUid();
        uids.push(id);
        const names = Array.from({ length: 5 }, (_, part) => `old-${index}-${part}`);
        await tx.put(namedObject(id, names));
      }
    });
    const entryCount = (await indexEntries(barrier)).length;
    await dropIndex(barrier);
    assert.equal((await indexEntries(barrier)).length, 0);

    // Two nodes start on the same storage at once.
    const nodes = [newNode(), newNode()];
    await Promise.all(nodes.map((started) => started.store.buildNameIndex()));
    assert.ok((await barrier.get(KMIP_NAME_INDEX_MARKER)) !== undefined);
    assert.equal((await indexEntries(barrier)).length, entryCount);

    const { dispatcher } = nodes[0]!;
    assert.deepEqual(await locate(dispatcher, "old-249-4"), [uids[249]]);
    const created = await call(dispatcher, "Create", createPayload("old-0-0"));
    assert.equal(resultReason(created), "NonUniqueNameAttribute");
  });

  it("first lookup builds a missing index", async () => {
    const { dispatcher } = newNode();
    const named = await create(dispatcher, "lazy");
    await dropIndex(barrier);

    const restarted = newNode();
    assert.deepEqual(await locate(restarted.dispatcher, "lazy"), [named]);
    assert.ok((await barrier.get(KMIP_NAME_INDEX_MARKER)) !== undefined);
  });
});

describe("KMIP Name index with transit rotation", () => {
  let node: TestNode;

  before(async () => {
    node = await openNode({ kmip: true });
  });

  after(async () => {
    await node.close();
  });

  it("service start stores the marker", async () => {
    assert.ok((await node.keyward.seal.barrier.get(KMIP_NAME_INDEX_MARKER)) !== undefined);
  });

  it("rotation moves the entry", async () => {
    const first = await createAes(node, "rotated-name");
    await rotateThroughTransit(node, first);

    const located = await locateByName(node, "rotated-name");
    assert.equal(located.length, 1);
    assert.notEqual(located[0], first);
    const indexed = await indexedUids(node.keyward.seal.barrier);
    assert.ok(indexed.includes(located[0]!));
    assert.ok(!indexed.includes(first));
  });
});

describe("KMIP Name index on postgresql", { skip: postgresSkipReason() }, () => {
  let server: PostgresServer;
  const storages: Storage[] = [];

  before(async () => {
    server = await startPostgres();
  });

  after(async () => {
    for (const storage of storages) await storage.close();
    await server?.stop();
  });

  it("two nodes never both take a Name", async () => {
    const url = await server.createDatabase();
    // Each node has its own connection pool, seal and object store, as two server processes do.
    const dispatchers: KmipDispatcher[] = [];
    let shares: string[] = [];
    for (let node = 0; node < 2; node++) {
      const storage = await openPostgresStorage({ url });
      storages.push(storage);
      const seal = createSealManager(storage);
      if (shares.length === 0) shares = (await seal.init({ shares: 1, threshold: 1 })).keysHex;
      await seal.submitUnsealShare(shares[0]!);
      dispatchers.push(new KmipDispatcher({ store: new KmipObjectStore(seal.barrier) }));
    }

    for (let round = 0; round < 20; round++) {
      const name = `race-${round}`;
      const results = await Promise.all(
        dispatchers.map((dispatcher) => call(dispatcher, "Create", createPayload(name))),
      );
      const statuses = results.map(resultStatus).sort();
      assert.deepEqual(statuses, ["OperationFailed", "Success"], name);
      const failed = results.find((item) => resultStatus(item) === "OperationFailed")!;
      assert.equal(resultReason(failed), "NonUniqueNameAttribute", name);
      for (const dispatcher of dispatchers) {
        assert.equal((await locate(dispatcher, name)).length, 1, name);
      }
    }
  });
});
