import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";
import type { BatchItemResult } from "../../../src/engines/transit/types.ts";
import { KeywardError } from "../../../src/errors.ts";
import { base64, createFixture } from "./fixtures.ts";

async function rejectsWith(promise: Promise<unknown>, code: string, field?: string) {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof KeywardError, `expected a KeywardError, got ${String(error)}`);
    assert.equal(error.code, code);
    if (field !== undefined) assert.equal(error.field, field);
    return true;
  });
}

function succeeded<T extends object>(result: BatchItemResult<T> | undefined): T {
  assert.ok(result, "missing batch result");
  assert.equal(result.ok, true, `batch item failed: ${result.ok ? "" : result.error}`);
  return result as unknown as T;
}

function failed(result: BatchItemResult<object> | undefined): { error: string; code: string } {
  assert.ok(result, "missing batch result");
  assert.equal(result.ok, false);
  return result as { error: string; code: string };
}

describe("TransitService encryption", () => {
  it("round-trips plaintext", async () => {
    const { service } = createFixture();
    await service.createKey("k");
    const encrypted = await service.encrypt("k", { plaintext: base64("the quick brown fox") });
    assert.match(encrypted.value.ciphertext, /^keyward:v1:/);
    assert.equal(encrypted.value.keyVersion, 1);
    const decrypted = await service.decrypt("k", { ciphertext: encrypted.value.ciphertext });
    assert.equal(decrypted.value.plaintext, base64("the quick brown fox"));
  });

  it("encrypts empty plaintext", async () => {
    const { service } = createFixture();
    await service.createKey("k");
    const encrypted = await service.encrypt("k", { plaintext: "" });
    const decrypted = await service.decrypt("k", { ciphertext: encrypted.value.ciphertext });
    assert.equal(decrypted.value.plaintext, "");
  });

  it("uses context and associated data", async () => {
    const { service } = createFixture();
    await service.createKey("derived", { derived: true });
    const context = base64("tenant-1");
    const associatedData = base64("header");
    const encrypted = await service.encrypt("derived", {
      plaintext: base64("x"),
      context,
      associatedData,
    });
    const decrypted = await service.decrypt("derived", {
      ciphertext: encrypted.value.ciphertext,
      context,
      associatedData,
    });
    assert.equal(decrypted.value.plaintext, base64("x"));
    await rejectsWith(
      service.decrypt("derived", {
        ciphertext: encrypted.value.ciphertext,
        context: base64("tenant-2"),
        associatedData,
      }),
      "decryption_failed",
    );
    await rejectsWith(
      service.encrypt("derived", { plaintext: base64("x") }),
      "missing_field",
      "context",
    );
  });

  it("upserts a missing key on encrypt", async () => {
    const { service } = createFixture();
    const encrypted = await service.encrypt("fresh", { plaintext: base64("x") });
    assert.equal(encrypted.value.keyVersion, 1);
    assert.equal((await service.readKey("fresh")).type, "aes256-gcm96");

    await service.encrypt(
      "derived-fresh",
      { plaintext: base64("x"), context: base64("c") },
      { type: "chacha20-poly1305" },
    );
    const derived = await service.readKey("derived-fresh");
    assert.equal(derived.derived, true);
    assert.equal(derived.type, "chacha20-poly1305");
  });

  it("upsert checks type and config", async () => {
    const { service } = createFixture();
    await rejectsWith(
      service.encrypt("signer", { plaintext: base64("x") }, { type: "ed25519" }),
      "unsupported_operation",
    );
    await rejectsWith(
      service.encrypt("conv", { plaintext: base64("x") }, { convergentEncryption: true }),
      "invalid_request",
      "convergent_encryption",
    );
    await rejectsWith(service.encrypt("no-plaintext", {}), "missing_field", "plaintext");
    await rejectsWith(
      service.encrypt("bad-plaintext", { plaintext: "%" }),
      "invalid_base64",
      "plaintext",
    );
    assert.deepEqual(await service.listKeys(), []);
    await service.writeMountConfig({ disableUpsert: true });
    await rejectsWith(service.encrypt("other", { plaintext: base64("x") }), "not_found");
    assert.deepEqual(await service.listKeys(), []);
  });

  const badSingles: Array<[string, Record<string, unknown>, string, string]> = [
    ["fail missing plaintext", {}, "missing_field", "plaintext"],
    ["fail unpadded plaintext", { plaintext: "YQ" }, "invalid_base64", "plaintext"],
    ["fail url-safe plaintext", { plaintext: "-_-_" }, "invalid_base64", "plaintext"],
    ["fail plaintext with spaces", { plaintext: "YW Jj" }, "invalid_base64", "plaintext"],
    ["fail bad context base64", { plaintext: "YQ==", context: "***" }, "invalid_base64", "context"],
    [
      "fail bad associated data",
      { plaintext: "YQ==", associatedData: "a" },
      "invalid_base64",
      "associated_data",
    ],
    [
      "fail context on plain key",
      { plaintext: "YQ==", context: "YQ==" },
      "invalid_field",
      "context",
    ],
    [
      "fail caller nonce",
      { plaintext: "YQ==", nonce: "AAAAAAAAAAAAAAAA" },
      "invalid_field",
      "nonce",
    ],
  ];
  for (const [title, item, code, field] of badSingles) {
    it(title, async () => {
      const { service } = createFixture();
      await service.createKey("k");
      await rejectsWith(service.encrypt("k", item), code, field);
    });
  }

  it("fail future key version", async () => {
    const { service } = createFixture();
    await service.createKey("k");
    await assert.rejects(
      service.encrypt("k", { plaintext: "YQ==", keyVersion: 5 }),
      (error: unknown) => {
        assert.ok(error instanceof KeywardError);
        assert.ok(error.isClientError, `expected a client error, got ${error.code}`);
        return true;
      },
    );
  });

  it("decrypt failures look alike", async () => {
    const { service } = createFixture();
    await service.createKey("k");
    await service.createKey("other");
    const { value } = await service.encrypt("other", { plaintext: base64("x") });
    const tampered = `${value.ciphertext.slice(0, -4)}AAAA`;
    const messages = new Set<string>();
    for (const ciphertext of [value.ciphertext, tampered]) {
      await assert.rejects(service.decrypt("k", { ciphertext }), (error: unknown) => {
        assert.ok(error instanceof KeywardError);
        assert.equal(error.code, "decryption_failed");
        messages.add(error.message);
        return true;
      });
    }
    assert.equal(messages.size, 1);
    await assert.rejects(service.decrypt("k", { ciphertext: "not a ciphertext" }), KeywardError);
    await rejectsWith(service.decrypt("k", {}), "missing_field", "ciphertext");
  });

  it("rejects encryption with signing key", async () => {
    const { service } = createFixture();
    await service.createKey("signer", { type: "ed25519" });
    await rejectsWith(
      service.encrypt("signer", { plaintext: base64("x") }),
      "unsupported_operation",
    );
    await rejectsWith(
      service.decrypt("signer", { ciphertext: "keyward:v1:AAAA" }),
      "unsupported_operation",
    );
    await rejectsWith(
      service.generateDataKey("signer", { kind: "plaintext" }),
      "unsupported_operation",
    );
  });

  it("rewraps to the latest version", async () => {
    const { service } = createFixture();
    await service.createKey("k");
    const { value } = await service.encrypt("k", { plaintext: base64("payload") });
    await service.rotateKey("k");
    const rewrapped = await service.rewrap("k", { ciphertext: value.ciphertext });
    assert.match(rewrapped.value.ciphertext, /^keyward:v2:/);
    assert.equal(rewrapped.value.keyVersion, 2);
    const decrypted = await service.decrypt("k", { ciphertext: rewrapped.value.ciphertext });
    assert.equal(decrypted.value.plaintext, base64("payload"));
    const pinned = await service.rewrap("k", { ciphertext: value.ciphertext, keyVersion: 1 });
    assert.equal(pinned.value.keyVersion, 1);
  });

  it("old versions stop decrypting", async () => {
    const { service } = createFixture();
    await service.createKey("k");
    const { value } = await service.encrypt("k", { plaintext: base64("old") });
    await service.rotateKey("k");
    await service.configureKey("k", { minDecryptionVersion: 2 });
    await assert.rejects(
      service.decrypt("k", { ciphertext: value.ciphertext }),
      (error: unknown) => {
        assert.ok(error instanceof KeywardError);
        assert.ok(error.isClientError);
        return true;
      },
    );
  });

  it("generates data keys", async () => {
    const { service } = createFixture();
    await service.createKey("k");
    const plain = await service.generateDataKey("k", { kind: "plaintext", bits: 512 });
    assert.equal(Buffer.from(plain.value.plaintext ?? "", "base64").length, 64);
    const decrypted = await service.decrypt("k", { ciphertext: plain.value.ciphertext });
    assert.equal(decrypted.value.plaintext, plain.value.plaintext);

    const wrapped = await service.generateDataKey("k", { kind: "wrapped" });
    assert.equal(wrapped.value.plaintext, undefined);
    const unwrapped = await service.decrypt("k", { ciphertext: wrapped.value.ciphertext });
    assert.equal(Buffer.from(unwrapped.value.plaintext, "base64").length, 32);

    await rejectsWith(
      service.generateDataKey("k", { kind: "plaintext", bits: 64 }),
      "invalid_field",
      "bits",
    );
    await rejectsWith(service.generateDataKey("missing", { kind: "plaintext" }), "not_found");
  });
});

