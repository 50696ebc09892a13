import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import Fastify, { type InjectOptions } from "fastify";
import { handleError } from "../../../src/api/error-handler.ts";
import { registerTransitRoutes } from "../../../src/engines/transit/routes.ts";
import { KeywardError } from "../../../src/errors.ts";
import { base64, DAY_MS } from "./fixtures.ts";
import { createRouteFixture, type RouteFixture } from "./route-app.ts";

type Method = "GET" | "POST" | "PUT" | "DELETE";

let fixture: RouteFixture;

async function call(method: Method, path: string, payload?: unknown) {
  const options: InjectOptions = {
    method: method as InjectOptions["method"],
    url: `/v1/transit/${path}`,
  };
  if (payload !== undefined) {
    options.payload = typeof payload === "string" ? payload : JSON.stringify(payload);
    options.headers = { "content-type": "application/json" };
  }
  const response = await fixture.app.inject(options);
  const body = response.body === "" ? undefined : JSON.parse(response.body);
  return { status: response.statusCode, body };
}

async function data(method: Method, path: string, payload?: unknown) {
  const response = await call(method, path, payload);
  assert.equal(response.status, 200, `${method} ${path}: ${JSON.stringify(response.body)}`);
  return response.body.data;
}

before(async () => {
  fixture = await createRouteFixture();
  await fixture.service.createKey("aes");
  await fixture.service.createKey("derived", { derived: true });
  await fixture.service.createKey("ed", { type: "ed25519" });
  await fixture.service.createKey("rsa", { type: "rsa-2048" });
  await fixture.service.createKey("exportable", { exportable: true, allowPlaintextBackup: true });
  await fixture.service.createKey("deletable");
  await fixture.service.configureKey("deletable", { deletionAllowed: true });
});

after(async () => {
  await fixture.app.close();
});

