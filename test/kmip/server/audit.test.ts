import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { AuditRecord } from "../../../src/audit/types.ts";
import { verifyAuditLog } from "../../../src/audit/verify.ts";
import { KeywardError } from "../../../src/errors.ts";
import type { KmipItem, StructureItem } from "../../../src/kmip/item.ts";
import type { KmipAuditLog } from "../../../src/kmip/server/audit.ts";
import { KmipDispatcher } from "../../../src/kmip/server/dispatcher.ts";
import {
  bytes,
  bytesOf,
  child,
  enumItem,
  integer,
  struct,
  text,
  textOf,
} from "../../../src/kmip/server/items.ts";
import { KmipObjectStore } from "../../../src/kmip/server/object-store.ts";
import { stateOf } from "../../../src/kmip/server/objects.ts";
import { decodeTtlv, encodeTtlv } from "../../../src/kmip/ttlv.ts";
import { type BrokerFixture, openBroker, readLines } from "../../audit/fixtures.ts";
import { MemoryBarrier } from "../../helpers/memory-barrier.ts";
import { call, payloadOf, requestMessage, resultReason, resultStatus } from "./helpers.ts";

const CLIENT = { identity: "storage-array-7", remoteAddress: "192.0.2.7" };

function createPayload(): KmipItem[] {
  return [
    enumItem("ObjectType", "SymmetricKey"),
    struct("Attributes", [
      enumItem("CryptographicAlgorithm", "AES"),
      integer("CryptographicLength", 256),
      integer("CryptographicUsageMask", 12),
    ]),
  ];
}

/** Runs one operation as the test client and returns its Batch Item. */
async function callAs(
  dispatcher: KmipDispatcher,
  operation: string,
  payload: readonly KmipItem[],
): Promise<StructureItem> {
  const request = encodeTtlv(requestMessage([2, 1], [[operation, payload]]));
  const response = decodeTtlv(await dispatcher.handleTtlv(request, CLIENT)) as StructureItem;
  return child(response, "BatchItem") as StructureItem;
}

function uidOf(item: StructureItem): string {
  return textOf(child(payloadOf(item), "UniqueIdentifier")!);
}

/** Returns every text form that would leak `value`: hex in both cases, base64 and base64url. */
function encodings(value: Uint8Array): string[] {
  const buffer = Buffer.from(value);
  return [
    buffer.toString("hex"),
    buffer.toString("hex").toUpperCase(),
    buffer.toString("base64"),
    buffer.toString("base64url"),
  ];
}

function kmipObjectCount(barrier: MemoryBarrier): number {
  return [...barrier.values.keys()].filter((key) => key.startsWith("kmip/")).length;
}

/** Builds a KMIP audit log whose request or response records always fail, as when no device can write. */
function failingLog(failing: "request" | "response"): KmipAuditLog & { requests: number } {
  const failure = () =>
    new KeywardError("audit_failure", "no audit device could record the request");
  const log = {
    requests: 0,
    isOpen: true,
    hmac: (input: string) => `hmac-sha256:${input.length}`,
    logRequest: async () => {
      log.requests += 1;
      if (failing === "request") throw failure();
    },
    logResponse: async () => {
      if (failing === "response") throw failure();
    },
  };
  return log;
}