describe("TransitService batch encryption", () => {
  it("encrypts and decrypts a batch", async () => {
    const { service } = createFixture();
    await service.createKey("k");
    const encrypted = await service.encryptBatch("k", [
      { plaintext: base64("one"), reference: "first" },
      { plaintext: base64("two") },
    ]);
    assert.equal(encrypted.status, 200);
    assert.equal(encrypted.results.length, 2);
    const first = succeeded(encrypted.results[0]) as { ciphertext: string; reference?: string };
    assert.equal(first.reference, "first");
    const second = succeeded(encrypted.results[1]) as { ciphertext: string };

    const decrypted = await service.decryptBatch("k", [
      { ciphertext: first.ciphertext },
      { ciphertext: second.ciphertext, reference: "r2" },
    ]);
    assert.equal(decrypted.status, 200);
    assert.equal(
      (succeeded(decrypted.results[0]) as { plaintext: string }).plaintext,
      base64("one"),
    );
    assert.equal(
      (succeeded(decrypted.results[1]) as { plaintext: string }).plaintext,
      base64("two"),
    );
  });

  it("failed item makes batch 400", async () => {
    const { service } = createFixture();
    await service.createKey("k");
    const outcome = await service.encryptBatch("k", [
      { plaintext: base64("fine") },
      { plaintext: "not base64!", reference: "bad" },
      {},
    ]);
    assert.equal(outcome.status, 400);
    succeeded(outcome.results[0]);
    const bad = failed(outcome.results[1]);
    assert.equal(bad.code, "invalid_base64");
    assert.match(bad.error, /batch_input\[1\]\.plaintext/);
    assert.equal((outcome.results[1] as { reference?: string }).reference, "bad");
    const missing = failed(outcome.results[2]);
    assert.equal(missing.code, "missing_field");
    assert.match(missing.error, /batch_input\[2\]\.plaintext/);
  });

  it("partial failure code overrides status", async () => {
    const { service } = createFixture();
    await service.createKey("k");
    const items = [{ plaintext: base64("fine") }, { plaintext: "!" }];
    const overridden = await service.encryptBatch("k", items, { partialFailureResponseCode: 207 });
    assert.equal(overridden.status, 207);
    assert.deepEqual(overridden.warnings, []);

    const invalid = await service.encryptBatch("k", items, { partialFailureResponseCode: 99 });
    assert.equal(invalid.status, 400);
    assert.equal(invalid.warnings.length, 1);

    const allFailed = await service.encryptBatch("k", [{ plaintext: "!" }], {
      partialFailureResponseCode: 207,
    });
    assert.equal(allFailed.status, 400);
  });

  it("decrypt batch reports each failure", async () => {
    const { service } = createFixture();
    await service.createKey("k");
    const { value } = await service.encrypt("k", { plaintext: base64("good") });
    const outcome = await service.decryptBatch("k", [
      { ciphertext: value.ciphertext },
      { ciphertext: `${value.ciphertext.slice(0, -4)}AAAA` },
      { ciphertext: value.ciphertext, context: "%%" },
    ]);
    assert.equal(outcome.status, 400);
    assert.equal(
      (succeeded(outcome.results[0]) as { plaintext: string }).plaintext,
      base64("good"),
    );
    assert.equal(failed(outcome.results[1]).code, "decryption_failed");
    assert.equal(failed(outcome.results[2]).code, "invalid_base64");
  });

  it("rewrap batch upgrades each item", async () => {
    const { service } = createFixture();
    await service.createKey("k");
    const { value } = await service.encrypt("k", { plaintext: base64("a") });
    await service.rotateKey("k");
    const outcome = await service.rewrapBatch(
      "k",
      [{ ciphertext: value.ciphertext }, { ciphertext: "garbage" }],
      {
        partialFailureResponseCode: 200,
      },
    );
    assert.equal(outcome.status, 200);
    assert.equal((succeeded(outcome.results[0]) as { keyVersion: number }).keyVersion, 2);
    failed(outcome.results[1]);
  });

  it("mixed contexts fail the whole batch", async () => {
    const { service } = createFixture();
    await service.createKey("k", { derived: true });
    await rejectsWith(
      service.encryptBatch("k", [{ plaintext: "", context: base64("a") }, { plaintext: "" }]),
      "invalid_request",
      "batch_input",
    );
  });

  it("empty and oversized batches fail", async () => {
    const { service } = createFixture();
    await service.createKey("k");
    await rejectsWith(service.encryptBatch("k", []), "invalid_field", "batch_input");
    await rejectsWith(service.decryptBatch("k", []), "invalid_field", "batch_input");
    const huge = Array.from({ length: 10_001 }, () => ({ plaintext: "" }));
    await rejectsWith(service.encryptBatch("k", huge), "invalid_field", "batch_input");
  });

  it("batch on missing key fails whole", async () => {
    const { service } = createFixture();
    await rejectsWith(service.decryptBatch("missing", [{ ciphertext: "x" }]), "not_found");
  });
});