describe("transit routes", () => {
  it("creates and reads keys", async () => {
    const created = await call("POST", "keys/created", {
      type: "ecdsa-p384",
      auto_rotate_period: "48h",
    });
    assert.equal(created.status, 200);
    assert.equal(created.body.data.type, "ecdsa-p384");
    assert.equal(created.body.data.auto_rotate_period, 172800);
    assert.equal(created.body.warnings, null);

    const again = await call("PUT", "keys/created", {});
    assert.equal(again.status, 200);
    assert.equal(again.body.warnings.length, 1);

    const read = await data("GET", "keys/created");
    assert.equal(read.name, "created");
    assert.equal(read.latest_version, 1);
    assert.equal(read.min_decryption_version, 1);
    assert.equal(read.supports_signing, true);
    assert.equal(read.deletion_allowed, false);
    assert.equal(read.state, "active");
    assert.equal(read.deletion_date, null);
    assert.equal(read.activation_date, null);
    assert.equal(read.compromised_at, null);
    assert.equal(typeof read.keys["1"].public_key, "string");
  });

  it("lists keys with GET", async () => {
    const listed = await data("GET", "keys?list=true");
    assert.ok(listed.keys.includes("aes"));
    assert.deepEqual(listed.keys, [...listed.keys].sort());
    const numeric = await data("GET", "keys?list=1");
    assert.deepEqual(numeric.keys, listed.keys);
    const notListing = await call("GET", "keys?list=false");
    assert.equal(notListing.status, 405);
    const plainGet = await call("GET", "keys");
    assert.equal(plainGet.status, 405);
  });

  it("encrypts decrypts and rewraps", async () => {
    const encrypted = await data("POST", "encrypt/aes", { plaintext: base64("hello") });
    assert.match(encrypted.ciphertext, /^keyward:v1:/);
    assert.equal(encrypted.key_version, 1);
    const decrypted = await data("PUT", "decrypt/aes", { ciphertext: encrypted.ciphertext });
    assert.equal(decrypted.plaintext, base64("hello"));
    const rewrapped = await data("POST", "rewrap/aes", { ciphertext: encrypted.ciphertext });
    assert.equal(rewrapped.key_version, 1);
  });

  it("answers batch results in order", async () => {
    const encrypted = await call("POST", "encrypt/aes", {
      batch_input: [{ plaintext: base64("a"), reference: "r1" }, { plaintext: base64("b") }],
    });
    assert.equal(encrypted.status, 200);
    const results = encrypted.body.data.batch_results;
    assert.equal(results.length, 2);
    assert.equal(results[0].reference, "r1");
    assert.equal(results[0].key_version, 1);

    const decrypted = await call("POST", "decrypt/aes", {
      batch_input: [{ ciphertext: results[0].ciphertext }, { ciphertext: "keyward:v1:AAAA" }],
    });
    assert.equal(decrypted.status, 400);
    assert.equal(decrypted.body.data.batch_results[0].plaintext, base64("a"));
    assert.equal(decrypted.body.data.batch_results[1].code, "decryption_failed");
    assert.equal(typeof decrypted.body.data.batch_results[1].error, "string");

    const partial = await call("POST", "decrypt/aes", {
      batch_input: [{ ciphertext: results[0].ciphertext }, { ciphertext: "keyward:v1:AAAA" }],
      partial_failure_response_code: 207,
    });
    assert.equal(partial.status, 207);
  });

  it("reports invalid base64 per batch item", async () => {
    const response = await call("POST", "encrypt/aes", {
      batch_input: [{ plaintext: "" }, { plaintext: "" }, { plaintext: "" }, { plaintext: "%%%" }],
    });
    assert.equal(response.status, 400);
    const item = response.body.data.batch_results[3];
    assert.equal(item.code, "invalid_base64");
    assert.match(item.error, /batch_input\[3\]\.plaintext/);
  });

  it("generates data keys", async () => {
    const plain = await data("POST", "datakey/plaintext/aes", { bits: 128 });
    assert.equal(Buffer.from(plain.plaintext, "base64").length, 16);
    const wrapped = await data("POST", "datakey/wrapped/aes", {});
    assert.equal(wrapped.plaintext, undefined);
    assert.match(wrapped.ciphertext, /^keyward:v1:/);
  });

  it("signs and verifies", async () => {
    const input = base64("document");
    const signed = await data("POST", "sign/rsa/sha2-512", {
      input,
      signature_algorithm: "pkcs1v15",
    });
    const verified = await data("POST", "verify/rsa/sha2-512", {
      input,
      signature: signed.signature,
      signature_algorithm: "pkcs1v15",
    });
    assert.equal(verified.valid, true);
    const wrongHash = await data("POST", "verify/rsa", {
      input,
      signature: signed.signature,
      signature_algorithm: "pkcs1v15",
    });
    assert.equal(wrongHash.valid, false);

    const batch = await call("POST", "sign/ed", { batch_input: [{ input }, { input: "!" }] });
    assert.equal(batch.status, 200);
    assert.equal(batch.body.data.batch_results[1].code, "invalid_base64");
  });

  it("computes and verifies HMACs", async () => {
    const input = base64("message");
    const mac = await data("POST", "hmac/aes/sha2-384", { input });
    const verified = await data("POST", "verify/aes/sha2-384", { input, hmac: mac.hmac });
    assert.equal(verified.valid, true);
    const batch = await data("PUT", "hmac/aes", {
      batch_input: [{ input }, { input, reference: "x" }],
    });
    assert.equal(batch.batch_results[1].reference, "x");
  });

  it("returns random bytes and hashes", async () => {
    const random = await data("POST", "random", {});
    assert.equal(Buffer.from(random.random_bytes, "base64").length, 32);
    const sized = await data("POST", "random/16", { format: "hex" });
    assert.match(sized.random_bytes, /^[0-9a-f]{32}$/);
    const sourced = await data("POST", "random/all/8", {});
    assert.equal(Buffer.from(sourced.random_bytes, "base64").length, 8);
    const source = await data("POST", "random/platform", { bytes: 4 });
    assert.equal(Buffer.from(source.random_bytes, "base64").length, 4);

    const hashed = await data("POST", "hash/sha2-512", { input: base64("abc"), format: "base64" });
    assert.equal(Buffer.from(hashed.sum, "base64").length, 64);
    const defaultHash = await data("POST", "hash", { input: base64("abc") });
    assert.equal(defaultHash.sum.length, 64);
  });

  it("exports backs up and restores", async () => {
    const exported = await data("GET", "export/encryption-key/exportable/latest");
    assert.equal(exported.name, "exportable");
    assert.deepEqual(Object.keys(exported.keys), ["1"]);
    const publicKey = await data("GET", "export/public-key/ed");
    assert.match(publicKey.keys["1"], /PUBLIC KEY/);

    const { backup } = await data("GET", "backup/exportable");
    const restored = await call("POST", "restore/restored-copy", { backup });
    assert.equal(restored.status, 204);
    const conflict = await call("POST", "restore", { backup });
    assert.equal(conflict.status, 409);
    assert.equal(conflict.body.code, "already_exists");
    const forced = await call("PUT", "restore", { backup, force: true });
    assert.equal(forced.status, 204);
  });

  it("configures rotates and trims", async () => {
    await data("POST", "keys/trimmed", {});
    const rotated = await data("POST", "keys/trimmed/rotate");
    assert.equal(rotated.latest_version, 2);
    const configured = await data("POST", "keys/trimmed/config", {
      min_decryption_version: 2,
      min_encryption_version: 2,
      auto_rotate_period: 3600,
    });
    assert.equal(configured.min_decryption_version, 2);
    const trimmed = await call("POST", "keys/trimmed/trim", { min_available_version: 2 });
    assert.equal(trimmed.status, 204);
    const read = await data("GET", "keys/trimmed");
    assert.deepEqual(Object.keys(read.keys), ["2"]);
  });

  it("changes lifecycle state", async () => {
    await data("POST", "keys/stateful", {});
    const suspended = await data("POST", "keys/stateful/state", { state: "suspended" });
    assert.equal(suspended.state, "suspended");
    const blocked = await call("POST", "encrypt/stateful", { plaintext: base64("x") });
    assert.equal(blocked.status, 409);
    assert.equal(blocked.body.code, "invalid_state");
    await data("POST", "keys/stateful/state", { state: "compromised" });
    const illegal = await call("POST", "keys/stateful/state", { state: "active" });
    assert.equal(illegal.status, 409);
    assert.equal(illegal.body.code, "invalid_state");
  });

  it("warns when a compromised key is used", async () => {
    await data("POST", "keys/leaked", {});
    const encrypted = await data("POST", "encrypt/leaked", { plaintext: base64("x") });
    await data("POST", "keys/leaked/state", { state: "compromised" });
    const response = await call("POST", "decrypt/leaked", { ciphertext: encrypted.ciphertext });
    assert.equal(response.status, 200);
    assert.equal(response.body.warnings.length, 1);
    assert.match(response.body.warnings[0], /compromised/);
  });

  it("schedules and cancels deletion", async () => {
    const refused = await call("DELETE", "keys/aes");
    assert.equal(refused.status, 409);
    assert.equal(refused.body.code, "deletion_not_allowed");

    const scheduled = await call("DELETE", "keys/deletable?deletion_window=7");
    assert.equal(scheduled.status, 200);
    const expected = new Date(fixture.clock.now().getTime() + 7 * DAY_MS).toISOString();
    assert.equal(scheduled.body.data.deletion_date, expected);
    assert.equal((await data("GET", "keys/deletable")).deletion_date, expected);

    const cancelled = await data("POST", "keys/deletable/cancel-deletion");
    assert.equal(cancelled.deletion_date, null);

    const withBody = await call("DELETE", "keys/deletable", { deletion_window: 10 });
    assert.equal(withBody.status, 200);
    await data("PUT", "keys/deletable/cancel-deletion", {});
  });

  it("reads and writes mount config", async () => {
    const initial = await data("GET", "config/keys");
    assert.deepEqual(initial, { disable_upsert: false, deletion_window: 30 });
    const updated = await data("POST", "config/keys", { deletion_window: 14 });
    assert.deepEqual(updated, { disable_upsert: false, deletion_window: 14 });
    await data("POST", "config/keys", { deletion_window: 30 });
  });
});

