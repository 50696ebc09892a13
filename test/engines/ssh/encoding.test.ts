import assert from "node:assert/strict";
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync } from "node:crypto";
import { describe, it } from "node:test";
import {
  decodeCertificate,
  decodeCertificateLine,
  encodeCertificate,
  encodeOptions,
  VALID_FOREVER,
} from "../../../src/engines/ssh/certificate.ts";
import { encodeKrl } from "../../../src/engines/ssh/krl.ts";
import { encodeOpensshPrivateKey, parsePrivateKey } from "../../../src/engines/ssh/private-keys.ts";
import {
  fingerprintSha256,
  formatPublicKeyLine,
  parsePublicKeyLine,
  publicKeyBlob,
} from "../../../src/engines/ssh/public-keys.ts";
import { signSsh, verifySsh } from "../../../src/engines/ssh/signatures.ts";
import { mpintBytes, SshReader, SshWriter } from "../../../src/engines/ssh/wire.ts";
import { clientKey, keywardError } from "./fixtures.ts";

/** An Ed25519 key from a fixed seed, so signatures (deterministic for Ed25519) are fixed too. */
const FIXED_ED25519 = createPrivateKey({
  key: Buffer.concat([Buffer.from("302e020100300506032b657004220420", "hex"), Buffer.alloc(32, 1)]),
  format: "der",
  type: "pkcs8",
});

describe("SSH wire encoding", () => {
  it("encodes mpints without sign confusion", () => {
    assert.deepEqual(mpintBytes(Buffer.from([0, 0, 0x7f])), Buffer.from([0x7f]));
    assert.deepEqual(mpintBytes(Buffer.from([0x80])), Buffer.from([0, 0x80]));
    assert.deepEqual(mpintBytes(Buffer.alloc(3)), Buffer.alloc(0));
  });

  it("rejects a truncated string", () => {
    const bytes = new SshWriter().uint32(10).raw(Buffer.from("abc")).toBuffer();
    assert.throws(() => new SshReader(bytes).string(), /ends before/);
  });

  it("rejects a negative or padded mpint", () => {
    const negative = new SshWriter().string(Buffer.from([0x80])).toBuffer();
    assert.throws(() => new SshReader(negative).positiveMpint(), /negative/);
    const padded = new SshWriter().string(Buffer.from([0, 0x01])).toBuffer();
    assert.throws(() => new SshReader(padded).positiveMpint(), /leading zero/);
  });
});

describe("OpenSSH public keys", () => {
  for (const [type, option] of [
    ["ed25519", 0],
    ["ec", "P-256"],
    ["ec", "P-384"],
    ["ec", "P-521"],
    ["rsa", 2048],
  ] as const) {
    it(`ok round trip ${type}${option ? ` ${option}` : ""}`, () => {
      const key = clientKey(type, option || undefined);
      const parsed = parsePublicKeyLine(key.line, "public_key");
      assert.equal(parsed.comment, "client@test");
      assert.deepEqual(publicKeyBlob(key.publicKey).blob, parsed.blob);
      assert.equal(
        parsed.keyObject?.export({ format: "der", type: "spki" }).toString("hex"),
        key.publicKey.export({ format: "der", type: "spki" }).toString("hex"),
      );
    });
  }

  it("fingerprints like ssh-keygen -l", () => {
    const { blob } = publicKeyBlob(clientKey().publicKey);
    const expected = createHash("sha256").update(blob).digest("base64").replace(/=+$/, "");
    assert.equal(fingerprintSha256(blob), `SHA256:${expected}`);
  });

  it("rejects a type that differs from the blob", () => {
    const key = clientKey();
    const line = key.line.replace("ssh-ed25519", "ssh-rsa");
    assert.throws(
      () => parsePublicKeyLine(line, "public_key"),
      keywardError("invalid_field", "public_key"),
    );
  });

  it("rejects a point that is not on the curve", () => {
    const { blob } = publicKeyBlob(clientKey("ec").publicKey);
    const broken = Buffer.from(blob);
    broken[broken.length - 1] = (broken.at(-1) as number) ^ 1;
    assert.throws(
      () => parsePublicKeyLine(formatPublicKeyLine("ecdsa-sha2-nistp256", broken), "public_key"),
      keywardError("invalid_field", "public_key"),
    );
  });
});

