import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after as afterAll, describe, it } from "node:test";
import {
  decrypt,
  exportKey,
  generateDataKey,
  type KeyType,
  type ManagedKey,
  parseVersionedValue,
  type SignRequest,
  sign,
} from "../../src/keys/index.ts";
import { requirePeer } from "../helpers/peers.ts";
import { makeKey, NOW } from "./fixtures.ts";

const workDir = mkdtempSync(join(tmpdir(), "keyward-openssl-"));
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

function openssl(args: string[]): { status: number | null; output: string } {
  const result = spawnSync("openssl", args, { cwd: workDir, encoding: "utf8" });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

/** Signs `data` with Keyward and writes data, signature and exported public key to files. */
function signToFiles(name: string, key: ManagedKey, request: Omit<SignRequest, "input">): string[] {
  const data = Buffer.from(`data signed by ${name}\n`);
  const { signature } = sign(key, { ...request, input: data }, NOW);
  const files = [`${name}.data`, `${name}.sig`, `${name}.pub.pem`];
  writeFileSync(join(workDir, files[0]!), data);
  writeFileSync(
    join(workDir, files[1]!),
    parseVersionedValue(signature, "signature", "invalid_signature").bytes,
  );
  writeFileSync(join(workDir, files[2]!), exportKey(key, "public-key", 1)["1"]!);
  return files;
}

function assertVerified(result: { status: number | null; output: string }): void {
  assert.equal(result.status, 0, result.output);
  assert.match(result.output, /Verified OK|Signature Verified Successfully/);
}

const DIGEST_CASES: [string, KeyType, Omit<SignRequest, "input">, string[]][] = [
  ["ecdsa-p256", "ecdsa-p256", {}, []],
  ["ecdsa-p384", "ecdsa-p384", {}, []],
  ["ecdsa-p521", "ecdsa-p521", {}, []],
  ["rsa-pkcs1v15", "rsa-2048", { signatureAlgorithm: "pkcs1v15" }, []],
  // -1 is "salt length = digest length" in OpenSSL's notation.
  [
    "rsa-pss-hash",
    "rsa-2048",
    { signatureAlgorithm: "pss", saltLength: "hash" },
    ["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:-1"],
  ],
  // -2 is "recover the salt length from the signature".
  [
    "rsa-pss-auto",
    "rsa-2048",
    { signatureAlgorithm: "pss", saltLength: "auto" },
    ["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:-2"],
  ],
];

describe("openssl interoperability", () => {
  for (const [name, type, request, sigopts] of DIGEST_CASES) {
    it(`openssl verifies ${name} signatures`, (t) => {
      if (!requirePeer(t, "openssl")) return;
      const [data, sig, pub] = signToFiles(name, makeKey(type), {
        ...request,
        hashAlgorithm: "sha2-256",
      });
      assertVerified(
        openssl(["dgst", "-sha256", "-verify", pub!, ...sigopts, "-signature", sig!, data!]),
      );
    });
  }

  it("openssl verifies ed25519 signatures", (t) => {
    if (!requirePeer(t, "openssl")) return;
    const [data, sig, pub] = signToFiles("ed25519", makeKey("ed25519"), {});
    assertVerified(
      openssl([
        "pkeyutl",
        "-verify",
        "-pubin",
        "-inkey",
        pub!,
        "-rawin",
        "-in",
        data!,
        "-sigfile",
        sig!,
      ]),
    );
  });

  it("openssl rejects a wrong signature", (t) => {
    if (!requirePeer(t, "openssl")) return;
    const [data, sig, pub] = signToFiles("ecdsa-wrong", makeKey("ecdsa-p256"), {});
    writeFileSync(join(workDir, data!), "other data\n");
    const result = openssl(["dgst", "-sha256", "-verify", pub!, "-signature", sig!, data!]);
    assert.notEqual(result.status, 0);
    assert.match(result.output, /Verification failure/);
  });

  it("openssl uses wrapped data key", (t) => {
    if (!requirePeer(t, "openssl")) return;
    const key = makeKey("aes256-gcm96");
    const dataKey = generateDataKey(key, { bits: 256 }, NOW);
    const iv = Buffer.alloc(16, 7).toString("hex");
    const original = Buffer.alloc(100_000);
    for (let i = 0; i < original.length; i++) original[i] = (i * 31) % 251;
    writeFileSync(join(workDir, "plain.bin"), original);

    const encrypted = openssl([
      "enc",
      "-aes-256-cbc",
      "-K",
      dataKey.plaintext.toString("hex"),
      "-iv",
      iv,
      "-in",
      "plain.bin",
      "-out",
      "file.enc",
    ]);
    assert.equal(encrypted.status, 0, encrypted.output);

    // Only the wrapped copy is kept; the data key comes back through decrypt.
    const recovered = decrypt(key, { ciphertext: dataKey.ciphertext }, NOW).plaintext;
    assert.deepEqual(recovered, dataKey.plaintext);
    const decrypted = openssl([
      "enc",
      "-d",
      "-aes-256-cbc",
      "-K",
      recovered.toString("hex"),
      "-iv",
      iv,
      "-in",
      "file.enc",
      "-out",
      "plain.out",
    ]);
    assert.equal(decrypted.status, 0, decrypted.output);
    assert.deepEqual(readFileSync(join(workDir, "plain.out")), original);
    assert.notDeepEqual(
      readFileSync(join(workDir, "file.enc")).subarray(0, 64),
      original.subarray(0, 64),
    );
  });
});
