import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";
import { DEFAULT_TOKEN_TTL_SECONDS, MAX_TOKEN_TTL_SECONDS } from "../../src/auth/token-record.ts";
import { TOKEN_LENGTH, TokenStore } from "../../src/auth/token-store.ts";
import { MemoryBarrier } from "../helpers/memory-barrier.ts";
import { createTokenFixture, FixedClock, keywardError } from "./fixtures.ts";

const HOUR = 3600;

describe("root tokens", () => {
  it("never expire and hold only root", async () => {
    const { root, rootToken } = await createTokenFixture();
    assert.equal(rootToken.length, TOKEN_LENGTH);
    assert.match(rootToken, /^kw\.[A-Za-z0-9_-]{43}$/);
    assert.deepEqual(root.policies, ["root"]);
    assert.equal(root.record?.expiresAt, null);
    assert.equal(root.record?.renewable, false);
    assert.equal(root.record?.parentHash, "");
    assert.equal(root.record?.path, "auth/token/root");
  });

  it("accepts an operator-chosen token once", async () => {
    const { tokens } = await createTokenFixture();
    assert.equal(await tokens.createRootToken("dev-root"), "dev-root");
    assert.equal(await tokens.createRootToken("dev-root"), "dev-root");
    const identity = await tokens.authenticate("dev-root");
    assert.deepEqual(identity.policies, ["root"]);
    await assert.rejects(tokens.createRootToken(""), keywardError("invalid_field", "root_token"));
    await assert.rejects(
      tokens.createRootToken("x".repeat(513)),
      keywardError("invalid_field", "root_token"),
    );
  });

  it("reports whether a root token exists", async () => {
    const barrier = new MemoryBarrier();
    const tokens = new TokenStore(barrier);
    assert.equal(await tokens.hasRootToken(), false);
    await tokens.createRootToken();
    assert.equal(await tokens.hasRootToken(), true);
  });

  it("moves a legacy root token at first use", async () => {
    const barrier = new MemoryBarrier();
    const legacy = {
      hash: createHash("sha256").update("old-root", "utf8").digest("hex"),
      accessor: "legacy-accessor",
      createdAt: "2029-01-01T00:00:00.000Z",
    };
    await barrier.put("auth/token/root", Buffer.from(JSON.stringify(legacy)));
    const tokens = new TokenStore(barrier);
    assert.equal(await tokens.hasRootToken(), true);
    await assert.rejects(tokens.authenticate("not-the-root"), keywardError("permission_denied"));

    const identity = await tokens.authenticate("old-root");
    assert.equal(identity.accessor, "legacy-accessor");
    assert.deepEqual(identity.policies, ["root"]);
    assert.equal(barrier.values.has("auth/token/root"), false);
    assert.equal((await tokens.authenticate("old-root")).accessor, "legacy-accessor");
  });
});

describe("token storage", () => {
  it("stores HMACs, never tokens", async () => {
    const { barrier, tokens, root, rootToken, logger } = await createTokenFixture();
    const child = await tokens.create(root, { policies: ["app"] });
    const stored = [...barrier.values].map(
      ([key, value]) => key + Buffer.from(value).toString("latin1"),
    );
    for (const token of [rootToken, child.token]) {
      assert.ok(!stored.some((entry) => entry.includes(token)), "a token appears in storage");
      const sha256 = createHash("sha256").update(token).digest("hex");
      assert.ok(!stored.some((entry) => entry.includes(sha256)), "a plain hash appears in storage");
      assert.ok(!logger.text().includes(token), "a token appears in the log");
    }
    const ids = [...barrier.values.keys()].filter((key) => key.startsWith("auth/token/id/"));
    assert.equal(ids.length, 2);
    for (const key of ids) assert.match(key, /^auth\/token\/id\/[0-9a-f]{64}$/);
    assert.ok(barrier.values.has(`auth/token/accessor/${child.record.accessor}`));
    assert.ok(barrier.values.has(`auth/token/parent/${root.record?.hash}/${child.record.hash}`));
  });

  it("fails while sealed", async () => {
    const { barrier, tokens, rootToken } = await createTokenFixture();
    tokens.clearCache();
    barrier.sealed = true;
    await assert.rejects(tokens.authenticate(rootToken), keywardError("sealed"));
  });

  it("rejects malformed tokens", async () => {
    const { tokens } = await createTokenFixture();
    for (const token of ["", "kw.", "x".repeat(600), "kw.\u0000"]) {
      await assert.rejects(tokens.authenticate(token), keywardError("permission_denied"));
      assert.equal(await tokens.lookup(token), undefined);
    }
  });
});

