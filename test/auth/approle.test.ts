import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AppRoleBackend } from "../../src/auth/approle/backend.ts";
import { TokenStore } from "../../src/auth/token-store.ts";
import { KeywardError } from "../../src/errors.ts";
import type { StorageWriter } from "../../src/storage/storage.ts";
import { MemoryBarrier } from "../helpers/memory-barrier.ts";
import { FixedClock, keywardError, RecordingLogger } from "./fixtures.ts";

/** A MemoryBarrier whose writes under one prefix fail while `failPrefix` is set. */
class PrefixFailingBarrier extends MemoryBarrier {
  failPrefix: string | undefined;

  override async put(key: string, value: Uint8Array): Promise<void> {
    if (this.failPrefix !== undefined && key.startsWith(this.failPrefix)) {
      throw new KeywardError("storage_failure", "storage write failed (test switch)");
    }
    return super.put(key, value);
  }

  override transaction<T>(work: (tx: StorageWriter) => Promise<T>): Promise<T> {
    return super.transaction((tx) =>
      work({
        ...tx,
        put: (key, value) => {
          if (this.failPrefix !== undefined && key.startsWith(this.failPrefix)) {
            throw new KeywardError("storage_failure", "storage write failed (test switch)");
          }
          return tx.put(key, value);
        },
      }),
    );
  }
}

const CLIENT = "192.0.2.10";

async function setup() {
  const barrier = new PrefixFailingBarrier();
  const clock = new FixedClock();
  const logger = new RecordingLogger();
  const tokens = new TokenStore(barrier, { clock: clock.now, logger });
  const approle = new AppRoleBackend(barrier, tokens, {
    clock: clock.now,
    logger,
    rateLimit: { clock: clock.millis },
  });
  const root = await tokens.authenticate(await tokens.createRootToken());
  return { barrier, clock, logger, tokens, approle, root };
}

async function roleWithSecret(approle: AppRoleBackend, settings = {}, request = {}) {
  const role = await approle.writeRole("ci", { tokenPolicies: ["deploy"], ...settings });
  const { secretId, record } = await approle.generateSecretId("ci", request);
  return { role, secretId, record };
}

describe("AppRole roles", () => {
  it("creates with defaults and a role ID", async () => {
    const { approle } = await setup();
    const role = await approle.writeRole("ci", { tokenPolicies: ["Deploy", "read,write"] });
    assert.match(role.roleId, /^[0-9a-f-]{36}$/);
    assert.equal(role.bindSecretId, true);
    assert.deepEqual(role.tokenPolicies, ["deploy", "read", "write"]);
    assert.deepEqual(await approle.readRole("ci"), role);
    assert.deepEqual(await approle.listRoles(), ["ci"]);
  });

  it("updates only the given fields", async () => {
    const { approle } = await setup();
    const created = await approle.writeRole("ci", { tokenPolicies: ["a"], tokenTtl: 600 });
    const updated = await approle.writeRole("ci", { secretIdNumUses: 5 });
    assert.equal(updated.roleId, created.roleId);
    assert.deepEqual(updated.tokenPolicies, ["a"]);
    assert.equal(updated.tokenTtl, 600);
    assert.equal(updated.secretIdNumUses, 5);
  });

  const invalid: [string, object, string, string | undefined][] = [
    ["fail root policy", { tokenPolicies: ["root"] }, "invalid_field", "token_policies"],
    ["fail ttl above max", { tokenTtl: 600, tokenMaxTtl: 60 }, "invalid_field", "token_ttl"],
    ["fail no constraint", { bindSecretId: false }, "invalid_request", undefined],
    ["fail bad policy name", { tokenPolicies: ["a b"] }, "invalid_field", "token_policies"],
  ];
  for (const [name, settings, code, field] of invalid) {
    it(name, async () => {
      const { approle } = await setup();
      await assert.rejects(approle.writeRole("ci", settings), keywardError(code, field));
      await assert.rejects(approle.readRole("ci"), keywardError("not_found"));
    });
  }

  it("fail bad role names", async () => {
    const { approle } = await setup();
    for (const name of ["", "a/b", "x".repeat(257), "ci\u0000"]) {
      await assert.rejects(approle.writeRole(name, {}), keywardError("invalid_field", "role_name"));
    }
  });

  it("deletes a role with its secret IDs", async () => {
    const { approle, barrier } = await setup();
    const { role, secretId } = await roleWithSecret(approle);
    await approle.deleteRole("ci");
    await approle.deleteRole("ci");
    await assert.rejects(approle.readRole("ci"), keywardError("not_found"));
    assert.deepEqual(
      [...barrier.values.keys()].filter(
        (key) => key.startsWith("auth/approle/") && !key.endsWith("hmac-key"),
      ),
      [],
    );
    await assert.rejects(
      approle.login({ roleId: role.roleId, secretId }, CLIENT),
      keywardError("permission_denied"),
    );
  });

  it("replaces the role ID", async () => {
    const { approle } = await setup();
    const { role, secretId } = await roleWithSecret(approle);
    await approle.setRoleId("ci", "custom-role-id");
    assert.equal(await approle.readRoleId("ci"), "custom-role-id");
    await assert.rejects(
      approle.login({ roleId: role.roleId, secretId }, CLIENT),
      keywardError("permission_denied"),
    );
    await approle.login({ roleId: "custom-role-id", secretId }, CLIENT);

    await approle.writeRole("other", {});
    await assert.rejects(
      approle.setRoleId("other", "custom-role-id"),
      keywardError("already_exists", "role_id"),
    );
  });
});