describe("KMIP audit records", () => {
  let fixture: BrokerFixture;
  let logPath: string;
  let records: AuditRecord[];
  const plaintext = randomBytes(64);
  let keyBytes: Uint8Array;
  let ciphertext: Uint8Array;
  let iv: Uint8Array;
  let uid: string;

  before(async () => {
    fixture = await openBroker();
    logPath = join(fixture.dir, "audit.log");
    await fixture.broker.enable("file", "file", { file_path: logPath });
    const dispatcher = new KmipDispatcher({
      store: new KmipObjectStore(new MemoryBarrier()),
      audit: fixture.broker,
    });
    uid = uidOf(await callAs(dispatcher, "Create", createPayload()));
    payloadOf(await callAs(dispatcher, "Activate", [text("UniqueIdentifier", uid)]));
    const got = payloadOf(await callAs(dispatcher, "Get", [text("UniqueIdentifier", uid)]));
    const block = child(child(got, "SymmetricKey") as StructureItem, "KeyBlock") as StructureItem;
    const value = child(block, "KeyValue") as StructureItem;
    keyBytes = bytesOf(child(value, "KeyMaterial")!);
    const encrypted = payloadOf(
      await callAs(dispatcher, "Encrypt", [
        text("UniqueIdentifier", uid),
        struct("CryptographicParameters", [
          enumItem("BlockCipherMode", "CBC"),
          enumItem("PaddingMethod", "PKCS5"),
        ]),
        bytes("Data", plaintext),
      ]),
    );
    ciphertext = bytesOf(child(encrypted, "Data")!);
    iv = bytesOf(child(encrypted, "IVCounterNonce")!);
    records = readLines(logPath)
      .map((line) => JSON.parse(line) as AuditRecord)
      .filter((record) => record.type === "request" || record.type === "response");
  });

  after(async () => {
    await fixture.cleanup();
  });

  it("records request and response of each message", () => {
    assert.deepEqual(
      records.map((record) => `${record.type} ${record.request.path}`),
      [
        "request kmip/Create",
        "response kmip/Create",
        "request kmip/Activate",
        "response kmip/Activate",
        "request kmip/Get",
        "response kmip/Get",
        "request kmip/Encrypt",
        "response kmip/Encrypt",
      ],
    );
  });

  it("records the protocol and the client", () => {
    for (const record of records) {
      assert.equal(record.request.protocol, "kmip");
      assert.equal(record.request.operation, "update");
      assert.equal(record.request.remote_address, "192.0.2.7");
      assert.equal(record.auth.display_name, "storage-array-7");
    }
  });

  it("records identifiers and result status", () => {
    const created = records[1]!;
    const data = created.response?.data as {
      BatchItem: { Operation: string; ResultStatus: string; ResponsePayload: object };
    };
    assert.equal(data.BatchItem.Operation, "Create");
    assert.equal(data.BatchItem.ResultStatus, "Success");
    assert.deepEqual(data.BatchItem.ResponsePayload, {
      ObjectType: "SymmetricKey",
      UniqueIdentifier: uid,
    });
    const getRequest = records[4]!.request.data as {
      BatchItem: { RequestPayload: { UniqueIdentifier: string } };
    };
    assert.equal(getRequest.BatchItem.RequestPayload.UniqueIdentifier, uid);
  });

  it("leaves no secret bytes in the file", () => {
    const raw = readLines(logPath).join("\n");
    for (const [name, value] of [
      ["key", keyBytes],
      ["plaintext", plaintext],
      ["ciphertext", ciphertext],
      ["IV", iv],
    ] as const) {
      for (const encoded of encodings(value)) {
        assert.ok(!raw.includes(encoded), `the audit file contains the ${name} as ${encoded}`);
      }
    }
  });

  it("leaves no secret bytes in the store device", async () => {
    const stored = JSON.stringify((await fixture.broker.search({ path_prefix: "kmip/" })).records);
    assert.ok(stored.includes(uid), "the store device holds the KMIP records");
    for (const value of [keyBytes, plaintext, ciphertext, iv]) {
      for (const encoded of encodings(value)) assert.ok(!stored.includes(encoded));
    }
  });

  it("replaces secrets by their HMAC", () => {
    const hmac = (value: Uint8Array) => fixture.broker.hmac(Buffer.from(value).toString("hex"));
    const got = records[5]!.response?.data as {
      BatchItem: {
        ResponsePayload: { SymmetricKey: { KeyBlock: { KeyValue: { KeyMaterial: string } } } };
      };
    };
    const material = got.BatchItem.ResponsePayload.SymmetricKey.KeyBlock.KeyValue.KeyMaterial;
    assert.equal(material, hmac(keyBytes));
    const request = records[6]!.request.data as { BatchItem: { RequestPayload: { Data: string } } };
    assert.equal(request.BatchItem.RequestPayload.Data, hmac(plaintext));
    const response = records[7]!.response?.data as {
      BatchItem: { ResponsePayload: { Data: string; IVCounterNonce: string } };
    };
    assert.equal(response.BatchItem.ResponsePayload.Data, hmac(ciphertext));
    assert.equal(response.BatchItem.ResponsePayload.IVCounterNonce, hmac(iv));
  });

  it("leaves the file verifiable", async () => {
    const result = await verifyAuditLog(
      readLines(logPath),
      fixture.broker.publicKey().publicKeyPem,
    );
    assert.equal(result.ok, true);
    assert.ok(result.records >= 8);
  });

  it("leaves the store device verifiable", async () => {
    const result = await fixture.broker.verifyStore();
    assert.equal(result.ok, true);
  });
});