describe("token creation", () => {
  it("applies the default TTL and policy", async () => {
    const { tokens, root, clock } = await createTokenFixture();
    const { record, warnings } = await tokens.create(root, { policies: ["b", "A", "b"] });
    assert.deepEqual(record.policies, ["a", "b", "default"]);
    assert.equal(record.creationTtl, DEFAULT_TOKEN_TTL_SECONDS);
    assert.equal(record.expiresAt, clock.millis() + DEFAULT_TOKEN_TTL_SECONDS * 1000);
    assert.equal(record.renewable, true);
    assert.equal(record.displayName, "token");
    assert.equal(record.path, "auth/token/create");
    assert.equal(record.parentHash, root.record?.hash);
    assert.deepEqual(warnings, []);
  });

  it("inherits root without expiry", async () => {
    const { tokens, root } = await createTokenFixture();
    const { record } = await tokens.create(root, {});
    assert.deepEqual(record.policies, ["root"]);
    assert.equal(record.expiresAt, null);
    assert.equal(record.renewable, false);
  });

  it("caps the TTL at the maximum", async () => {
    const { tokens, root } = await createTokenFixture();
    const { record, warnings } = await tokens.create(root, { policies: ["a"], ttl: 1000 * HOUR });
    assert.equal(record.creationTtl, MAX_TOKEN_TTL_SECONDS);
    assert.equal(warnings.length, 1);
    const explicit = await tokens.create(root, {
      policies: ["a"],
      ttl: 2 * HOUR,
      explicitMaxTtl: HOUR,
    });
    assert.equal(explicit.record.creationTtl, HOUR);
  });

  it("names tokens as Vault does", async () => {
    const { tokens, root } = await createTokenFixture();
    const { record } = await tokens.create(root, { policies: ["a"], displayName: "ci job/7" });
    assert.equal(record.displayName, "token-ci-job-7");
  });

  it("keeps child policies within the parent's", async () => {
    const { tokens, root } = await createTokenFixture();
    const parent = await tokens.create(root, { policies: ["a"] });
    const caller = await tokens.authenticate(parent.token);

    const subset = await tokens.create(caller, { policies: ["a"] });
    assert.deepEqual(subset.record.policies, ["a", "default"]);
    const inherited = await tokens.create(caller, { noDefaultPolicy: true });
    assert.deepEqual(inherited.record.policies, ["a"]);
    const onlyDefault = await tokens.create(caller, { policies: ["default"] });
    assert.deepEqual(onlyDefault.record.policies, ["default"]);

    await assert.rejects(
      tokens.create(caller, { policies: ["b"] }),
      keywardError("permission_denied", "policies"),
    );
    await assert.rejects(
      tokens.create(caller, { policies: ["root"] }),
      keywardError("permission_denied", "policies"),
    );
  });

  it("reserves options to root callers", async () => {
    const { tokens, root } = await createTokenFixture();
    const caller = await tokens.authenticate(
      (await tokens.create(root, { policies: ["a"] })).token,
    );
    await assert.rejects(
      tokens.create(caller, { id: "chosen" }),
      keywardError("permission_denied", "id"),
    );
    await assert.rejects(
      tokens.create(caller, { period: 60 }),
      keywardError("permission_denied", "period"),
    );
    await assert.rejects(
      tokens.create(caller, { noParent: true }),
      keywardError("permission_denied", "no_parent"),
    );
    const orphanRoute = await tokens.create(caller, { noParent: true }, { orphan: true });
    assert.equal(orphanRoute.record.parentHash, "");

    const chosen = await tokens.create(root, { id: "chosen", policies: ["a"] });
    assert.equal(chosen.token, "chosen");
    assert.equal((await tokens.authenticate("chosen")).accessor, chosen.record.accessor);
    await assert.rejects(
      tokens.create(root, { id: "chosen" }),
      keywardError("already_exists", "id"),
    );
    const orphan = await tokens.create(root, { noParent: true, policies: ["a"] });
    assert.equal(orphan.record.parentHash, "");
  });

  it("creates orphans on request", async () => {
    const { tokens, root } = await createTokenFixture();
    const caller = await tokens.authenticate(
      (await tokens.create(root, { policies: ["a"] })).token,
    );
    const orphan = await tokens.create(caller, {}, { orphan: true });
    assert.equal(orphan.record.parentHash, "");
    assert.equal(orphan.record.path, "auth/token/create-orphan");
    await tokens.revoke(caller.record!);
    assert.equal((await tokens.authenticate(orphan.token)).accessor, orphan.record.accessor);
  });
});