describe("TransitService signing", () => {
  it("signs and verifies with ed25519", async () => {
    const { service } = createFixture();
    await service.createKey("signer", { type: "ed25519" });
    const input = base64("message");
    const signed = await service.sign("signer", { input });
    assert.match(signed.value.signature, /^keyward:v1:/);
    assert.equal(signed.value.keyVersion, 1);
    const verified = await service.verify("signer", { input, signature: signed.value.signature });
    assert.equal(verified.value.valid, true);
    const wrong = await service.verify("signer", {
      input: base64("other"),
      signature: signed.value.signature,
    });
    assert.equal(wrong.value.valid, false);
  });

  it("signs with ecdsa and rsa options", async () => {
    const { service } = createFixture();
    await service.createKey("ec", { type: "ecdsa-p256" });
    const input = base64("payload");
    const jws = await service.sign(
      "ec",
      { input },
      { marshalingAlgorithm: "jws", hashAlgorithm: "sha2-384" },
    );
    const valid = await service.verify(
      "ec",
      { input, signature: jws.value.signature },
      { marshalingAlgorithm: "jws", hashAlgorithm: "sha2-384" },
    );
    assert.equal(valid.value.valid, true);

    await service.createKey("rsa", { type: "rsa-2048" });
    const options = { signatureAlgorithm: "pkcs1v15", hashAlgorithm: "sha2-512" };
    const rsa = await service.sign("rsa", { input }, options);
    assert.equal(
      (await service.verify("rsa", { input, signature: rsa.value.signature }, options)).value.valid,
      true,
    );

    const pss = await service.sign("rsa", { input }, { saltLength: "hash" });
    const pssChecked = await service.verify(
      "rsa",
      { input, signature: pss.value.signature },
      { saltLength: "32" },
    );
    assert.equal(pssChecked.value.valid, true);

    const digest = createHash("sha256").update("payload").digest("base64");
    const prehashedOptions = { prehashed: true, signatureAlgorithm: "pkcs1v15" };
    const prehashed = await service.sign("rsa", { input: digest }, prehashedOptions);
    const checked = await service.verify(
      "rsa",
      { input: digest, signature: prehashed.value.signature },
      prehashedOptions,
    );
    assert.equal(checked.value.valid, true);
  });

  const badOptions: Array<[string, Record<string, unknown>, string]> = [
    ["fail unknown hash algorithm", { hashAlgorithm: "md5" }, "hash_algorithm"],
    ["fail unknown signature algorithm", { signatureAlgorithm: "raw" }, "signature_algorithm"],
    ["fail unknown marshaling", { marshalingAlgorithm: "der" }, "marshaling_algorithm"],
    ["fail salt length word", { saltLength: "max" }, "salt_length"],
    ["fail salt length negative", { saltLength: -1 }, "salt_length"],
  ];
  for (const [title, options, field] of badOptions) {
    it(title, async () => {
      const { service } = createFixture();
      await service.createKey("rsa", { type: "rsa-2048" });
      await rejectsWith(
        service.sign("rsa", { input: base64("x") }, options),
        "invalid_field",
        field,
      );
    });
  }

  it("rejects signing with aes key", async () => {
    const { service } = createFixture();
    await service.createKey("k");
    await rejectsWith(service.sign("k", { input: base64("x") }), "unsupported_operation");
    await rejectsWith(
      service.verify("k", { input: base64("x"), signature: "keyward:v1:AA==" }),
      "unsupported_operation",
    );
  });

  it("sign batch answers 200 with errors", async () => {
    const { service } = createFixture();
    await service.createKey("signer", { type: "ed25519" });
    const outcome = await service.signBatch("signer", [
      { input: base64("a"), reference: "one" },
      { input: "??" },
      {},
    ]);
    assert.equal(outcome.status, 200);
    const signature = (succeeded(outcome.results[0]) as { signature: string }).signature;
    assert.equal(failed(outcome.results[1]).code, "invalid_base64");
    assert.equal(failed(outcome.results[2]).code, "missing_field");

    const verified = await service.verifyBatch("signer", [
      { input: base64("a"), signature },
      { input: base64("b"), signature },
      { input: "??", signature },
    ]);
    assert.equal(verified.status, 200);
    assert.equal((succeeded(verified.results[0]) as { valid: boolean }).valid, true);
    assert.equal((succeeded(verified.results[1]) as { valid: boolean }).valid, false);
    assert.equal(failed(verified.results[2]).code, "invalid_base64");
  });

  it("verify needs signature or hmac", async () => {
    const { service } = createFixture();
    await service.createKey("signer", { type: "ed25519" });
    await rejectsWith(
      service.verify("signer", { input: base64("a") }),
      "missing_field",
      "signature",
    );
    await rejectsWith(
      service.verify("signer", {
        input: base64("a"),
        signature: "keyward:v1:AA==",
        hmac: "keyward:v1:AA==",
      }),
      "invalid_request",
    );
    await rejectsWith(
      service.verifyBatch("signer", [
        { input: "", signature: "s" },
        { input: "", hmac: "h" },
      ]),
      "invalid_request",
      "batch_input",
    );
    await rejectsWith(
      service.verifyBatch("signer", [{ input: "", signature: "s" }, { input: "" }]),
      "invalid_request",
      "batch_input",
    );
    await rejectsWith(
      service.verifyBatch("signer", [{ input: "" }]),
      "invalid_request",
      "batch_input",
    );
  });
});

