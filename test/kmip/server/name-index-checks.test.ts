import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { KmipItem } from "../../../src/kmip/item.ts";
import { encodeJson } from "../../../src/kmip/json.ts";
import { KmipDispatcher } from "../../../src/kmip/server/dispatcher.ts";
import { handleKmipHttp } from "../../../src/kmip/server/http.ts";
import {
  children,
  enumItem,
  integer,
  struct,
  text,
  textOf,
} from "../../../src/kmip/server/items.ts";
import {
  encodeName,
  KMIP_NAMES_PREFIX,
  nameDigest,
  storedNamesOf,
} from "../../../src/kmip/server/name-index.ts";
import {
  KMIP_OBJECTS_PREFIX,
  KmipObjectStore,
  MAX_NAMES_PER_OBJECT,
} from "../../../src/kmip/server/object-store.ts";
import type { Barrier } from "../../../src/seal/types.ts";
import type { StorageWriter, TransactionOptions } from "../../../src/storage/storage.ts";
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
import { openNode, type TestNode } from "./transit-rotation-helpers.ts";

type NameType = "UninterpretedTextString" | "URI";

function nameItem(value: string, type: NameType = "UninterpretedTextString"): KmipItem {
  return struct("Name", [text("NameValue", value), enumItem("NameType", type)]);
}

function storedName(value: string, type: NameType = "UninterpretedTextString"): KmipItem {
  return struct("AttributeValue", [text("NameValue", value), enumItem("NameType", type)]);
}

function createPayload(names: readonly KmipItem[]): KmipItem[] {
  return [
    enumItem("ObjectType", "SymmetricKey"),
    struct("Attributes", [
      enumItem("CryptographicAlgorithm", "AES"),
      integer("CryptographicLength", 256),
      integer("CryptographicUsageMask", 12),
      activeSince(),
      ...names,
    ]),
  ];
}

function uid(value: string): KmipItem {
  return text("UniqueIdentifier", value);
}

async function locate(dispatcher: KmipDispatcher, name: KmipItem): Promise<string[]> {
  const payload = payloadOf(await call(dispatcher, "Locate", [struct("Attributes", [name])]));
  return children(payload, "UniqueIdentifier").map((item) => textOf(item));
}

/** Deterministic pseudo-random numbers, so a failing sequence can be run again. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

/**
 * A barrier that records the largest number of puts one transaction made,
 * which is the number of barrier encryptions it made.
 */
class PutCountingBarrier implements Barrier {
  readonly inner: Barrier;
  maxTransactionPuts = 0;

  constructor(inner: Barrier) {
    this.inner = inner;
  }

  get sealed(): boolean {
    return this.inner.sealed;
  }

  get(key: string) {
    return this.inner.get(key);
  }

  list(prefix: string) {
    return this.inner.list(prefix);
  }

  scan(prefix: string, options: { limit: number; after?: string }) {
    return this.inner.scan(prefix, options);
  }

  put(key: string, value: Uint8Array) {
    return this.inner.put(key, value);
  }

  delete(key: string) {
    return this.inner.delete(key);
  }

  transaction<T>(work: (tx: StorageWriter) => Promise<T>, options?: TransactionOptions) {
    return this.inner.transaction((tx) => {
      let puts = 0;
      const counted: StorageWriter = {
        get: (key) => tx.get(key),
        list: (prefix) => tx.list(prefix),
        scan: (prefix, scanOptions) => tx.scan(prefix, scanOptions),
        put: (key, value) => {
          puts += 1;
          this.maxTransactionPuts = Math.max(this.maxTransactionPuts, puts);
          return tx.put(key, value);
        },
        delete: (key) => tx.delete(key),
      };
      return work(counted);
    }, options);
  }
}