/** A request that must fail with a 4xx status and a stable `code`. */
interface BadRequest {
  title: string;
  method: Method;
  path: string;
  payload?: unknown;
  status?: number;
  code?: string;
  field?: string;
}

const huge = 2 ** 53;
const tooLong = "a".repeat(129);

const BAD_REQUESTS: BadRequest[] = [
  // Key names
  {
    title: "fail key name with dot",
    method: "POST",
    path: "keys/.hidden",
    code: "invalid_field",
    field: "name",
  },
  {
    title: "fail key name too long",
    method: "POST",
    path: `keys/${tooLong}`,
    code: "invalid_field",
    field: "name",
  },
  {
    title: "fail key name encoded slash",
    method: "GET",
    path: "keys/a%2Fb",
    code: "invalid_field",
  },
  {
    title: "fail key name with space",
    method: "POST",
    path: "encrypt/a%20b",
    payload: { plaintext: "" },
    code: "invalid_field",
  },
  {
    title: "fail read missing key",
    method: "GET",
    path: "keys/missing",
    status: 404,
    code: "not_found",
  },
  // Create
  {
    title: "fail unknown create field",
    method: "POST",
    path: "keys/new1",
    payload: { tyep: "aes256-gcm96" },
    code: "unknown_field",
    field: "tyep",
  },
  {
    title: "fail unknown key type",
    method: "POST",
    path: "keys/new2",
    payload: { type: "des" },
    code: "invalid_field",
    field: "type",
  },
  {
    title: "fail derived as string",
    method: "POST",
    path: "keys/new3",
    payload: { derived: "maybe" },
    code: "invalid_field",
    field: "derived",
  },
  {
    title: "fail rotate period words",
    method: "POST",
    path: "keys/new4",
    payload: { auto_rotate_period: "weekly" },
    code: "invalid_field",
    field: "auto_rotate_period",
  },
  {
    title: "fail rotate period huge",
    method: "POST",
    path: "keys/new5",
    payload: { auto_rotate_period: huge },
    code: "invalid_field",
    field: "auto_rotate_period",
  },
  {
    title: "fail rotate period negative",
    method: "POST",
    path: "keys/new6",
    payload: { auto_rotate_period: -5 },
    status: 400,
  },
  {
    title: "fail key size huge",
    method: "POST",
    path: "keys/new7",
    payload: { type: "hmac", key_size: huge },
    code: "invalid_field",
    field: "key_size",
  },
  { title: "fail body is array", method: "POST", path: "keys/new8", payload: [1, 2], status: 400 },
  {
    title: "fail body is not json",
    method: "POST",
    path: "keys/new9",
    payload: "{not json",
    code: "invalid_json",
  },
  {
    title: "fail convergent without derived",
    method: "POST",
    path: "keys/new10",
    payload: { convergent_encryption: true },
    code: "invalid_field",
  },
  // Config, rotate, trim, state, deletion
  {
    title: "fail config on missing key",
    method: "POST",
    path: "keys/missing/config",
    payload: {},
    status: 404,
  },
  {
    title: "fail config unknown field",
    method: "POST",
    path: "keys/aes/config",
    payload: { deletion: true },
    code: "unknown_field",
  },
  {
    title: "fail config version huge",
    method: "POST",
    path: "keys/aes/config",
    payload: { min_decryption_version: huge },
    code: "invalid_field",
  },
  {
    title: "fail config version beyond latest",
    method: "POST",
    path: "keys/aes/config",
    payload: { min_decryption_version: 50 },
    code: "invalid_field",
  },
  {
    title: "fail config version negative",
    method: "POST",
    path: "keys/aes/config",
    payload: { min_encryption_version: -1 },
    code: "invalid_field",
  },
  {
    title: "fail rotate with body field",
    method: "POST",
    path: "keys/aes/rotate",
    payload: { now: true },
    code: "unknown_field",
  },
  {
    title: "fail trim missing field",
    method: "POST",
    path: "keys/aes/trim",
    payload: {},
    code: "missing_field",
    field: "min_available_version",
  },
  {
    title: "fail trim above minimum",
    method: "POST",
    path: "keys/aes/trim",
    payload: { min_available_version: 5 },
    code: "invalid_field",
  },
  {
    title: "fail trim as string",
    method: "POST",
    path: "keys/aes/trim",
    payload: { min_available_version: "two" },
    code: "invalid_field",
  },
  {
    title: "fail state unknown",
    method: "POST",
    path: "keys/aes/state",
    payload: { state: "asleep" },
    code: "invalid_field",
  },
  {
    title: "fail state pre-active",
    method: "POST",
    path: "keys/aes/state",
    payload: { state: "pre-active" },
    code: "invalid_field",
  },
  {
    title: "fail state missing",
    method: "POST",
    path: "keys/aes/state",
    payload: {},
    code: "missing_field",
  },
  {
    title: "fail delete not allowed",
    method: "DELETE",
    path: "keys/aes",
    status: 409,
    code: "deletion_not_allowed",
  },
  {
    title: "fail delete window short",
    method: "DELETE",
    path: "keys/deletable?deletion_window=3",
    code: "invalid_field",
  },
  {
    title: "fail delete window long",
    method: "DELETE",
    path: "keys/deletable",
    payload: { deletion_window: 31 },
    code: "invalid_field",
  },
  {
    title: "fail delete window conflict",
    method: "DELETE",
    path: "keys/deletable?deletion_window=7",
    payload: { deletion_window: 8 },
    code: "invalid_request",
  },
  { title: "fail delete missing key", method: "DELETE", path: "keys/missing", status: 404 },
  {
    title: "fail cancel missing key",
    method: "POST",
    path: "keys/missing/cancel-deletion",
    status: 404,
  },
  {
    title: "fail mount config window",
    method: "POST",
    path: "config/keys",
    payload: { deletion_window: 100 },
    code: "invalid_field",
  },
  {
    title: "fail list with GET only",
    method: "GET",
    path: "keys?list=maybe",
    code: "invalid_field",
  },
  // Encrypt
  {
    title: "fail encrypt missing plaintext",
    method: "POST",
    path: "encrypt/aes",
    payload: {},
    code: "missing_field",
    field: "plaintext",
  },
  {
    title: "fail encrypt invalid base64",
    method: "POST",
    path: "encrypt/aes",
    payload: { plaintext: "not base64" },
    code: "invalid_base64",
    field: "plaintext",
  },
  {
    title: "fail encrypt plaintext number",
    method: "POST",
    path: "encrypt/aes",
    payload: { plaintext: 12345 },
    code: "invalid_base64",
  },
  {
    title: "fail encrypt plaintext object",
    method: "POST",
    path: "encrypt/aes",
    payload: { plaintext: { a: 1 } },
    code: "invalid_field",
    field: "plaintext",
  },
  {
    title: "fail encrypt unknown field",
    method: "POST",
    path: "encrypt/aes",
    payload: { plaintext: "", key: "x" },
    code: "unknown_field",
    field: "key",
  },
  {
    title: "fail encrypt key version huge",
    method: "POST",
    path: "encrypt/aes",
    payload: { plaintext: "", key_version: huge },
    code: "invalid_field",
    field: "key_version",
  },
  {
    title: "fail encrypt key version float",
    method: "POST",
    path: "encrypt/aes",
    payload: { plaintext: "", key_version: 1.5 },
    code: "invalid_field",
  },
  {
    title: "fail encrypt future version",
    method: "POST",
    path: "encrypt/aes",
    payload: { plaintext: "", key_version: 9 },
    status: 400,
  },
  {
    title: "fail encrypt context not derived",
    method: "POST",
    path: "encrypt/aes",
    payload: { plaintext: "", context: "YQ==" },
    code: "invalid_field",
    field: "context",
  },
  {
    title: "fail encrypt derived without context",
    method: "POST",
    path: "encrypt/derived",
    payload: { plaintext: "" },
    code: "missing_field",
    field: "context",
  },
  {
    title: "fail encrypt with signing key",
    method: "POST",
    path: "encrypt/ed",
    payload: { plaintext: "" },
    code: "unsupported_operation",
  },
  {
    title: "fail encrypt upsert signing type",
    method: "POST",
    path: "encrypt/upsert-ed",
    payload: { plaintext: "", type: "ed25519" },
    code: "unsupported_operation",
  },
  {
    title: "fail encrypt nonce",
    method: "POST",
    path: "encrypt/aes",
    payload: { plaintext: "", nonce: "AAAAAAAAAAAAAAAA" },
    code: "invalid_field",
    field: "nonce",
  },
  {
    title: "fail encrypt batch empty",
    method: "POST",
    path: "encrypt/aes",
    payload: { batch_input: [] },
    code: "invalid_field",
    field: "batch_input",
  },
  {
    title: "fail encrypt batch not array",
    method: "POST",
    path: "encrypt/aes",
    payload: { batch_input: "x" },
    code: "invalid_field",
  },
  {
    title: "fail encrypt batch item string",
    method: "POST",
    path: "encrypt/aes",
    payload: { batch_input: ["x"] },
    code: "invalid_field",
    field: "batch_input[0]",
  },
  {
    title: "fail encrypt batch item null",
    method: "POST",
    path: "encrypt/aes",
    payload: { batch_input: [null] },
    status: 400,
  },
  {
    title: "fail encrypt batch unknown field",
    method: "POST",
    path: "encrypt/aes",
    payload: { batch_input: [{ plaintext: "", extra: 1 }] },
    code: "unknown_field",
    field: "batch_input[0].extra",
  },
  {
    title: "fail encrypt batch too large",
    method: "POST",
    path: "encrypt/aes",
    payload: { batch_input: Array.from({ length: 10_001 }, () => ({})) },
    code: "invalid_field",
    field: "batch_input",
  },
  {
    title: "fail encrypt batch mixed context",
    method: "POST",
    path: "encrypt/derived",
    payload: { batch_input: [{ plaintext: "", context: "YQ==" }, { plaintext: "" }] },
    code: "invalid_request",
  },
  {
    title: "fail encrypt reference too long",
    method: "POST",
    path: "encrypt/aes",
    payload: { batch_input: [{ plaintext: "", reference: "r".repeat(5000) }] },
    code: "invalid_field",
  },
  {
    title: "fail encrypt override huge",
    method: "POST",
    path: "encrypt/aes",
    payload: { plaintext: "", partial_failure_response_code: huge },
    code: "invalid_field",
  },
  // Decrypt and rewrap
  {
    title: "fail decrypt missing ciphertext",
    method: "POST",
    path: "decrypt/aes",
    payload: {},
    code: "missing_field",
    field: "ciphertext",
  },
  {
    title: "fail decrypt garbage ciphertext",
    method: "POST",
    path: "decrypt/aes",
    payload: { ciphertext: "garbage" },
    status: 400,
  },
  {
    title: "fail decrypt wrong prefix",
    method: "POST",
    path: "decrypt/aes",
    payload: { ciphertext: "vault:v1:AAAA" },
    status: 400,
  },
  {
    title: "fail decrypt huge version",
    method: "POST",
    path: "decrypt/aes",
    payload: { ciphertext: "keyward:v99999999999999999999:AAAA" },
    status: 400,
  },
  {
    title: "fail decrypt tampered",
    method: "POST",
    path: "decrypt/aes",
    payload: { ciphertext: "keyward:v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" },
    code: "decryption_failed",
  },
  {
    title: "fail decrypt bad context",
    method: "POST",
    path: "decrypt/derived",
    payload: { ciphertext: "keyward:v1:AAAA", context: "!!" },
    code: "invalid_base64",
    field: "context",
  },
  {
    title: "fail decrypt ciphertext array",
    method: "POST",
    path: "decrypt/aes",
    payload: { ciphertext: ["a"] },
    status: 400,
  },
  {
    title: "fail decrypt missing key",
    method: "POST",
    path: "decrypt/missing",
    payload: { ciphertext: "keyward:v1:AAAA" },
    status: 404,
  },
  {
    title: "fail decrypt batch item unknown",
    method: "POST",
    path: "decrypt/aes",
    payload: { batch_input: [{ cipher: "x" }] },
    code: "unknown_field",
  },
  {
    title: "fail rewrap missing ciphertext",
    method: "POST",
    path: "rewrap/aes",
    payload: {},
    code: "missing_field",
  },
  {
    title: "fail rewrap signing key",
    method: "POST",
    path: "rewrap/ed",
    payload: { ciphertext: "keyward:v1:AAAA" },
    code: "unsupported_operation",
  },
  // Data keys
  {
    title: "fail datakey bad kind",
    method: "POST",
    path: "datakey/raw/aes",
    payload: {},
    code: "invalid_field",
  },
  {
    title: "fail datakey bad bits",
    method: "POST",
    path: "datakey/plaintext/aes",
    payload: { bits: 64 },
    code: "invalid_field",
    field: "bits",
  },
  {
    title: "fail datakey bits string",
    method: "POST",
    path: "datakey/plaintext/aes",
    payload: { bits: "many" },
    code: "invalid_field",
  },
  {
    title: "fail datakey signing key",
    method: "POST",
    path: "datakey/wrapped/ed",
    payload: {},
    code: "unsupported_operation",
  },
  // Sign and verify
  {
    title: "fail sign aes key",
    method: "POST",
    path: "sign/aes",
    payload: { input: "" },
    code: "unsupported_operation",
  },
  {
    title: "fail sign missing input",
    method: "POST",
    path: "sign/ed",
    payload: {},
    code: "missing_field",
    field: "input",
  },
  {
    title: "fail sign invalid input",
    method: "POST",
    path: "sign/ed",
    payload: { input: "a=b=" },
    code: "invalid_base64",
    field: "input",
  },
  {
    title: "fail sign hash in url",
    method: "POST",
    path: "sign/rsa/md5",
    payload: { input: "" },
    code: "invalid_field",
    field: "hash_algorithm",
  },
  {
    title: "fail sign hash in body",
    method: "POST",
    path: "sign/rsa",
    payload: { input: "", hash_algorithm: "md5" },
    code: "invalid_field",
  },
  {
    title: "fail sign salt length word",
    method: "POST",
    path: "sign/rsa",
    payload: { input: "", salt_length: "huge" },
    code: "invalid_field",
    field: "salt_length",
  },
  {
    title: "fail sign salt length huge",
    method: "POST",
    path: "sign/rsa",
    payload: { input: "", salt_length: huge },
    code: "invalid_field",
  },
  {
    title: "fail sign marshaling",
    method: "POST",
    path: "sign/ed",
    payload: { input: "", marshaling_algorithm: "der" },
    code: "invalid_field",
  },
  {
    title: "fail sign prehashed pss",
    method: "POST",
    path: "sign/rsa",
    payload: { input: "", prehashed: true },
    status: 400,
  },
  {
    title: "fail sign jws on rsa",
    method: "POST",
    path: "sign/rsa",
    payload: { input: "", marshaling_algorithm: "jws" },
    status: 400,
  },
  {
    title: "fail sign batch bad item",
    method: "POST",
    path: "sign/ed",
    payload: { batch_input: [{ input: {} }] },
    code: "invalid_field",
  },
  {
    title: "fail verify no signature",
    method: "POST",
    path: "verify/ed",
    payload: { input: "" },
    code: "missing_field",
    field: "signature",
  },
  {
    title: "fail verify both kinds",
    method: "POST",
    path: "verify/ed",
    payload: { input: "", signature: "s", hmac: "h" },
    code: "invalid_request",
  },
  {
    title: "fail verify malformed signature",
    method: "POST",
    path: "verify/ed",
    payload: { input: "", signature: "keyward:vX:@@" },
    status: 400,
  },
  {
    title: "fail verify batch mixed",
    method: "POST",
    path: "verify/ed",
    payload: {
      batch_input: [
        { input: "", signature: "s" },
        { input: "", hmac: "h" },
      ],
    },
    code: "invalid_request",
  },
  {
    title: "fail verify aes signature",
    method: "POST",
    path: "verify/aes",
    payload: { input: "", signature: "keyward:v1:AA==" },
    code: "unsupported_operation",
  },
  // HMAC
  {
    title: "fail hmac bad algorithm",
    method: "POST",
    path: "hmac/aes/md5",
    payload: { input: "" },
    code: "invalid_field",
    field: "algorithm",
  },
  {
    title: "fail hmac missing input",
    method: "POST",
    path: "hmac/aes",
    payload: {},
    code: "missing_field",
    field: "input",
  },
  {
    title: "fail hmac bad input",
    method: "POST",
    path: "hmac/aes",
    payload: { input: "@" },
    code: "invalid_base64",
  },
  {
    title: "fail hmac unknown field",
    method: "POST",
    path: "hmac/aes",
    payload: { input: "", hash: "x" },
    code: "unknown_field",
  },
  {
    title: "fail hmac missing key",
    method: "POST",
    path: "hmac/missing",
    payload: { input: "" },
    status: 404,
  },
  {
    title: "fail verify hmac malformed",
    method: "POST",
    path: "verify/aes",
    payload: { input: "", hmac: "nonsense" },
    status: 400,
  },
  // Random and hash
  {
    title: "fail random zero bytes",
    method: "POST",
    path: "random/0",
    payload: {},
    code: "invalid_field",
    field: "bytes",
  },
  {
    title: "fail random too many bytes",
    method: "POST",
    path: "random/999999999",
    payload: {},
    code: "invalid_field",
    field: "bytes",
  },
  {
    title: "fail random body bytes huge",
    method: "POST",
    path: "random",
    payload: { bytes: huge },
    code: "invalid_field",
  },
  {
    title: "fail random unknown source",
    method: "POST",
    path: "random/seal/32",
    payload: {},
    code: "invalid_field",
    field: "source",
  },
  {
    title: "fail random bad format",
    method: "POST",
    path: "random",
    payload: { format: "binary" },
    code: "invalid_field",
  },
  {
    title: "fail hash missing input",
    method: "POST",
    path: "hash",
    payload: {},
    code: "missing_field",
    field: "input",
  },
  {
    title: "fail hash bad algorithm",
    method: "POST",
    path: "hash/sha1",
    payload: { input: "" },
    code: "invalid_field",
    field: "algorithm",
  },
  {
    title: "fail hash bad input",
    method: "POST",
    path: "hash",
    payload: { input: "***" },
    code: "invalid_base64",
  },
  // Export, backup, restore
  {
    title: "fail export bad kind",
    method: "GET",
    path: "export/private-key/exportable",
    code: "invalid_field",
  },
  {
    title: "fail export not exportable",
    method: "GET",
    path: "export/encryption-key/aes",
    status: 409,
  },
  {
    title: "fail export bad version",
    method: "GET",
    path: "export/encryption-key/exportable/first",
    code: "invalid_field",
    field: "version",
  },
  {
    title: "fail export version huge",
    method: "GET",
    path: "export/encryption-key/exportable/99999999999999",
    code: "invalid_field",
  },
  {
    title: "fail export missing version",
    method: "GET",
    path: "export/encryption-key/exportable/7",
    status: 404,
  },
  {
    title: "fail export signing of aes",
    method: "GET",
    path: "export/signing-key/exportable",
    code: "unsupported_operation",
  },
  { title: "fail backup not allowed", method: "GET", path: "backup/aes", status: 409 },
  {
    title: "fail restore missing backup",
    method: "POST",
    path: "restore",
    payload: {},
    code: "missing_field",
    field: "backup",
  },
  {
    title: "fail restore garbage backup",
    method: "POST",
    path: "restore",
    payload: { backup: "garbage" },
    code: "invalid_field",
    field: "backup",
  },
  {
    title: "fail restore json backup",
    method: "POST",
    path: "restore/x",
    payload: { backup: base64("{}") },
    code: "invalid_field",
  },
  {
    title: "fail restore bad name",
    method: "POST",
    path: "restore/.x",
    payload: { backup: "e30=" },
    code: "invalid_field",
    field: "name",
  },
  {
    title: "fail restore name conflict",
    method: "POST",
    path: "restore/a",
    payload: { backup: "e30=", name: "b" },
    code: "invalid_request",
  },
  // Methods and paths
  {
    title: "fail unknown transit path",
    method: "POST",
    path: "nothing-here",
    payload: {},
    status: 404,
  },
];