describe("AppRole secret IDs", () => {
  it("issues, finds and destroys them", async () => {
    const { approle } = await setup();
    const { secretId, record } = await roleWithSecret(approle, {}, { metadata: { team: "ops" } });
    assert.match(secretId, /^[0-9a-f-]{36}$/);
    assert.deepEqual(await approle.listSecretIdAccessors("ci"), [record.accessor]);
    assert.deepEqual((await approle.lookupSecretId("ci", secretId)).metadata, { team: "ops" });
    assert.equal((await approle.lookupSecretIdAccessor("ci", record.accessor)).hmac, record.hmac);

    for (const accessor of ["a//b", "x".repeat(200), "../ci"]) {
      await assert.rejects(
        approle.lookupSecretIdAccessor("ci", accessor),
        keywardError("not_found"),
      );
      await approle.destroySecretIdAccessor("ci", accessor);
    }
    await approle.destroySecretIdAccessor("ci", record.accessor);
    await assert.rejects(approle.lookupSecretId("ci", secretId), keywardError("not_found"));
    assert.deepEqual(await approle.listSecretIdAccessors("ci"), []);

    const second = await approle.generateSecretId("ci", {});
    await approle.destroySecretId("ci", second.secretId);
    await approle.destroySecretId("ci", second.secretId);
    await assert.rejects(
      approle.lookupSecretIdAccessor("ci", second.record.accessor),
      keywardError("not_found"),
    );
  });

  it("stores only HMACs", async () => {
    const { approle, barrier } = await setup();
    const { role, secretId } = await roleWithSecret(approle);
    const keys = [...barrier.values.keys()].join("\n");
    assert.ok(!keys.includes(secretId));
    assert.ok(!keys.includes(role.roleId));
    for (const value of barrier.values.values()) {
      assert.ok(!Buffer.from(value).toString("latin1").includes(secretId));
    }
  });

  const limits: [string, object, object, string][] = [
    ["fail uses above role", { secretIdNumUses: 3 }, { numUses: 4 }, "num_uses"],
    ["fail unlimited uses", { secretIdNumUses: 3 }, { numUses: 0 }, "num_uses"],
    ["fail ttl above role", { secretIdTtl: 60 }, { ttl: 61 }, "ttl"],
    [
      "fail cidr outside role",
      { secretIdBoundCidrs: ["10.0.0.0/8"] },
      { cidrList: ["11.0.0.0/8"] },
      "cidr_list",
    ],
    [
      "fail token cidr outside role",
      { tokenBoundCidrs: ["10.0.0.0/8"] },
      { tokenBoundCidrs: ["10.0.0.0/7"] },
      "token_bound_cidrs",
    ],
  ];
  for (const [name, roleSettings, request, field] of limits) {
    it(name, async () => {
      const { approle } = await setup();
      await approle.writeRole("ci", roleSettings);
      await assert.rejects(
        approle.generateSecretId("ci", request),
        keywardError("invalid_field", field),
      );
    });
  }

  it("takes the role's limits by default", async () => {
    const { approle, clock } = await setup();
    await approle.writeRole("ci", { secretIdNumUses: 3, secretIdTtl: 60 });
    const { record } = await approle.generateSecretId("ci", { numUses: 2 });
    assert.equal(record.numUses, 2);
    assert.equal(record.ttl, 60);
    assert.equal(record.expiresAt, clock.millis() + 60_000);
  });
});