describe("Name index against a brute-force scan", () => {
  let node: TestNode;
  let barrier: Barrier;

  before(async () => {
    node = await openNode({ kmip: false });
    barrier = node.keyward.seal.barrier;
  });

  after(async () => {
    await node.close();
  });

  /** Returns `digest/uid` for every Name of every stored object, read from the objects. */
  async function scannedEntries(): Promise<string[]> {
    const entries: string[] = [];
    const uids = (await barrier.list(KMIP_OBJECTS_PREFIX)).filter((name) => !name.endsWith("/"));
    for (const id of uids) {
      const value = await barrier.get(KMIP_OBJECTS_PREFIX + id);
      assert.ok(value !== undefined);
      for (const digest of storedNamesOf(id, value).keys()) entries.push(`${digest}/${id}`);
    }
    return entries.sort();
  }

  /** Returns every index entry as `digest/uid`. */
  async function indexEntries(): Promise<string[]> {
    const entries = await barrier.scan(KMIP_NAMES_PREFIX, { limit: 10_000 });
    return entries.sort();
  }

  it("random operation sequences keep the index exact", async () => {
    const store = new KmipObjectStore(barrier);
    const dispatcher = new KmipDispatcher({ store });
    const next = random(20240611);
    const pick = <T>(values: readonly T[]): T => values[Math.floor(next() * values.length)]!;
    const pool: KmipItem[] = [];
    for (const value of ["a", "b", "c", "", "d"]) {
      pool.push(nameItem(value, "UninterpretedTextString"), nameItem(value, "URI"));
    }
    const live: string[] = [];
    const log: string[] = [];

    for (let step = 0; step < 150; step++) {
      const kind = pick(["create", "add", "modify", "delete", "rekey", "destroy", "undo", "pair"]);
      const target = live.length > 0 ? pick(live) : undefined;
      const name = pick(pool);
      const other = pick(pool);
      log.push(`${step}:${kind}`);
      if (kind === "create" || target === undefined) {
        const item = await call(dispatcher, "Create", createPayload([name]));
        if (resultStatus(item) === "Success") live.push(uidOf(payloadOf(item)));
      } else if (kind === "add") {
        await call(dispatcher, "AddAttribute", [uid(target), struct("NewAttribute", [name])]);
      } else if (kind === "modify") {
        await call(dispatcher, "ModifyAttribute", [
          uid(target),
          struct("CurrentAttribute", [name]),
          struct("NewAttribute", [other]),
        ]);
      } else if (kind === "delete") {
        await call(dispatcher, "DeleteAttribute", [
          uid(target),
          struct("CurrentAttribute", [name]),
        ]);
      } else if (kind === "rekey") {
        const item = await call(dispatcher, "ReKey", [uid(target)]);
        if (resultStatus(item) === "Success") live.push(uidOf(payloadOf(item)));
      } else if (kind === "destroy") {
        await call(dispatcher, "Revoke", [
          uid(target),
          struct("RevocationReason", [enumItem("RevocationReasonCode", "CessationOfOperation")]),
        ]);
        await call(dispatcher, "Destroy", [uid(target)]);
      } else if (kind === "undo") {
        await send(
          dispatcher,
          requestMessage(
            [2, 1],
            [
              ["Create", createPayload([name])],
              ["AddAttribute", [uid(target), struct("NewAttribute", [other])]],
              ["Get", [uid("missing")]],
            ],
            [enumItem("BatchErrorContinuationOption", "Undo")],
          ),
        );
      } else {
        await call(dispatcher, "CreateKeyPair", [
          struct("CommonAttributes", [
            enumItem("CryptographicAlgorithm", "EC"),
            integer("CryptographicLength", 256),
            name,
          ]),
          struct("PrivateKeyAttributes", [integer("CryptographicUsageMask", 1)]),
          struct("PublicKeyAttributes", [integer("CryptographicUsageMask", 2)]),
        ]);
      }

      assert.deepEqual(await indexEntries(), await scannedEntries(), log.join(" "));
      for (const entry of await indexEntries()) {
        const value = await barrier.get(KMIP_NAMES_PREFIX + entry);
        assert.ok(value !== undefined);
        assert.equal(nameDigest(value), entry.split("/")[0], entry);
      }
      const probe = pick(pool);
      const located = await locate(dispatcher, probe);
      const expected = await holdersNotDestroyed(store, dispatcher, probe);
      assert.deepEqual(located, expected, log.join(" "));
    }
  });
});