describe("token expiry", () => {
  it("rejects and revokes expired tokens", async () => {
    const { tokens, root, clock, logger } = await createTokenFixture();
    const { token, record } = await tokens.create(root, { policies: ["a"], ttl: 60 });
    clock.advanceSeconds(59);
    assert.equal((await tokens.authenticate(token)).accessor, record.accessor);
    clock.advanceSeconds(1);
    await assert.rejects(tokens.authenticate(token), keywardError("permission_denied"));
    assert.deepEqual(await tokens.listAccessors(), [root.accessor].sort());
    assert.ok(logger.lines.some((line) => JSON.stringify(line).includes('"reason":"expired"')));
  });

  it("ends children with their parent", async () => {
    const { tokens, root, clock } = await createTokenFixture();
    const parent = await tokens.create(root, { policies: ["a"], ttl: 60 });
    const caller = await tokens.authenticate(parent.token);
    const child = await tokens.create(caller, { ttl: 600 });
    clock.advanceSeconds(61);
    await assert.rejects(tokens.authenticate(child.token), keywardError("permission_denied"));
    await assert.rejects(tokens.authenticate(parent.token), keywardError("permission_denied"));
  });

  it("sweeps expired tokens", async () => {
    const { tokens, root, clock } = await createTokenFixture();
    await tokens.create(root, { policies: ["a"], ttl: 60 });
    const kept = await tokens.create(root, { policies: ["a"], ttl: 600 });
    clock.advanceSeconds(120);
    assert.equal(await tokens.revokeExpired(), 1);
    assert.deepEqual(await tokens.listAccessors(), [root.accessor, kept.record.accessor].sort());
  });
});