describe("TransitService HMAC", () => {
  it("computes and verifies HMACs", async () => {
    const { service } = createFixture();
    await service.createKey("k");
    const input = base64("message");
    const mac = await service.hmac("k", { input }, { algorithm: "sha2-512" });
    assert.match(mac.value.hmac, /^keyward:v1:/);
    const valid = await service.verify(
      "k",
      { input, hmac: mac.value.hmac },
      { hashAlgorithm: "sha2-512" },
    );
    assert.equal(valid.value.valid, true);
    const wrongAlgorithm = await service.verify("k", { input, hmac: mac.value.hmac });
    assert.equal(wrongAlgorithm.value.valid, false);
    await rejectsWith(
      service.hmac("k", { input }, { algorithm: "crc32" }),
      "invalid_field",
      "algorithm",
    );
    await rejectsWith(service.hmac("k", {}), "missing_field", "input");
  });

  it("works with every key type", async () => {
    const { service } = createFixture();
    await service.createKey("mac", { type: "hmac", keySize: 64 });
    await service.createKey("signer", { type: "ecdsa-p384" });
    for (const name of ["mac", "signer"]) {
      const mac = await service.hmac(name, { input: base64("x") });
      const verified = await service.verify(name, { input: base64("x"), hmac: mac.value.hmac });
      assert.equal(verified.value.valid, true);
    }
  });

  it("hmac batch keeps order", async () => {
    const { service } = createFixture();
    await service.createKey("k");
    const outcome = await service.hmacBatch("k", [{ input: base64("a") }, {}, { input: "" }]);
    assert.equal(outcome.status, 200);
    const first = succeeded(outcome.results[0]) as { hmac: string };
    assert.equal(failed(outcome.results[1]).code, "missing_field");
    succeeded(outcome.results[2]);

    const verified = await service.verifyBatch("k", [
      { input: base64("a"), hmac: first.hmac },
      { input: base64("b"), hmac: first.hmac },
    ]);
    assert.equal((succeeded(verified.results[0]) as { valid: boolean }).valid, true);
    assert.equal((succeeded(verified.results[1]) as { valid: boolean }).valid, false);
  });
});