describe("transit route schemas", () => {
  it("every route is documented", () => {
    assert.ok(fixture.routes.length > 30);
    for (const route of fixture.routes) {
      if (route.method === "HEAD") continue;
      const where = `${String(route.method)} ${route.url}`;
      const schema = route.schema as Record<string, unknown> | undefined;
      assert.ok(schema, `${where} has no schema`);
      assert.deepEqual(schema.tags, ["transit"], where);
      assert.equal(typeof schema.summary, "string", where);
      assert.equal(typeof schema.description, "string", where);
    }
  });

  it("every body rejects unknown fields", () => {
    const withBodies = fixture.routes.filter((route) => (route.schema as { body?: unknown })?.body);
    assert.ok(withBodies.length > 20);
    for (const route of withBodies) {
      const body = (route.schema as { body: { additionalProperties?: boolean } }).body;
      assert.equal(body.additionalProperties, false, `${String(route.method)} ${route.url}`);
    }
  });

  it("writes accept POST and PUT", () => {
    for (const route of fixture.routes) {
      const methods = [route.method].flat();
      if (methods.includes("POST")) assert.ok(methods.includes("PUT"), route.url);
    }
  });
});

describe("transit routes on failures", () => {
  it("resolver picks service per request", async () => {
    const app = Fastify();
    app.setErrorHandler(handleError);
    let available = true;
    await app.register(
      async (scope) =>
        registerTransitRoutes(scope, () => {
          if (!available) throw new KeywardError("sealed", "Keyward is sealed");
          return fixture.service;
        }),
      { prefix: "/v1/transit" },
    );
    try {
      const open = await app.inject({ method: "GET", url: "/v1/transit/keys/aes" });
      assert.equal(open.statusCode, 200);
      available = false;
      const closed = await app.inject({ method: "GET", url: "/v1/transit/keys/aes" });
      assert.equal(closed.statusCode, 503);
      assert.equal(JSON.parse(closed.body).code, "sealed");
    } finally {
      await app.close();
    }
  });

  it("sealed barrier answers 503", async () => {
    fixture.barrier.sealed = true;
    try {
      const response = await call("POST", "encrypt/aes", { plaintext: "" });
      assert.equal(response.status, 503);
      assert.equal(response.body.code, "sealed");
    } finally {
      fixture.barrier.sealed = false;
    }
  });

  it("storage failure hides details", async () => {
    fixture.barrier.failWrites = true;
    try {
      const response = await call("POST", "keys/aes/rotate", {});
      assert.equal(response.status, 500);
      assert.equal(typeof response.body.code, "string");
      assert.doesNotMatch(JSON.stringify(response.body), /test switch/);
    } finally {
      fixture.barrier.failWrites = false;
    }
    assert.equal((await data("GET", "keys/aes")).latest_version, 1);
  });
});

describe("transit routes reject bad input", () => {
  for (const bad of BAD_REQUESTS) {
    it(bad.title, async () => {
      const response = await call(bad.method, bad.path, bad.payload);
      const summary = `${bad.method} ${bad.path} -> ${response.status} ${JSON.stringify(response.body)}`;
      assert.ok(response.status >= 400, summary);
      assert.ok(response.status < 500, summary);
      if (bad.status !== undefined) assert.equal(response.status, bad.status, summary);
      if (response.body !== undefined && bad.title !== "fail unknown transit path") {
        assert.equal(typeof response.body.code, "string", summary);
      }
      if (bad.code !== undefined) assert.equal(response.body.code, bad.code, summary);
      if (bad.field !== undefined) assert.equal(response.body.field, bad.field, summary);
    });
  }
});