describe("token renewal", () => {
  it("extends up to the maximum TTL", async () => {
    const { tokens, root, clock } = await createTokenFixture();
    const { token, record } = await tokens.create(root, {
      policies: ["a"],
      ttl: 60,
      explicitMaxTtl: 100,
    });
    clock.advanceSeconds(50);
    const first = await tokens.renew(record);
    assert.equal(first.record.expiresAt, record.createdAt + 100_000);
    assert.equal(first.warnings.length, 1);
    assert.equal(first.record.lastRenewedAt, clock.millis());
    clock.advanceSeconds(49);
    await tokens.authenticate(token);
    clock.advanceSeconds(1);
    await assert.rejects(tokens.authenticate(token), keywardError("permission_denied"));
  });

  it("uses the increment or the creation TTL", async () => {
    const { tokens, root, clock } = await createTokenFixture();
    const { record } = await tokens.create(root, { policies: ["a"], ttl: 600 });
    clock.advanceSeconds(100);
    const renewed = await tokens.renew(record);
    assert.equal(renewed.record.expiresAt, clock.millis() + 600_000);
    const shorter = await tokens.renew(record, 30);
    assert.equal(shorter.record.expiresAt, clock.millis() + 30_000);
    assert.deepEqual(shorter.warnings, []);
  });

  it("renews periodic tokens by one period", async () => {
    const { tokens, root, clock } = await createTokenFixture();
    const { token, record } = await tokens.create(root, { policies: ["a"], period: 10 * HOUR });
    assert.equal(record.expiresAt, clock.millis() + 10 * HOUR * 1000);
    // Renew past the system maximum, which does not apply to periodic tokens.
    for (let elapsed = 0; elapsed <= MAX_TOKEN_TTL_SECONDS; elapsed += 9 * HOUR) {
      clock.advanceSeconds(9 * HOUR);
      const renewed = await tokens.renew(record, 60);
      assert.equal(renewed.record.expiresAt, clock.millis() + 10 * HOUR * 1000);
      assert.deepEqual(renewed.warnings, []);
    }
    assert.equal((await tokens.authenticate(token)).accessor, record.accessor);
  });

  it("refuses tokens that cannot renew", async () => {
    const { tokens, root } = await createTokenFixture();
    await assert.rejects(tokens.renew(root.record!), keywardError("invalid_request"));
    const fixed = await tokens.create(root, { policies: ["a"], renewable: false });
    await assert.rejects(tokens.renew(fixed.record), keywardError("invalid_request"));
    await tokens.revoke(fixed.record);
    await assert.rejects(tokens.renew(fixed.record), keywardError("permission_denied"));
  });
});

describe("token use limits", () => {
  it("revokes at the last use", async () => {
    const { tokens, root } = await createTokenFixture();
    const { token, record } = await tokens.create(root, { policies: ["a"], numUses: 2 });
    assert.equal((await tokens.lookup(token))?.record?.numUses, 2);
    assert.equal((await tokens.authenticate(token)).record?.numUses, 1);
    const last = await tokens.authenticate(token);
    assert.equal(last.record?.numUses, 0);
    assert.equal(last.accessor, record.accessor);
    await assert.rejects(tokens.authenticate(token), keywardError("permission_denied"));
    await assert.rejects(tokens.resolveAccessor(record.accessor), keywardError("invalid_field"));
  });

  it("grants the last use once", async () => {
    const { tokens, root } = await createTokenFixture();
    const { token } = await tokens.create(root, { policies: ["a"], numUses: 1 });
    const results = await Promise.allSettled([
      tokens.authenticate(token),
      tokens.authenticate(token),
      tokens.authenticate(token),
    ]);
    assert.equal(results.filter((result) => result.status === "fulfilled").length, 1);
  });

  it("forbids children of limited tokens", async () => {
    const { tokens, root } = await createTokenFixture();
    const { token } = await tokens.create(root, { policies: ["a"], numUses: 3 });
    const caller = await tokens.authenticate(token);
    await assert.rejects(tokens.create(caller, {}), keywardError("permission_denied"));
    const lastUse = await tokens.authenticate(
      (await tokens.create(root, { policies: ["a"], numUses: 1 })).token,
    );
    await assert.rejects(tokens.create(lastUse, {}), keywardError("permission_denied"));
  });

  it("counts no use on a rejected request", async () => {
    const { tokens } = await createTokenFixture();
    const issued = await tokens.issueLoginToken({
      policies: ["a", "default"],
      meta: {},
      displayName: "approle",
      path: "auth/approle/login",
      ttl: 0,
      maxTtl: 0,
      explicitMaxTtl: 0,
      period: 0,
      numUses: 2,
      boundCidrs: ["10.0.0.0/8"],
    });
    await assert.rejects(
      tokens.authenticate(issued.token, { sourceIp: "192.0.2.1" }),
      keywardError("permission_denied"),
    );
    await assert.rejects(tokens.authenticate(issued.token), keywardError("permission_denied"));
    assert.equal((await tokens.lookup(issued.token))?.record?.numUses, 2);
    const used = await tokens.authenticate(issued.token, { sourceIp: "::ffff:10.1.2.3" });
    assert.equal(used.record?.numUses, 1);
  });
});

