import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { after, before, describe, it } from "node:test";
import {
  certificateKeyType,
  encodeCertificate,
  VALID_FOREVER,
} from "../../../src/engines/ssh/certificate.ts";
import { encodeKrl, type KrlContents } from "../../../src/engines/ssh/krl.ts";
import { formatPublicKeyLine, publicKeyBlob } from "../../../src/engines/ssh/public-keys.ts";
import { RevocationRegistry, type RevocationState } from "../../../src/engines/ssh/revocation.ts";
import { signSsh } from "../../../src/engines/ssh/signatures.ts";
import { SshStore } from "../../../src/engines/ssh/store.ts";
import { requirePeer } from "../../helpers/peers.ts";
import {
  clientKey,
  createSshFixture,
  decodeKrl,
  keywardError,
  logText,
  roleWrite,
  run,
  type SshFixture,
  tempFiles,
  USER_ROLE,
} from "./fixtures.ts";

const caBlob = publicKeyBlob(generateKeyPairSync("ed25519").publicKey).blob;

/** KRL contents that OpenSSH loads; each case below breaks one part. */
function validContents(): KrlContents {
  return {
    version: 1n,
    generatedAt: 1_700_000_000n,
    comment: "keyward ssh",
    certificates: [{ caKeyBlob: caBlob, serials: [1n, 0xffff_ffff_ffff_ffffn], keyIds: ["a"] }],
    explicitKeys: [],
    sha256Fingerprints: [Buffer.alloc(32, 7)],
  };
}

/** Returns a certificate line with serial 0, as `ssh-keygen -s` writes by default, from a CA Keyward does not hold. */
function serialZeroCertificate(): string {
  const ca = generateKeyPairSync("ed25519");
  const subject = publicKeyBlob(clientKey().publicKey);
  const blob = encodeCertificate(
    {
      key: { algorithm: "ssh-ed25519", blob: subject.blob },
      nonce: Buffer.alloc(32, 3),
      serial: 0n,
      type: "user",
      keyId: "outside",
      principals: ["alice"],
      validAfter: 0n,
      validBefore: VALID_FOREVER,
      criticalOptions: {},
      extensions: {},
    },
    publicKeyBlob(ca.publicKey).blob,
    (data) => signSsh(ca.privateKey, "ssh-ed25519", undefined, data),
  );
  return formatPublicKeyLine(certificateKeyType("ssh-ed25519"), blob);
}

describe("KRL contents OpenSSH rejects", () => {
  it("ok valid contents", () => {
    assert.ok(encodeKrl(validContents()).length > 0);
  });

  for (const [name, breakContents] of [
    ["fail serial 0", (c: KrlContents) => c.certificates[0]?.serials.push(0n)],
    ["fail serial above 64 bits", (c: KrlContents) => c.certificates[0]?.serials.push(2n ** 64n)],
    ["fail key ID with NUL", (c: KrlContents) => c.certificates[0]?.keyIds.push("a\u0000b")],
    ["fail comment with NUL", (c: KrlContents) => Object.assign(c, { comment: "a\u0000" })],
    [
      "fail CA key that does not parse",
      (c: KrlContents) =>
        c.certificates.push({ caKeyBlob: Buffer.from("junk"), serials: [2n], keyIds: [] }),
    ],
    ["fail short SHA-256 hash", (c: KrlContents) => c.sha256Fingerprints.push(Buffer.alloc(31))],
  ] as const) {
    it(name, () => {
      const contents = validContents();
      breakContents(contents);
      assert.throws(() => encodeKrl(contents), keywardError("internal"));
    });
  }
});