describe("OpenSSH certificate encoding", () => {
  it("sorts options by name in byte order", () => {
    const encoded = encodeOptions({ "permit-pty": "", "force-command": "ls" });
    const expected = Buffer.concat([
      Buffer.from("0000000d", "hex"),
      Buffer.from("force-command"),
      Buffer.from("00000006" + "00000002", "hex"),
      Buffer.from("ls"),
      Buffer.from("0000000a", "hex"),
      Buffer.from("permit-pty"),
      Buffer.from("00000000", "hex"),
    ]);
    assert.equal(encoded.toString("hex"), expected.toString("hex"));
    const names = new SshReader(encodeOptions({ "permit-pty": "", "permit-X11-forwarding": "" }));
    assert.equal(names.text(), "permit-X11-forwarding");
  });

  it("encodes every field in the documented order", () => {
    const subject = clientKey("ec");
    const { blob: subjectBlob } = publicKeyBlob(subject.publicKey);
    const { blob: caBlob } = publicKeyBlob(FIXED_ED25519);
    const nonce = Buffer.alloc(32, 9);
    const certificate = encodeCertificate(
      {
        key: { algorithm: "ecdsa-sha2-nistp256", blob: subjectBlob },
        nonce,
        serial: 0x0102030405060708n,
        type: "host",
        keyId: "host-1",
        principals: ["a.example.com", "b.example.com"],
        validAfter: 1_000n,
        validBefore: VALID_FOREVER,
        criticalOptions: {},
        extensions: {},
      },
      caBlob,
      (data) => signSsh(FIXED_ED25519, "ssh-ed25519", undefined, data),
    );
    const reader = new SshReader(certificate);
    assert.equal(reader.text(), "ecdsa-sha2-nistp256-cert-v01@openssh.com");
    assert.deepEqual(reader.string(), nonce);
    assert.equal(reader.text(), "nistp256");
    const subjectFields = new SshReader(subjectBlob);
    subjectFields.string();
    subjectFields.string();
    assert.deepEqual(reader.string(), subjectFields.string());
    assert.equal(reader.uint64(), 0x0102030405060708n);
    assert.equal(reader.uint32(), 2);
    assert.equal(reader.text(), "host-1");
    const principals = new SshReader(reader.string());
    assert.equal(principals.text(), "a.example.com");
    assert.equal(principals.text(), "b.example.com");
    assert.equal(reader.uint64(), 1_000n);
    assert.equal(reader.uint64(), 0xffff_ffff_ffff_ffffn);
    assert.equal(reader.string().length, 0);
    assert.equal(reader.string().length, 0);
    assert.equal(reader.string().length, 0);
    assert.deepEqual(reader.string(), caBlob);
    const signature = new SshReader(reader.string());
    assert.equal(signature.text(), "ssh-ed25519");
    assert.equal(signature.string().length, 64);
    reader.end();

    const decoded = decodeCertificate(certificate, "cert");
    const caPublic = createPublicKey(FIXED_ED25519);
    assert.ok(verifySsh(caPublic, "ssh-ed25519", decoded.signature, decoded.signedData));
  });

  it("decodes what it encodes", () => {
    const ca = generateKeyPairSync("ec", { namedCurve: "P-384" });
    const subject = clientKey("rsa");
    const { blob } = publicKeyBlob(subject.publicKey);
    const caBlob = publicKeyBlob(ca.publicKey).blob;
    const certificate = encodeCertificate(
      {
        key: { algorithm: "ssh-rsa", blob },
        nonce: Buffer.alloc(32, 1),
        serial: 42n,
        type: "user",
        keyId: "kid",
        principals: ["alice"],
        validAfter: 10n,
        validBefore: 20n,
        criticalOptions: { "source-address": "10.0.0.0/8", "verify-required": "" },
        extensions: { "permit-pty": "" },
      },
      caBlob,
      (data) => signSsh(ca.privateKey, "ecdsa-sha2-nistp384", undefined, data),
    );

    const line = formatPublicKeyLine("ssh-rsa-cert-v01@openssh.com", certificate);
    const decoded = decodeCertificateLine(line, "cert");
    assert.equal(decoded.serial, 42n);
    assert.deepEqual(decoded.principals, ["alice"]);
    assert.deepEqual(decoded.criticalOptions, {
      "source-address": "10.0.0.0/8",
      "verify-required": "",
    });
    assert.deepEqual(decoded.extensions, { "permit-pty": "" });
    assert.deepEqual(decoded.key.blob, blob);
    assert.ok(
      verifySsh(ca.publicKey, "ecdsa-sha2-nistp384", decoded.signature, decoded.signedData),
    );
    const tampered = Buffer.from(decoded.signedData);
    tampered[tampered.length - 1] = (tampered.at(-1) as number) ^ 1;
    assert.equal(
      verifySsh(ca.publicKey, "ecdsa-sha2-nistp384", decoded.signature, tampered),
      false,
    );
  });

  it("signs RSA with SHA-2 only", () => {
    const ca = generateKeyPairSync("rsa", { modulusLength: 2048 });
    for (const [requested, expected] of [
      [undefined, "rsa-sha2-256"],
      ["rsa-sha2-512", "rsa-sha2-512"],
    ] as const) {
      const signature = signSsh(ca.privateKey, "ssh-rsa", requested, Buffer.from("data"));
      assert.equal(new SshReader(signature).text(), expected);
      assert.ok(verifySsh(ca.publicKey, "ssh-rsa", signature, Buffer.from("data")));
    }
  });
});

