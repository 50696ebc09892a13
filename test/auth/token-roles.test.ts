import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  applyTokenRoleSettings,
  roleTokenPolicies,
  type TokenRoleSettings,
} from "../../src/auth/token-roles.ts";

function role(settings: TokenRoleSettings) {
  return applyTokenRoleSettings("r", undefined, settings);
}

describe("roleTokenPolicies", () => {
  it("grants allowed policies by default", () => {
    const policies = roleTokenPolicies(role({ allowedPolicies: ["b", "a"] }), ["x"], [], false);
    assert.deepEqual(policies, ["a", "b", "default"]);
  });

  it("matches allowed globs", () => {
    const globbed = role({ allowedPoliciesGlob: ["team-*"] });
    assert.deepEqual(roleTokenPolicies(globbed, [], ["team-web"], true), ["team-web"]);
    assert.throws(() => roleTokenPolicies(globbed, [], ["ops"], true), {
      code: "permission_denied",
    });
  });

  it("rejects disallowed globs", () => {
    const limited = role({ disallowedPoliciesGlob: ["admin-*"] });
    assert.throws(() => roleTokenPolicies(limited, ["root"], ["admin-db"], false), {
      code: "permission_denied",
    });
    assert.deepEqual(roleTokenPolicies(limited, ["root"], ["app"], false), ["app", "default"]);
  });

  it("keeps creator subset without allowed", () => {
    const open = role({});
    assert.throws(() => roleTokenPolicies(open, ["a"], ["b"], false), {
      code: "permission_denied",
    });
    assert.deepEqual(roleTokenPolicies(open, ["a", "default"], undefined, true), ["a"]);
  });

  it("lower-cases glob patterns", () => {
    const upper = role({ disallowedPoliciesGlob: ["ADM*"] });
    assert.deepEqual(upper.disallowedPoliciesGlob, ["adm*"]);
    assert.throws(() => roleTokenPolicies(upper, ["root"], ["admin"], false), {
      code: "permission_denied",
    });
  });

  it("never grants root to non-root", () => {
    assert.throws(() => roleTokenPolicies(role({}), ["a"], ["root"], false), {
      code: "permission_denied",
    });
  });

  it("keeps names beside root in disallowed", () => {
    const settings = role({ disallowedPolicies: ["root,admin", "ops"] });
    assert.deepEqual(settings.disallowedPolicies, ["admin", "ops", "root"]);
  });
});