describe("SSH revocation keeps the KRL valid", () => {
  let fixture: SshFixture;
  before(async () => {
    fixture = await createSshFixture();
    await fixture.service.configureCa("user", { keyType: "ssh-ed25519" });
    await fixture.service.writeRole("users", roleWrite({ ...USER_ROLE, allow_user_key_ids: true }));
  });

  for (const [name, request, field] of [
    ["fail serial 0", { serialNumber: "0" }, "serial_number"],
    ["fail serial 0 with prefix", { serialNumber: "0x0000" }, "serial_number"],
    ["fail key ID with NUL", { keyId: "\u0000abc" }, "key_id"],
    ["fail key ID with newline", { keyId: "a\nb" }, "key_id"],
    ["fail key ID over 1024 bytes", { keyId: "k".repeat(1025) }, "key_id"],
    ["fail certificate with serial 0", { publicKey: serialZeroCertificate() }, "public_key"],
  ] as const) {
    it(name, async () => {
      await assert.rejects(fixture.service.revoke(request), keywardError("invalid_field", field));
      assert.equal(decodeKrl(await fixture.service.krl()).version, 0n);
    });
  }

  it("ok serial with 0x prefix", async () => {
    const signed = await fixture.service.sign("users", { publicKey: clientKey().line });
    const outcome = await fixture.service.revoke({ serialNumber: `0x${signed.serialNumber}` });
    assert.deepEqual(outcome.value.certificatesRevoked, [signed.serialNumber]);
  });

  it("stores nothing OpenSSH rejects", async () => {
    const { barrier, clock, logger } = await createSshFixture();
    const registry = new RevocationRegistry(new SshStore(barrier, "ssh"), clock.now, logger, "ssh");
    await assert.rejects(
      registry.change("test", (state) => {
        state.serials.push({ serial: "0".repeat(16), caPublicKey: "" });
        return true;
      }),
      keywardError("internal"),
    );
    assert.equal((await registry.state()).version, 0);
    assert.equal(decodeKrl(await registry.krl()).version, 0n);
  });
});

describe("ssh-keygen loads the KRL", () => {
  const files = tempFiles();
  after(() => files.cleanup());

  /** Runs `ssh-keygen -Q -l` on the service's KRL and returns its output, failing when the KRL does not load. */
  async function listKrl(service: SshFixture["service"]): Promise<string> {
    const listed = run("ssh-keygen", ["-Q", "-l", "-f", files.write("krl", await service.krl())]);
    assert.equal(listed.status, 0, listed.output);
    return listed.output;
  }

  it("ok after rejected revocations", async (t) => {
    if (!requirePeer(t, "ssh-keygen")) return;
    const { service } = await createSshFixture();
    await service.configureCa("user", { keyType: "ssh-ed25519" });
    await service.writeRole("users", roleWrite(USER_ROLE));
    const signed = await service.sign("users", { publicKey: clientKey().line });
    await service.revoke({ serialNumber: signed.serialNumber });
    await assert.rejects(service.revoke({ serialNumber: "0" }), keywardError("invalid_field"));
    await assert.rejects(service.revoke({ keyId: "\u0000abc" }), keywardError("invalid_field"));
    await service.revoke({ keyId: "stolen-laptop" });

    const output = await listKrl(service);
    assert.match(output, /# KRL version 2/);
    assert.match(output, /id: stolen-laptop/);
  });

  it("drops stored entries OpenSSH rejects", async (t) => {
    if (!requirePeer(t, "ssh-keygen")) return;
    const { service, barrier, logger } = await createSshFixture();
    await service.configureCa("user", { keyType: "ssh-ed25519" });
    // State as a mount kept it before revoke checked serials and key IDs.
    const broken: RevocationState = {
      version: 2,
      serials: [
        { serial: "0".repeat(16), caPublicKey: "" },
        { serial: "00000000000000aa", caPublicKey: "" },
      ],
      keyIds: ["\u0000abc", "kept"],
      publicKeys: [],
      retiredCaKeys: [],
      updatedAt: new Date(0).toISOString(),
    };
    await new SshStore(barrier, "ssh").put("revocation", broken);

    await service.revoke({ keyId: "another" });
    const krl = decodeKrl(await service.krl());
    assert.equal(krl.version, 3n);
    assert.deepEqual(krl.certificates.get("")?.serials, ["00000000000000aa"]);
    assert.deepEqual(krl.certificates.get("")?.keyIds, ["another", "kept"]);
    assert.match(logText(logger), /dropped stored SSH revocations/);
    assert.match(await listKrl(service), /id: kept/);
  });
});
