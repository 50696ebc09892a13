import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { describe, it } from "node:test";
import { chainRecord, GENESIS_HASH, recordLine } from "../../src/audit/chain.ts";
import { buildPayload, preparePayload } from "../../src/audit/payload.ts";
import {
  DEFAULT_SENSITIVE_FIELDS,
  hmacValue,
  MAX_CLEAR_STRING_LENGTH,
  redact,
  redactInOrder,
} from "../../src/audit/redact.ts";

const KEY = Buffer.alloc(32, 7);

describe("hmacValue", () => {
  it("matches HMAC-SHA256 with a prefix", () => {
    const expected = createHmac("sha256", KEY).update("hello", "utf8").digest("hex");
    assert.equal(hmacValue(KEY, "hello"), `hmac-sha256:${expected}`);
  });

  it("differs under another key", () => {
    assert.notEqual(hmacValue(KEY, "hello"), hmacValue(Buffer.alloc(32, 8), "hello"));
  });
});

describe("redact", () => {
  const fields = DEFAULT_SENSITIVE_FIELDS;

  it("replaces sensitive strings at any depth", () => {
    const data = {
      plaintext: "c2VjcmV0",
      ciphertext: "keyward:v1:abc",
      batch_input: [{ plaintext: "YQ==", context: "Yw==" }, { ciphertext: "keyward:v1:def" }],
    };
    const redacted = redact(data, fields, KEY) as typeof data;
    assert.equal(redacted.plaintext, hmacValue(KEY, "c2VjcmV0"));
    assert.equal(redacted.ciphertext, "keyward:v1:abc");
    assert.equal(redacted.batch_input[0]?.plaintext, hmacValue(KEY, "YQ=="));
    assert.equal(redacted.batch_input[0]?.context, hmacValue(KEY, "Yw=="));
    assert.equal(redacted.batch_input[1]?.ciphertext, "keyward:v1:def");
  });

  it("replaces every string under a sensitive field", () => {
    const data = { keys: ["share-1", "share-2"], export: { keys: { "1": "a2V5", "2": 7 } } };
    const redacted = redact(data, fields, KEY) as {
      keys: string[];
      export: { keys: Record<string, unknown> };
    };
    assert.deepEqual(redacted.keys, [hmacValue(KEY, "share-1"), hmacValue(KEY, "share-2")]);
    assert.equal(redacted.export.keys["1"], hmacValue(KEY, "a2V5"));
    assert.equal(redacted.export.keys["2"], 7);
  });

  it("hides private keys under any field", () => {
    const pem = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY-----\n";
    const redacted = redact({ csr: pem, common_name: "a" }, fields, KEY) as Record<string, string>;
    assert.equal(redacted.csr, hmacValue(KEY, pem));
    assert.equal(redacted.common_name, "a");
  });

  it("hides long strings under any field", () => {
    const long = "x".repeat(MAX_CLEAR_STRING_LENGTH + 1);
    const limit = "y".repeat(MAX_CLEAR_STRING_LENGTH);
    const redacted = redact({ csr: long, note: limit }, fields, KEY) as Record<string, string>;
    assert.equal(redacted.csr, hmacValue(KEY, long));
    assert.equal(redacted.note, limit);
  });

  it("leaves the input unchanged", () => {
    const data = { token: "kw.secret", nested: { password: "pw" } };
    redact(data, fields, KEY);
    assert.deepEqual(data, { token: "kw.secret", nested: { password: "pw" } });
  });

  it("keeps a __proto__ key as a field", () => {
    const data = JSON.parse('{"__proto__": {"plaintext": "x"}}') as object;
    const redacted = redact(data, fields, KEY) as Record<string, unknown>;
    assert.equal(Object.getPrototypeOf(redacted), Object.prototype);
    assert.deepEqual(Object.keys(redacted), ["__proto__"]);
  });

  it("uses a custom field list", () => {
    const redacted = redact({ plaintext: "p", ssn: "123" }, ["ssn"], KEY) as Record<string, string>;
    assert.equal(redacted.plaintext, "p");
    assert.equal(redacted.ssn, hmacValue(KEY, "123"));
  });
});