describe("AppRole login", () => {
  it("issues a token for the role", async () => {
    const { approle, tokens, clock } = await setup();
    const { role, secretId } = await roleWithSecret(
      approle,
      { tokenTtl: 600, tokenMaxTtl: 1200, tokenNumUses: 5 },
      { metadata: { team: "ops" } },
    );
    const issued = await approle.login({ roleId: role.roleId, secretId }, CLIENT);
    assert.deepEqual(issued.record.policies, ["default", "deploy"]);
    assert.deepEqual(issued.record.meta, { team: "ops", role_name: "ci" });
    assert.equal(issued.record.parentHash, "");
    assert.equal(issued.record.path, "auth/approle/login");
    assert.equal(issued.record.creationTtl, 600);
    assert.equal(issued.record.numUses, 5);
    const identity = await tokens.authenticate(issued.token);
    assert.equal(identity.accessor, issued.record.accessor);

    // Renewal stops at the role's max TTL.
    clock.advanceSeconds(500);
    const renewed = await tokens.renew(issued.record, 1000);
    assert.equal(renewed.record.expiresAt, issued.record.createdAt + 1_200_000);
    assert.equal(renewed.warnings.length, 1);
  });

  it("counts secret ID uses", async () => {
    const { approle } = await setup();
    const { role, secretId, record } = await roleWithSecret(approle, {}, { numUses: 2 });
    await approle.login({ roleId: role.roleId, secretId }, CLIENT);
    assert.equal((await approle.lookupSecretId("ci", secretId)).numUses, 1);
    await approle.login({ roleId: role.roleId, secretId }, CLIENT);
    await assert.rejects(
      approle.lookupSecretIdAccessor("ci", record.accessor),
      keywardError("not_found"),
    );
    await assert.rejects(
      approle.login({ roleId: role.roleId, secretId }, CLIENT),
      keywardError("permission_denied"),
    );
  });

  it("rejects expired secret IDs", async () => {
    const { approle, clock } = await setup();
    const { role, secretId } = await roleWithSecret(approle, {}, { ttl: 60 });
    clock.advanceSeconds(59);
    await approle.login({ roleId: role.roleId, secretId }, CLIENT);
    clock.advanceSeconds(1);
    await assert.rejects(
      approle.login({ roleId: role.roleId, secretId }, CLIENT),
      keywardError("permission_denied"),
    );
    assert.equal(await approle.tidy(), 1);
    assert.deepEqual(await approle.listSecretIdAccessors("ci"), []);
  });

  it("enforces CIDR bindings", async () => {
    const { approle, tokens } = await setup();
    const { role, secretId } = await roleWithSecret(
      approle,
      { secretIdBoundCidrs: ["192.0.2.0/24", "2001:db8::/32"] },
      { cidrList: ["192.0.2.0/28"], tokenBoundCidrs: ["192.0.2.0/28"] },
    );
    await assert.rejects(
      approle.login({ roleId: role.roleId, secretId }, "192.0.2.100"),
      keywardError("permission_denied"),
    );
    await assert.rejects(
      approle.login({ roleId: role.roleId, secretId }, "2001:db8::1"),
      keywardError("permission_denied"),
    );
    const issued = await approle.login({ roleId: role.roleId, secretId }, "::ffff:192.0.2.10");
    assert.deepEqual(issued.record.boundCidrs, ["192.0.2.0/28"]);
    await assert.rejects(
      tokens.authenticate(issued.token, { sourceIp: "192.0.2.100" }),
      keywardError("permission_denied"),
    );
    await tokens.authenticate(issued.token, { sourceIp: "192.0.2.10" });
  });

  it("logs in without a secret ID when unbound", async () => {
    const { approle } = await setup();
    const role = await approle.writeRole("ci", {
      bindSecretId: false,
      tokenBoundCidrs: ["192.0.2.0/24"],
    });
    const issued = await approle.login({ roleId: role.roleId }, CLIENT);
    assert.deepEqual(issued.record.boundCidrs, ["192.0.2.0/24"]);
    await assert.rejects(
      approle.login({ roleId: role.roleId }, "198.51.100.1"),
      keywardError("permission_denied"),
    );
  });

  it("changes nothing on failure", async () => {
    const { approle, tokens, barrier, logger } = await setup();
    const { role, secretId } = await roleWithSecret(
      approle,
      { secretIdBoundCidrs: ["192.0.2.0/24"] },
      { numUses: 3 },
    );
    const accessors = await tokens.listAccessors();
    const writes = barrier.writes;
    const attempts: [string, string | undefined, string][] = [
      [role.roleId, "wrong-secret", CLIENT],
      [role.roleId, undefined, CLIENT],
      [role.roleId, secretId, "198.51.100.1"],
      ["wrong-role", secretId, CLIENT],
    ];
    for (const [roleId, secret, address] of attempts) {
      await assert.rejects(
        approle.login({ roleId, secretId: secret }, address),
        (error: unknown) =>
          error instanceof KeywardError &&
          error.code === "permission_denied" &&
          error.message === "invalid role_id or secret_id",
      );
    }
    assert.equal(barrier.writes, writes);
    assert.deepEqual(await tokens.listAccessors(), accessors);
    assert.equal((await approle.lookupSecretId("ci", secretId)).numUses, 3);
    assert.ok(!logger.text().includes(secretId));
    assert.ok(logger.text().includes("unknown secret_id"));
  });

  it("revokes the token when a use cannot be stored", async () => {
    const { approle, tokens, barrier } = await setup();
    const { role, secretId } = await roleWithSecret(approle, {}, { numUses: 2 });
    const accessors = await tokens.listAccessors();
    barrier.failPrefix = "auth/approle/secret-id/";
    await assert.rejects(
      approle.login({ roleId: role.roleId, secretId }, CLIENT),
      keywardError("storage_failure"),
    );
    assert.deepEqual(await tokens.listAccessors(), accessors);
    barrier.failPrefix = undefined;
    assert.equal((await approle.lookupSecretId("ci", secretId)).numUses, 2);
  });

  it("rate limits failures per address", async () => {
    const { approle, clock } = await setup();
    const { role, secretId } = await roleWithSecret(approle);
    const other = await approle.writeRole("other", {});
    for (let i = 0; i < 10; i++) {
      await assert.rejects(
        approle.login({ roleId: other.roleId, secretId: `guess-${i}` }, CLIENT),
        keywardError("permission_denied"),
      );
    }
    // The right credentials from the same address wait too.
    await assert.rejects(
      approle.login({ roleId: role.roleId, secretId }, CLIENT),
      keywardError("rate_limited"),
    );
    await approle.login({ roleId: role.roleId, secretId }, "192.0.2.11");
    clock.advanceSeconds(6);
    await approle.login({ roleId: role.roleId, secretId }, CLIENT);
  });

  it("rate limits failures per role ID", async () => {
    const { approle } = await setup();
    const { role, secretId } = await roleWithSecret(approle);
    for (let i = 0; i < 10; i++) {
      await assert.rejects(
        approle.login({ roleId: role.roleId, secretId: `guess-${i}` }, `198.51.100.${i}`),
        keywardError("permission_denied"),
      );
    }
    await assert.rejects(
      approle.login({ roleId: role.roleId, secretId }, "203.0.113.1"),
      keywardError("rate_limited"),
    );
  });
});