describe("token revocation", () => {
  it("revokes the whole tree", async () => {
    const { tokens, root } = await createTokenFixture();
    const a = await tokens.create(root, { policies: ["a"] });
    const b = await tokens.create(await tokens.authenticate(a.token), {});
    const c = await tokens.create(await tokens.authenticate(b.token), {});
    const sibling = await tokens.create(root, { policies: ["a"] });

    await tokens.revoke(a.record);
    for (const token of [a.token, b.token, c.token]) {
      await assert.rejects(tokens.authenticate(token), keywardError("permission_denied"));
    }
    await tokens.authenticate(sibling.token);
    assert.deepEqual(await tokens.listAccessors(), [root.accessor, sibling.record.accessor].sort());
  });

  it("orphans children on request", async () => {
    const { tokens, root, barrier } = await createTokenFixture();
    const a = await tokens.create(root, { policies: ["a"] });
    const b = await tokens.create(await tokens.authenticate(a.token), {});
    const c = await tokens.create(await tokens.authenticate(b.token), {});

    await tokens.revokeOrphan(a.record);
    await assert.rejects(tokens.authenticate(a.token), keywardError("permission_denied"));
    const orphan = await tokens.authenticate(b.token);
    assert.equal(orphan.record?.parentHash, "");
    assert.equal((await tokens.authenticate(c.token)).record?.parentHash, b.record.hash);
    assert.ok(![...barrier.values.keys()].some((key) => key.includes(`parent/${a.record.hash}`)));

    // The orphan survives its former grandparent too.
    await tokens.revoke(root.record!);
    await tokens.authenticate(b.token);
  });

  it("finds tokens by accessor", async () => {
    const { tokens, root } = await createTokenFixture();
    const a = await tokens.create(root, { policies: ["a"] });
    const found = await tokens.resolveAccessor(a.record.accessor);
    assert.equal(found.hash, a.record.hash);
    for (const accessor of ["nope", "a//b", "../x", ""]) {
      await assert.rejects(
        tokens.resolveAccessor(accessor),
        keywardError("invalid_field", "accessor"),
      );
    }
    await tokens.revoke(found);
    await assert.rejects(tokens.resolveAccessor(a.record.accessor), keywardError("invalid_field"));
  });

  it("allows revoking root tokens", async () => {
    const { tokens, root, rootToken } = await createTokenFixture();
    await tokens.revoke(root.record!);
    await assert.rejects(tokens.authenticate(rootToken), keywardError("permission_denied"));
    assert.equal(await tokens.hasRootToken(), false);
  });

  it("keeps records when a write fails", async () => {
    const { tokens, root, barrier } = await createTokenFixture();
    const a = await tokens.create(root, { policies: ["a"], numUses: 3 });
    barrier.failWrites = true;
    await assert.rejects(tokens.revoke(a.record), keywardError("storage_failure"));
    await assert.rejects(tokens.authenticate(a.token), keywardError("storage_failure"));
    barrier.failWrites = false;
    assert.equal((await tokens.authenticate(a.token)).record?.numUses, 2);
  });
});

describe("token clock", () => {
  it("uses the clock it is given", async () => {
    const clock = new FixedClock(Date.UTC(2040, 5, 1));
    const tokens = new TokenStore(new MemoryBarrier(), { clock: clock.now });
    const root = await tokens.authenticate(await tokens.createRootToken());
    assert.equal(root.record?.createdAt, Date.UTC(2040, 5, 1));
    assert.equal(tokens.currentTime(), Date.UTC(2040, 5, 1));
  });
});