describe("KMIP audit of failures", () => {
  it("records the reason of a failed operation", async () => {
    const fixture = await openBroker();
    try {
      const dispatcher = new KmipDispatcher({
        store: new KmipObjectStore(new MemoryBarrier()),
        audit: fixture.broker,
      });
      const item = await callAs(dispatcher, "Get", [text("UniqueIdentifier", "missing")]);
      assert.equal(resultReason(item), "ObjectNotFound");
      const [response] = (await fixture.broker.search({ type: "response" })).records;
      assert.ok(response?.type === "response");
      assert.match(String(response.error), /^ObjectNotFound: /);
    } finally {
      await fixture.cleanup();
    }
  });

  it("records an undecodable message", async () => {
    const fixture = await openBroker();
    try {
      const dispatcher = new KmipDispatcher({
        store: new KmipObjectStore(new MemoryBarrier()),
        audit: fixture.broker,
      });
      const response = decodeTtlv(await dispatcher.handleTtlv(Buffer.from("not a message")));
      const item = child(response as StructureItem, "BatchItem") as StructureItem;
      assert.equal(resultReason(item), "InvalidMessage");
      const found = (await fixture.broker.search({})).records as AuditRecord[];
      assert.deepEqual(
        found.map((record) => `${record.type} ${record.request.path}`),
        ["request kmip", "response kmip"],
      );
    } finally {
      await fixture.cleanup();
    }
  });

  it("rejects a request no device records", async () => {
    const fixture = await openBroker();
    const kmipBarrier = new MemoryBarrier();
    try {
      const dispatcher = new KmipDispatcher({
        store: new KmipObjectStore(kmipBarrier),
        audit: fixture.broker,
      });
      // The store device is the only device, so failing its writes fails every record.
      fixture.barrier.failWrites = true;
      const item = await callAs(dispatcher, "Create", createPayload());
      assert.equal(resultStatus(item), "OperationFailed");
      assert.equal(resultReason(item), "GeneralFailure");
      assert.match(textOf(child(item, "ResultMessage")!), /^audit failure: /);
      assert.equal(kmipObjectCount(kmipBarrier), 0);
    } finally {
      fixture.barrier.failWrites = false;
      await fixture.cleanup();
    }
  });

  it("keeps the state when Activate is not recorded", async () => {
    const fixture = await openBroker();
    const store = new KmipObjectStore(new MemoryBarrier());
    try {
      const dispatcher = new KmipDispatcher({ store, audit: fixture.broker });
      const uid = uidOf(await callAs(dispatcher, "Create", createPayload()));
      fixture.barrier.failWrites = true;
      const item = await callAs(dispatcher, "Activate", [text("UniqueIdentifier", uid)]);
      assert.equal(resultReason(item), "GeneralFailure");
      fixture.barrier.failWrites = false;
      const object = await store.find(uid);
      assert.ok(object !== undefined);
      assert.equal(stateOf(object), "PreActive");
    } finally {
      fixture.barrier.failWrites = false;
      await fixture.cleanup();
    }
  });

  it("runs no operation when the request record fails", async () => {
    const barrier = new MemoryBarrier();
    const log = failingLog("request");
    const dispatcher = new KmipDispatcher({ store: new KmipObjectStore(barrier), audit: log });
    const item = await call(dispatcher, "Create", createPayload());
    assert.equal(resultReason(item), "GeneralFailure");
    assert.equal(log.requests, 1);
    assert.equal(kmipObjectCount(barrier), 0);
  });

  it("replaces the response when its record fails", async () => {
    const dispatcher = new KmipDispatcher({
      store: new KmipObjectStore(new MemoryBarrier()),
      audit: failingLog("response"),
    });
    const item = await call(dispatcher, "Query", []);
    assert.equal(resultReason(item), "GeneralFailure");
    assert.match(textOf(child(item, "ResultMessage")!), /^audit failure: /);
  });
});