describe("OpenSSH private keys", () => {
  for (const [type, option] of [
    ["ed25519", 0],
    ["ec", "P-256"],
    ["ec", "P-521"],
    ["rsa", 2048],
  ] as const) {
    it(`ok round trip ${type}${option ? ` ${option}` : ""}`, () => {
      const key = clientKey(type, option || undefined);
      const text = encodeOpensshPrivateKey(key.privateKey, "comment");
      assert.match(text, /^-----BEGIN OPENSSH PRIVATE KEY-----\n/);
      const parsed = parsePrivateKey(text, "private_key");
      assert.deepEqual(publicKeyBlob(parsed).blob, publicKeyBlob(key.publicKey).blob);
      const data = Buffer.from("check");
      const algorithm = publicKeyBlob(parsed).algorithm;
      assert.ok(
        verifySsh(key.publicKey, algorithm, signSsh(parsed, algorithm, undefined, data), data),
      );
    });
  }

  it("rejects an encrypted PEM key", () => {
    const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const pem = privateKey.export({
      format: "pem",
      type: "pkcs8",
      cipher: "aes-256-cbc",
      passphrase: "secret",
    }) as string;
    assert.throws(
      () => parsePrivateKey(pem, "private_key"),
      keywardError("invalid_field", "private_key"),
    );
  });
});

describe("KRL encoding", () => {
  it("writes the header and sorted sections", () => {
    const caBlob = publicKeyBlob(FIXED_ED25519).blob;
    const high = Buffer.alloc(32, 0xff);
    const low = Buffer.alloc(32, 0x01);
    const krl = encodeKrl({
      version: 7n,
      generatedAt: 1_700_000_000n,
      comment: "test",
      certificates: [{ caKeyBlob: caBlob, serials: [5n, 3n, 5n], keyIds: ["b", "a"] }],
      explicitKeys: [],
      sha256Fingerprints: [high, low],
    });
    const reader = new SshReader(krl);
    assert.equal(reader.uint64(), 0x5353484b524c0a00n);
    assert.equal(reader.uint32(), 1);
    assert.equal(reader.uint64(), 7n);
    assert.equal(reader.uint64(), 1_700_000_000n);
    assert.equal(reader.uint64(), 0n);
    assert.equal(reader.string().length, 0);
    assert.equal(reader.text(), "test");

    assert.equal(reader.byte(), 1);
    const certificates = new SshReader(reader.string());
    assert.deepEqual(certificates.string(), caBlob);
    assert.equal(certificates.string().length, 0);
    assert.equal(certificates.byte(), 0x20);
    const serials = new SshReader(certificates.string());
    assert.deepEqual([serials.uint64(), serials.uint64()], [3n, 5n]);
    serials.end();
    assert.equal(certificates.byte(), 0x23);
    const keyIds = new SshReader(certificates.string());
    assert.deepEqual([keyIds.text(), keyIds.text()], ["a", "b"]);
    certificates.end();

    assert.equal(reader.byte(), 5);
    const hashes = new SshReader(reader.string());
    assert.deepEqual([hashes.string(), hashes.string()], [low, high]);
    reader.end();
  });
});
