import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { decodeCertificateLine } from "../../../src/engines/ssh/certificate.ts";
import { isValidKeyId, isValidPrincipal, MAX_PRINCIPALS } from "../../../src/engines/ssh/names.ts";
import { buildRole } from "../../../src/engines/ssh/roles.ts";
import { SshStore } from "../../../src/engines/ssh/store.ts";
import { requirePeer } from "../../helpers/peers.ts";
import {
  clientKey,
  createSshFixture,
  keywardError,
  roleWrite,
  run,
  tempFiles,
  USER_ROLE,
} from "./fixtures.ts";

const principals = (count: number) =>
  Array.from({ length: count }, (_, index) => `u${index}`).join(",");

const TEMPLATE_ROLE = {
  key_type: "ca",
  allow_user_certificates: true,
  allowed_users: "*",
  default_user: "{{identity.entity.metadata.user}}",
  default_user_template: true,
} as const;

async function namesFixture() {
  const fixture = await createSshFixture();
  await fixture.service.configureCa("user", { keyType: "ssh-ed25519" });
  await fixture.service.writeRole("any", roleWrite({ ...USER_ROLE, allowed_users: "*" }));
  await fixture.service.writeRole("templated", roleWrite(TEMPLATE_ROLE));
  return fixture;
}

describe("SSH certificate names", () => {
  for (const [name, principal, valid] of [
    ["ok user name", "alice", true],
    ["ok host name", "web-1.example.com", true],
    ["ok name with at sign", "alice@EXAMPLE.COM", true],
    ["ok 255 characters", "a".repeat(255), true],
    ["fail empty", "", false],
    ["fail space", "alice smith", false],
    ["fail comma", "root,admin", false],
    ["fail NUL byte", "a\u0000b", false],
    ["fail tab", "a\tb", false],
    ["fail 256 characters", "a".repeat(256), false],
  ] as const) {
    it(`${name} principal`, () => {
      assert.equal(isValidPrincipal(principal), valid);
    });
  }

  for (const [name, keyId, valid] of [
    ["ok plain", "laptop-7", true],
    ["ok 1024 bytes", "k".repeat(1024), true],
    ["fail NUL byte", "\u0000abc", false],
    ["fail newline", "a\nb", false],
    ["fail 1025 bytes", "k".repeat(1025), false],
    ["fail multibyte over limit", "é".repeat(513), false],
  ] as const) {
    it(`${name} key ID`, () => {
      assert.equal(isValidKeyId(keyId), valid);
    });
  }

  for (const [name, defaultUser, template] of [
    ["fail NUL in default user", "a\u0000b", false],
    ["fail space in default user", "a b", false],
    ["fail comma in default user", "root,admin", false],
    ["fail space around template", "{{identity.entity.name}} x", true],
  ] as const) {
    it(name, () => {
      assert.throws(
        () =>
          buildRole(
            roleWrite({ ...USER_ROLE, default_user: defaultUser, default_user_template: template }),
          ),
        keywardError("invalid_field", "default_user"),
      );
    });
  }

  it("fail key_id_format with control character", () => {
    assert.throws(
      () => buildRole(roleWrite({ ...USER_ROLE, key_id_format: "id-\u0001-{{role_name}}" })),
      keywardError("invalid_field", "key_id_format"),
    );
  });

  it("rejects more than 256 principals", async () => {
    const { service } = await namesFixture();
    await assert.rejects(
      service.sign("any", {
        publicKey: clientKey().line,
        validPrincipals: principals(MAX_PRINCIPALS + 1),
      }),
      keywardError("invalid_field", "valid_principals"),
    );
  });

  for (const [name, value] of [
    ["fail NUL from metadata", "a\u0000b"],
    ["fail space from metadata", "x y"],
    ["fail comma from metadata", "root,admin"],
  ] as const) {
    it(name, async () => {
      const { service } = await namesFixture();
      await assert.rejects(
        service.sign(
          "templated",
          { publicKey: clientKey().line },
          { displayName: "t", metadata: { user: value } },
        ),
        keywardError("invalid_field", "default_user"),
      );
    });
  }

  it("rejects a stored invalid default user", async () => {
    const { service, barrier } = await namesFixture();
    // A role stored before role writes checked default_user.
    const role = { ...buildRole(roleWrite(USER_ROLE)), defaultUser: "a\u0000b" };
    await new SshStore(barrier, "ssh").put("roles/old", role);
    await assert.rejects(
      service.sign("old", { publicKey: clientKey().line }),
      keywardError("invalid_field", "default_user"),
    );
  });
});

describe("ssh-keygen reads principal limits", () => {
  const files = tempFiles();
  after(() => files.cleanup());

  it("ok 256 principals in ssh-keygen", async (t) => {
    if (!requirePeer(t, "ssh-keygen")) return;
    const { service } = await namesFixture();
    const signed = await service.sign("any", {
      publicKey: clientKey().line,
      validPrincipals: principals(MAX_PRINCIPALS),
    });
    const listed = run("ssh-keygen", ["-L", "-f", files.write("many-cert.pub", signed.signedKey)]);
    assert.equal(listed.status, 0, listed.output);
    assert.match(listed.output, /^ {16}u0$/m);
    assert.match(listed.output, /^ {16}u255$/m);
  });

  it("ok templated principal in ssh-keygen", async (t) => {
    if (!requirePeer(t, "ssh-keygen")) return;
    const { service } = await namesFixture();
    const signed = await service.sign(
      "templated",
      { publicKey: clientKey().line },
      { displayName: "t", metadata: { user: "deploy" } },
    );
    assert.deepEqual(decodeCertificateLine(signed.signedKey, "k").principals, ["deploy"]);
    const listed = run("ssh-keygen", ["-L", "-f", files.write("tpl-cert.pub", signed.signedKey)]);
    assert.equal(listed.status, 0, listed.output);
    assert.match(listed.output, /Principals: \n {16}deploy\n/);
  });
});
