import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Identity } from "../../src/auth/token-store.ts";
import { createTokenFixture, keywardError } from "./fixtures.ts";

/** Issues a token bound to 10.0.0.0/8 with a policy set that may create tokens, and authenticates it from inside. */
async function boundParent() {
  const fixture = await createTokenFixture();
  const issued = await fixture.tokens.issueLoginToken({
    policies: ["creator", "default"],
    meta: {},
    displayName: "approle",
    path: "auth/approle/login",
    ttl: 0,
    maxTtl: 0,
    explicitMaxTtl: 0,
    period: 0,
    numUses: 0,
    boundCidrs: ["10.0.0.0/8"],
  });
  const parent: Identity = await fixture.tokens.authenticate(issued.token, {
    sourceIp: "10.1.2.3",
  });
  return { ...fixture, parent };
}

// A token bound to CIDR blocks must not mint a token that works from
// outside them: its children and orphans keep the binding.
describe("tokens created by a CIDR-bound token", () => {
  it("binds a child to the parent's blocks", async () => {
    const { tokens, parent } = await boundParent();
    const child = await tokens.create(parent, {});
    assert.deepEqual(child.record.boundCidrs, ["10.0.0.0/8"]);
    await assert.rejects(
      tokens.authenticate(child.token, { sourceIp: "192.0.2.1" }),
      keywardError("permission_denied"),
    );
    const inside = await tokens.authenticate(child.token, { sourceIp: "10.9.9.9" });
    assert.equal(inside.accessor, child.record.accessor);
  });

  it("binds an orphan to the parent's blocks", async () => {
    const { tokens, parent } = await boundParent();
    const orphan = await tokens.create(parent, {}, { orphan: true });
    assert.equal(orphan.record.parentHash, "");
    assert.deepEqual(orphan.record.boundCidrs, ["10.0.0.0/8"]);
    await assert.rejects(
      tokens.authenticate(orphan.token, { sourceIp: "192.0.2.1" }),
      keywardError("permission_denied"),
    );
  });

  it("keeps a role's narrower blocks", async () => {
    const { tokens, parent } = await boundParent();
    await tokens.roles.write("narrow", { tokenBoundCidrs: ["10.1.0.0/16"] });
    const child = await tokens.create(parent, {}, { roleName: "narrow" });
    assert.deepEqual(child.record.boundCidrs, ["10.1.0.0/16"]);
  });

  it("rejects a role's wider blocks", async () => {
    const { tokens, parent } = await boundParent();
    await tokens.roles.write("wide", { tokenBoundCidrs: ["0.0.0.0/0"], orphan: true });
    await assert.rejects(
      tokens.create(parent, {}, { roleName: "wide" }),
      keywardError("permission_denied", "token_bound_cidrs"),
    );
  });

  it("leaves tokens of an unbound parent unbound", async () => {
    const { tokens, root } = await createTokenFixture();
    const child = await tokens.create(root, {});
    assert.deepEqual(child.record.boundCidrs, []);
  });
});
