import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createDecipheriv, createPublicKey, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it, type TestContext } from "node:test";
import nodeVault from "node-vault";
import { createTestApp, type TestApp } from "../../helpers/app.ts";
import { requirePeer } from "../../helpers/peers.ts";

function openssl(args: string[], input?: Buffer) {
  const result = spawnSync("openssl", args, { input });
  return {
    status: result.status,
    stdout: result.stdout ?? Buffer.alloc(0),
    output: `${result.stdout?.toString() ?? ""}${result.stderr?.toString() ?? ""}`,
  };
}

function runOpenssl(args: string[], input?: Buffer): Buffer {
  const result = openssl(args, input);
  assert.equal(result.status, 0, `openssl ${args.join(" ")}: ${result.output}`);
  return result.stdout;
}

/** Strips the `keyward:vN:` prefix and decodes the rest. */
function payload(value: string): Buffer {
  const match = /^keyward:v\d+:(.+)$/.exec(value);
  assert.ok(match?.[1], `not a versioned value: ${value}`);
  return Buffer.from(match[1], "base64");
}

/** The order of the P-256 base point, big-endian. */
const P256_ORDER = Buffer.from(
  "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551",
  "hex",
);

/** PKCS#8 DER of a P-256 key with the 32-byte scalar `scalar` and no public key. */
function p256Pkcs8(scalar: Buffer): Buffer {
  return Buffer.concat([
    Buffer.from("3041020100301306072a8648ce3d020106082a8648ce3d030107042730250201010420", "hex"),
    scalar,
  ]);
}