describe("TransitService random and hash", () => {
  it("returns random bytes", () => {
    const { service } = createFixture();
    assert.equal(Buffer.from(service.randomBytes(), "base64").length, 32);
    assert.match(service.randomBytes({ bytes: 16, format: "hex" }), /^[0-9a-f]{32}$/);
    assert.equal(Buffer.from(service.randomBytes({ bytes: 1, source: "all" }), "base64").length, 1);
  });

  const badRandoms: Array<[string, Record<string, unknown>, string]> = [
    ["fail zero bytes", { bytes: 0 }, "bytes"],
    ["fail too many bytes", { bytes: 128 * 1024 + 1 }, "bytes"],
    ["fail fractional bytes", { bytes: 1.5 }, "bytes"],
    ["fail unknown format", { format: "base32" }, "format"],
    ["fail unknown source", { source: "seal" }, "source"],
  ];
  for (const [title, request, field] of badRandoms) {
    it(title, () => {
      const { service } = createFixture();
      assert.throws(
        () => service.randomBytes(request),
        (error: unknown) =>
          error instanceof KeywardError && error.code === "invalid_field" && error.field === field,
      );
    });
  }

  it("hashes input", () => {
    const { service } = createFixture();
    const expected = createHash("sha256").update("abc").digest("hex");
    assert.equal(service.hash({ input: base64("abc") }), expected);
    const sha3 = createHash("sha3-512").update("abc").digest("base64");
    assert.equal(
      service.hash({ input: base64("abc"), algorithm: "sha3-512", format: "base64" }),
      sha3,
    );
    assert.throws(() => service.hash({ input: base64("abc"), algorithm: "sha1" }), KeywardError);
    assert.throws(() => service.hash({ input: "a" }), KeywardError);
    assert.throws(() => service.hash({}), KeywardError);
  });
});