describe("buildPayload", () => {
  const settings = { hmacKey: KEY, sensitiveFields: new Set(DEFAULT_SENSITIVE_FIELDS) };
  const entry = {
    request: {
      id: "req-1",
      operation: "update" as const,
      path: "transit/decrypt/payments",
      remoteAddress: "127.0.0.1",
      clientToken: "kw.root-token",
      keyName: "payments",
      data: { ciphertext: "keyward:v1:xyz" },
    },
    auth: { accessor: "acc-1", displayName: "root", policies: ["root"], tokenType: "service" },
    response: { status: 200, data: { data: { plaintext: "aGVsbG8=" } } },
  };

  it("hmacs the token and keeps the accessor", () => {
    const payload = buildPayload("request", entry, new Date(0), settings);
    assert.equal(payload.auth.client_token, hmacValue(KEY, "kw.root-token"));
    assert.equal(payload.auth.accessor, "acc-1");
    assert.equal(payload.request.key_name, "payments");
    assert.equal(payload.response, undefined);
    assert.ok(!JSON.stringify(payload).includes("kw.root-token"));
  });

  it("hmacs sensitive response fields", () => {
    const payload = buildPayload("response", entry, new Date(0), settings);
    const data = payload.response?.data as { data: { plaintext: string } };
    assert.equal(payload.response?.status, 200);
    assert.equal(data.data.plaintext, hmacValue(KEY, "aGVsbG8="));
    assert.ok(!JSON.stringify(payload).includes("aGVsbG8="));
  });

  it("fills an empty identity without auth", () => {
    const { auth: _auth, ...anonymous } = entry;
    const payload = buildPayload("request", anonymous, new Date(0), settings);
    assert.deepEqual(payload.auth, {
      client_token: hmacValue(KEY, "kw.root-token"),
      accessor: "",
      display_name: "",
      policies: [],
      token_type: undefined,
    });
  });
});

describe("redact JSON semantics", () => {
  const fields = DEFAULT_SENSITIVE_FIELDS;

  it("matches JSON.stringify output", () => {
    const data = {
      when: new Date(0),
      missing: undefined,
      call: () => 1,
      list: [undefined, () => 1, Number.NaN, Number.POSITIVE_INFINITY, 2],
      boxed: new String("s"),
      nested: { plaintext: new Date(0) },
    };
    const redacted = redact(data, fields, KEY);
    const expected = JSON.parse(JSON.stringify(data)) as { nested: { plaintext: string } };
    expected.nested.plaintext = hmacValue(KEY, "1970-01-01T00:00:00.000Z");
    assert.deepEqual(redacted, expected);
  });

  it("orders keys, flags array indexes", () => {
    const ordered = redactInOrder({ b: 1, B: { z: 1, a: 2 }, é: 3, a: 4 }, fields, KEY);
    assert.equal(ordered.keysInOrder, true);
    assert.equal(JSON.stringify(ordered.value), '{"B":{"a":2,"z":1},"a":4,"b":1,"é":3}');
    const indexed = redactInOrder({ keys: { "2": "x", "10": "y" } }, fields, KEY);
    assert.equal(indexed.keysInOrder, false);
    assert.equal(redactInOrder({ "01": 1, "4294967295": 2 }, fields, KEY).keysInOrder, true);
  });

  it("rejects a BigInt", () => {
    assert.throws(() => redact({ n: 1n }, fields, KEY), TypeError);
  });
});

describe("prepared payloads", () => {
  const settings = { hmacKey: KEY, sensitiveFields: new Set(DEFAULT_SENSITIVE_FIELDS) };

  /** Chains each payload and checks its line against the generic canonical form. */
  function assertCanonical(data: unknown, responseData: unknown) {
    const entry = {
      request: {
        id: "req-1",
        operation: "update" as const,
        path: "transit/export/k",
        remoteAddress: "127.0.0.1",
        clientToken: "kw.t",
        data,
      },
      auth: { accessor: "a", displayName: "d", policies: ["p", "default"] },
    };
    for (const [type, source] of [
      ["request", entry],
      ["response", { ...entry, response: { status: 200, data: responseData } }],
    ] as const) {
      const prepared = preparePayload(type, source, new Date(0), settings, "node-1");
      const { record, line } = chainRecord(
        prepared.payload,
        { seq: 4, hash: GENESIS_HASH },
        prepared.fields,
      );
      assert.equal(line, recordLine(record));
      assert.equal(
        line,
        chainRecord(buildPayload(type, source, new Date(0), settings, "node-1"), {
          seq: 4,
          hash: GENESIS_HASH,
        }).line,
      );
    }
  }

  it("serialise canonically with any keys", () => {
    assertCanonical(
      { name: "k", b: [1, { y: 2, x: null }] },
      { data: { keys: { "1": "a", "2": "b" } } },
    );
    assertCanonical(JSON.parse('{"__proto__": {"z": 1, "a": 2}, "Z": "é", "10": true}'), {
      data: { ciphertext: "v", "0": [] },
    });
    assertCanonical(undefined, undefined);
  });
});