describe("transit key import over HTTP", () => {
  let t: TestApp;
  let endpoint = "";
  let dir = "";
  let wrappingKeyPem = "";
  const data = randomBytes(300);

  before(async () => {
    t = await createTestApp();
    await t.app.listen({ host: "127.0.0.1", port: 0 });
    const address = t.app.server.address();
    assert.ok(address !== null);
    assert.ok(typeof address === "object");
    endpoint = `http://127.0.0.1:${address.port}`;
    dir = mkdtempSync(join(tmpdir(), "keyward-import-"));
    writeFileSync(join(dir, "data"), data);
  });
  after(async () => {
    await t.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function call(
    method: string,
    path: string,
    body?: unknown,
    token: string = t.rootToken,
  ): Promise<{ status: number; json: ReturnType<typeof JSON.parse> }> {
    const response = await fetch(`${endpoint}/v1/${path}`, {
      method,
      headers: {
        "x-vault-token": token,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, json: text === "" ? {} : JSON.parse(text) };
  }

  async function ok(method: string, path: string, body?: unknown) {
    const response = await call(method, path, body);
    assert.ok(
      response.status < 300,
      `${path}: ${response.status} ${JSON.stringify(response.json)}`,
    );
    return response.json;
  }

  async function wrappingKey(mount = "transit"): Promise<string> {
    const response = await ok("GET", `${mount}/wrapping_key`);
    return response.data.public_key as string;
  }

  /**
   * Wraps `target` for import as a user does with the openssl CLI: the
   * ephemeral AES-256 key with RSA-OAEP under the wrapping key, the target
   * with AES-KWP under the ephemeral key.
   */
  function wrap(target: Buffer, options: { publicKeyPem?: string; hash?: string } = {}): string {
    const hash = options.hash ?? "sha256";
    const publicKeyPath = join(dir, "wrapping.pem");
    writeFileSync(publicKeyPath, options.publicKeyPem ?? wrappingKeyPem);
    const ephemeral = randomBytes(32);
    const ephemeralPath = join(dir, "ephemeral.bin");
    const targetPath = join(dir, "target.bin");
    writeFileSync(ephemeralPath, ephemeral);
    writeFileSync(targetPath, target);
    const encryptedEphemeral = runOpenssl([
      "pkeyutl",
      "-encrypt",
      "-pubin",
      "-inkey",
      publicKeyPath,
      "-pkeyopt",
      "rsa_padding_mode:oaep",
      "-pkeyopt",
      `rsa_oaep_md:${hash}`,
      "-pkeyopt",
      `rsa_mgf1_md:${hash}`,
      "-in",
      ephemeralPath,
    ]);
    const wrappedTarget = runOpenssl([
      "enc",
      "-id-aes256-wrap-pad",
      "-K",
      ephemeral.toString("hex"),
      "-iv",
      "A65959A6",
      "-in",
      targetPath,
    ]);
    return Buffer.concat([encryptedEphemeral, wrappedTarget]).toString("base64");
  }

  /** Generates a private key with openssl and returns its PKCS#8 DER and the path of its public key PEM. */
  function generateKey(
    name: string,
    algorithm: string[],
  ): { pkcs8: Buffer; publicKeyPath: string } {
    const pem = runOpenssl(["genpkey", ...algorithm]);
    const pkcs8 = runOpenssl(["pkcs8", "-topk8", "-nocrypt", "-outform", "DER"], pem);
    const publicKeyPath = join(dir, `${name}.pub.pem`);
    writeFileSync(publicKeyPath, runOpenssl(["pkey", "-pubout"], pem));
    return { pkcs8, publicKeyPath };
  }

  async function expectError(
    path: string,
    body: unknown,
    status: number,
    code: string,
    field?: string,
  ) {
    const response = await call("POST", path, body);
    assert.equal(response.status, status, JSON.stringify(response.json));
    assert.equal(response.json.code, code, JSON.stringify(response.json));
    if (field !== undefined) assert.equal(response.json.field, field);
    return response.json;
  }

  function aesGcmOpen(key: Buffer, ciphertext: string): Buffer {
    const bytes = payload(ciphertext);
    const decipher = createDecipheriv("aes-256-gcm", key, bytes.subarray(0, 12));
    decipher.setAuthTag(bytes.subarray(bytes.length - 16));
    return Buffer.concat([
      decipher.update(bytes.subarray(12, bytes.length - 16)),
      decipher.final(),
    ]);
  }

  it("wrapping_key returns one RSA-4096 key", async () => {
    await ok("POST", "sys/mounts/fresh", { type: "transit" });
    // Two first reads at once must end with one key.
    const [first, second] = await Promise.all([wrappingKey("fresh"), wrappingKey("fresh")]);
    assert.equal(first, second);
    assert.match(first, /^-----BEGIN PUBLIC KEY-----/);
    const parsed = createPublicKey(first);
    assert.equal(parsed.asymmetricKeyType, "rsa");
    assert.equal(parsed.asymmetricKeyDetails?.modulusLength, 4096);
    assert.equal(await wrappingKey("fresh"), first);

    wrappingKeyPem = await wrappingKey();
    assert.notEqual(wrappingKeyPem, first);
  });

  it("wrapping key is deleted with its mount", async () => {
    const barrier = t.keyward.seal.barrier;
    assert.notEqual(await barrier.get("fresh/config/wrapping_key"), undefined);
    await ok("DELETE", "sys/mounts/fresh");
    assert.equal(await barrier.get("fresh/config/wrapping_key"), undefined);
  });

  it("imports an AES key that node:crypto decrypts with", async (context) => {
    if (!requirePeer(context, "openssl")) return;
    const original = randomBytes(32);
    const imported = await ok("POST", "transit/keys/aes/import", { ciphertext: wrap(original) });
    assert.equal(imported.data.imported, true);
    assert.equal(imported.data.allow_rotation, false);
    assert.equal(imported.data.type, "aes256-gcm96");
    assert.equal(imported.data.latest_version, 1);

    const encrypted = await ok("POST", "transit/encrypt/aes", {
      plaintext: data.toString("base64"),
    });
    assert.deepEqual(aesGcmOpen(original, encrypted.data.ciphertext), data);
    const read = await ok("GET", "transit/keys/aes");
    assert.equal(read.data.imported, true);
  });

  it("import of an existing key fails", async (context) => {
    if (!requirePeer(context, "openssl")) return;
    await expectError(
      "transit/keys/aes/import",
      { ciphertext: wrap(randomBytes(32)) },
      409,
      "already_exists",
    );
  });

  it("rotate without allow_rotation fails", async () => {
    const response = await expectError("transit/keys/aes/rotate", {}, 409, "invalid_state");
    assert.match(response.errors[0], /allow_rotation/);
    await expectError(
      "transit/keys/aes/config",
      { auto_rotate_period: "24h" },
      400,
      "invalid_field",
      "auto_rotate_period",
    );
  });

  it("import_version adds a version", async (context) => {
    if (!requirePeer(context, "openssl")) return;
    const first = Buffer.from("first version plaintext");
    const old = await ok("POST", "transit/encrypt/aes", { plaintext: first.toString("base64") });
    assert.match(old.data.ciphertext, /^keyward:v1:/);

    const second = randomBytes(32);
    const updated = await ok("POST", "transit/keys/aes/import_version", {
      ciphertext: wrap(second),
    });
    assert.equal(updated.data.latest_version, 2);

    const decryptedOld = await ok("POST", "transit/decrypt/aes", {
      ciphertext: old.data.ciphertext,
    });
    assert.equal(decryptedOld.data.plaintext, first.toString("base64"));
    const fresh = await ok("POST", "transit/encrypt/aes", { plaintext: data.toString("base64") });
    assert.match(fresh.data.ciphertext, /^keyward:v2:/);
    assert.deepEqual(aesGcmOpen(second, fresh.data.ciphertext), data);
    const decryptedNew = await ok("POST", "transit/decrypt/aes", {
      ciphertext: fresh.data.ciphertext,
    });
    assert.equal(decryptedNew.data.plaintext, data.toString("base64"));
  });

  const signingCases = [
    {
      name: "ec",
      type: "ecdsa-p256",
      algorithm: ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
      sign: { hash: "sha2-256", body: {} },
    },
    {
      name: "rsa",
      type: "rsa-2048",
      algorithm: ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
      sign: { hash: "sha2-256", body: { signature_algorithm: "pkcs1v15" } },
    },
  ];

  for (const testCase of signingCases) {
    it(`imports ${testCase.type} and openssl verifies`, async (context) => {
      if (!requirePeer(context, "openssl")) return;
      const { pkcs8, publicKeyPath } = generateKey(testCase.name, testCase.algorithm);
      await ok("POST", `transit/keys/${testCase.name}/import`, {
        ciphertext: wrap(pkcs8),
        type: testCase.type,
        hash_function: "SHA256",
      });
      const signed = await ok("POST", `transit/sign/${testCase.name}/${testCase.sign.hash}`, {
        input: data.toString("base64"),
        ...testCase.sign.body,
      });
      const signaturePath = join(dir, `${testCase.name}.sig`);
      writeFileSync(signaturePath, payload(signed.data.signature));
      const verified = openssl([
        "dgst",
        "-sha256",
        "-verify",
        publicKeyPath,
        "-signature",
        signaturePath,
        join(dir, "data"),
      ]);
      assert.equal(verified.status, 0, verified.output);
      assert.match(verified.output, /Verified OK/);
    });
  }

  it("imports ed25519 and openssl verifies", async (context) => {
    if (!requirePeer(context, "openssl")) return;
    const { pkcs8, publicKeyPath } = generateKey("ed", ["-algorithm", "ED25519"]);
    await ok("POST", "transit/keys/ed/import", {
      ciphertext: wrap(pkcs8, { hash: "sha512" }),
      type: "ed25519",
      hash_function: "SHA512",
    });
    const signed = await ok("POST", "transit/sign/ed", { input: data.toString("base64") });
    const signaturePath = join(dir, "ed.sig");
    writeFileSync(signaturePath, payload(signed.data.signature));
    const verified = openssl([
      "pkeyutl",
      "-verify",
      "-pubin",
      "-inkey",
      publicKeyPath,
      "-rawin",
      "-in",
      join(dir, "data"),
      "-sigfile",
      signaturePath,
    ]);
    assert.equal(verified.status, 0, verified.output);
    assert.match(verified.output, /Signature Verified Successfully/);
  });

  it("import_version rejects another curve", async (context) => {
    if (!requirePeer(context, "openssl")) return;
    const p384 = generateKey("p384", ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"]);
    const response = await expectError(
      "transit/keys/ec/import_version",
      { ciphertext: wrap(p384.pkcs8) },
      400,
      "invalid_key_material",
      "ciphertext",
    );
    assert.match(response.errors[0], /P-384/);
  });

  it("rejects malformed and hostile imports", async (context: TestContext) => {
    if (!requirePeer(context, "openssl")) return;
    const aes = randomBytes(32);
    const good = wrap(aes);
    const bytes = Buffer.from(good, "base64");
    const tampered = Buffer.from(bytes);
    tampered[tampered.length - 3] = (tampered[tampered.length - 3] as number) ^ 1;
    const rsa = generateKey("rsa-other", ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]);

    await ok("POST", "sys/mounts/other", { type: "transit" });
    const otherMountKey = await wrappingKey("other");

    const cases: [string, Record<string, unknown>, number, string, string | undefined][] = [
      ["missing ciphertext", {}, 400, "missing_field", "ciphertext"],
      ["not base64", { ciphertext: "!!!" }, 400, "invalid_base64", "ciphertext"],
      [
        "too short",
        { ciphertext: bytes.subarray(0, 520).toString("base64") },
        400,
        "invalid_field",
        "ciphertext",
      ],
      [
        "KWP part not a multiple of 8",
        { ciphertext: Buffer.concat([bytes, Buffer.alloc(3)]).toString("base64") },
        400,
        "invalid_field",
        "ciphertext",
      ],
      ["unknown hash", { ciphertext: good, hash_function: "MD5" }, 400, "invalid_field", undefined],
      [
        "other OAEP hash",
        { ciphertext: good, hash_function: "SHA1" },
        400,
        "key_unwrap_failed",
        "ciphertext",
      ],
      [
        "KWP integrity",
        { ciphertext: tampered.toString("base64") },
        400,
        "key_unwrap_failed",
        "ciphertext",
      ],
      [
        "other mount's wrapping key",
        { ciphertext: wrap(aes, { publicKeyPem: otherMountKey }) },
        400,
        "key_unwrap_failed",
        "ciphertext",
      ],
      [
        "short AES key",
        { ciphertext: wrap(randomBytes(16)) },
        400,
        "invalid_key_material",
        "ciphertext",
      ],
      [
        "AES-128 bytes for chacha",
        { ciphertext: wrap(randomBytes(16)), type: "chacha20-poly1305" },
        400,
        "invalid_key_material",
        "ciphertext",
      ],
      [
        "RSA key as ed25519",
        { ciphertext: wrap(rsa.pkcs8), type: "ed25519" },
        400,
        "invalid_key_material",
        "ciphertext",
      ],
      [
        "RSA-2048 as rsa-3072",
        { ciphertext: wrap(rsa.pkcs8), type: "rsa-3072" },
        400,
        "invalid_key_material",
        "ciphertext",
      ],
      [
        "garbage as PKCS#8",
        { ciphertext: wrap(randomBytes(64)), type: "ecdsa-p256" },
        400,
        "invalid_key_material",
        "ciphertext",
      ],
      [
        "EC scalar zero",
        { ciphertext: wrap(p256Pkcs8(Buffer.alloc(32))), type: "ecdsa-p256" },
        400,
        "invalid_key_material",
        "ciphertext",
      ],
      [
        "EC scalar equal to the order",
        { ciphertext: wrap(p256Pkcs8(P256_ORDER)), type: "ecdsa-p256" },
        400,
        "invalid_key_material",
        "ciphertext",
      ],
      [
        "hmac key too short",
        { ciphertext: wrap(randomBytes(16)), type: "hmac" },
        400,
        "invalid_key_material",
        "ciphertext",
      ],
      [
        "convergent encryption",
        { ciphertext: good, derived: true, convergent_encryption: true },
        400,
        "invalid_field",
        "convergent_encryption",
      ],
      [
        "auto rotation without allow_rotation",
        { ciphertext: good, auto_rotate_period: "24h" },
        400,
        "invalid_field",
        "auto_rotate_period",
      ],
      ["unknown field", { ciphertext: good, key_size: 32 }, 400, "unknown_field", undefined],
    ];
    for (const [label, body, status, code, field] of cases) {
      const response = await call("POST", "transit/keys/hostile/import", body);
      assert.equal(response.status, status, `${label}: ${JSON.stringify(response.json)}`);
      assert.equal(response.json.code, code, `${label}: ${JSON.stringify(response.json)}`);
      if (field !== undefined) assert.equal(response.json.field, field, label);
      const text = JSON.stringify(response.json);
      assert.ok(!text.includes(aes.toString("base64")), `${label}: response has the key`);
      assert.ok(!text.includes(aes.toString("hex")), `${label}: response has the key`);
    }
    assert.equal((await call("GET", "transit/keys/hostile")).status, 404);

    await ok("POST", "transit/keys/generated", {});
    await expectError(
      "transit/keys/generated/import_version",
      { ciphertext: good },
      409,
      "invalid_state",
    );
    await expectError(
      "transit/keys/missing/import_version",
      { ciphertext: good },
      404,
      "not_found",
    );
  });

  it("imports hmac and chacha keys", async (context) => {
    if (!requirePeer(context, "openssl")) return;
    const hmacKey = randomBytes(48);
    const imported = await ok("POST", "transit/keys/mac/import", {
      ciphertext: wrap(hmacKey),
      type: "hmac",
    });
    assert.equal(imported.data.key_size, 48);
    await expectError(
      "transit/keys/mac/import_version",
      { ciphertext: wrap(randomBytes(32)) },
      400,
      "invalid_key_material",
      "ciphertext",
    );
    await ok("POST", "transit/keys/chacha/import", {
      ciphertext: wrap(randomBytes(32)),
      type: "chacha20-poly1305",
      allow_rotation: true,
      auto_rotate_period: "24h",
      derived: true,
    });
    const rotated = await ok("POST", "transit/keys/chacha/rotate", {});
    assert.equal(rotated.data.latest_version, 2);
  });

  it("audit log HMACs the import ciphertext", async (context) => {
    if (!requirePeer(context, "openssl")) return;
    const ciphertext = wrap(randomBytes(32));
    await ok("POST", "transit/keys/audited/import", { ciphertext });
    const found = await t.keyward.audit.search({ path_prefix: "transit/keys/audited/import" });
    assert.ok(found.records.length >= 2);
    for (const record of found.records) {
      const text = JSON.stringify(record);
      assert.ok(!text.includes(ciphertext), "the audit record has the ciphertext in the clear");
    }
    const request = found.records.find((record) => JSON.stringify(record).includes('"request"'));
    assert.match(JSON.stringify(request), /"ciphertext":"hmac-sha256:/);
  });

  it("narrow policy allows import only", async (context) => {
    if (!requirePeer(context, "openssl")) return;
    const policy = [
      'path "transit/wrapping_key" { capabilities = ["read"] }',
      'path "transit/keys/+/import" { capabilities = ["update"] }',
    ].join("\n");
    const written = await call("PUT", "sys/policies/acl/importer", { policy });
    assert.equal(written.status, 204, JSON.stringify(written.json));
    const created = await ok("POST", "auth/token/create", { policies: ["importer"], ttl: "1h" });
    const token = created.auth.client_token as string;

    const read = await call("GET", "transit/wrapping_key", undefined, token);
    assert.equal(read.status, 200);
    assert.equal(read.json.data.public_key, wrappingKeyPem);
    const imported = await call(
      "POST",
      "transit/keys/narrow/import",
      { ciphertext: wrap(randomBytes(32)) },
      token,
    );
    assert.equal(imported.status, 200, JSON.stringify(imported.json));

    const denied = [
      ["transit/keys/narrow/import_version", { ciphertext: wrap(randomBytes(32)) }],
      ["transit/keys/narrow/rotate", {}],
      ["transit/encrypt/narrow", { plaintext: "aGk=" }],
    ] as const;
    for (const [path, body] of denied) {
      const response = await call("POST", path, body, token);
      assert.equal(response.status, 403, `${path}: ${JSON.stringify(response.json)}`);
      assert.equal(response.json.code, "permission_denied");
    }
  });

  it("node-vault reads the wrapping key and imports", async (context) => {
    if (!requirePeer(context, "openssl")) return;
    const vault = nodeVault({ apiVersion: "v1", endpoint, token: t.rootToken });
    const read = await vault.read("transit/wrapping_key");
    assert.equal(read.data.public_key, wrappingKeyPem);

    const original = randomBytes(32);
    await vault.write("transit/keys/client/import", {
      ciphertext: wrap(original, { publicKeyPem: read.data.public_key }),
      hash_function: "SHA256",
      exportable: true,
    });
    const exported = await vault.read("transit/export/encryption-key/client/1");
    assert.equal(exported.data.keys["1"], original.toString("base64"));
  });

  it("stores the wrapping key sealed", async () => {
    const raw = await t.keyward.storage.get("transit/config/wrapping_key");
    assert.ok(raw !== undefined);
    const text = Buffer.from(raw).toString("latin1");
    assert.equal(text.includes("privateKey"), false, "the stored value is not encrypted");
    const opened = await t.keyward.seal.barrier.get("transit/config/wrapping_key");
    assert.ok(opened !== undefined);
    assert.match(Buffer.from(opened).toString("utf8"), /"privateKey"/);
  });
});