/** Lists, newest first, the live objects with the Name, read object by object. */
async function holdersNotDestroyed(
  store: KmipObjectStore,
  dispatcher: KmipDispatcher,
  name: KmipItem,
): Promise<string[]> {
  void dispatcher;
  const expectedEncoding = encodeName({ ...name, tag: storedName("x").tag }).encoding;
  const found: string[] = [];
  for (const id of await store.list()) {
    const object = await store.find(id);
    if (object === undefined) continue;
    const state = object.attributes.find((attribute) => attribute.name === "State")?.value;
    const stateName = state === undefined ? "" : String(state.value);
    if (stateName === "Destroyed" || stateName === "DestroyedCompromised") continue;
    if (stateName === "5" || stateName === "6") continue;
    const names = object.attributes.filter((attribute) => attribute.name === "Name");
    if (names.some((attribute) => encodeName(attribute.value).encoding.equals(expectedEncoding))) {
      found.push(id);
    }
  }
  return found.sort().reverse();
}

describe("Name encodings", () => {
  let node: TestNode;

  before(async () => {
    node = await openNode({ kmip: false });
  });

  after(async () => {
    await node.close();
  });

  it("rejects lone surrogates in JSON", async () => {
    const store = new KmipObjectStore(node.keyward.seal.barrier);
    const dispatcher = new KmipDispatcher({ store });
    const jsonCreate = (placeholder: string) =>
      encodeJson(requestMessage([2, 1], [["Create", createPayload([nameItem(placeholder)])]]));
    const send = async (body: string) => {
      const response = await handleKmipHttp(dispatcher, "application/json", Buffer.from(body));
      return { status: response.status, body: Buffer.from(response.body).toString("utf8") };
    };

    for (const lone of ["\\ud800", "\\udc00", "a\\udc00\\ud800b"]) {
      const sent = await send(jsonCreate("PLACEHOLDER").replace("PLACEHOLDER", lone));
      assert.ok(!sent.body.includes("Success"), sent.body);
      assert.match(sent.body, /not valid Unicode/);
    }
    // A surrogate pair is valid text.
    const paired = await send(jsonCreate("PLACEHOLDER").replace("PLACEHOLDER", "\\ud83d\\udd11"));
    assert.match(paired.body, /Success/);
  });

  it("caps the Names of one object", async () => {
    const counting = new PutCountingBarrier(node.keyward.seal.barrier);
    const dispatcher = new KmipDispatcher({ store: new KmipObjectStore(counting) });
    const many = Array.from({ length: MAX_NAMES_PER_OBJECT + 1 }, (_, index) =>
      nameItem(`many-${index}`),
    );
    const rejected = await call(dispatcher, "Create", createPayload(many));
    assert.equal(resultReason(rejected), "InvalidField");

    const allowed = await call(dispatcher, "Create", createPayload(many.slice(1)));
    assert.equal(resultStatus(allowed), "Success");
    // The barrier reserves 1,000 encryptions per transaction.
    assert.ok(
      counting.maxTransactionPuts <= 1_000,
      `one transaction made ${counting.maxTransactionPuts} encryptions`,
    );
  });
});

describe("transit rotation on one SQLite node", () => {
  let node: TestNode;

  before(async () => {
    node = await openNode({ kmip: false });
  });

  after(async () => {
    await node.close();
  });

  it("50 concurrent rotations of one key", async () => {
    const mount = await node.api("POST", "sys/mounts/transit-b2", { type: "transit" });
    assert.ok(mount.statusCode < 300, mount.body);
    const created = await node.api("POST", "transit-b2/keys/shared");
    assert.ok(created.statusCode < 300, created.body);
    const responses = await Promise.all(
      Array.from({ length: 50 }, () => node.api("POST", "transit-b2/keys/shared/rotate")),
    );
    const statuses = responses.map((response) => response.statusCode);
    assert.deepEqual(
      statuses.filter((status) => status !== 200),
      [],
      responses.find((response) => response.statusCode !== 200)?.body,
    );
    const read = await node.api("GET", "transit-b2/keys/shared");
    assert.equal(read.json().data.latest_version, 51);
  });
});
