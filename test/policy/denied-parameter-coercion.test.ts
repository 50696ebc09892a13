import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Acl } from "../../src/policy/acl.ts";
import { parsePolicy } from "../../src/policy/parse.ts";

// Parameter constraints are checked before the route schema coerces types
// (`"true"` to `true`, `["1"]` to `1`), so a denied value sent in another
// JSON type must be denied as well.
const acl = Acl.compile([
  parsePolicy(
    "p",
    `path "transit/keys/*" {
  capabilities = ["create", "update"]
  denied_parameters = {
    "exportable" = [true]
    "min_decryption_version" = [1]
    "type" = ["rsa-2048"]
    "derived" = [false]
  }
}`,
  ),
]);

function allowed(parameters: Record<string, unknown>): boolean {
  return acl.check({ path: "transit/keys/k", operation: "update", parameters }).allowed;
}

describe("denied parameters in other JSON types", () => {
  it("denies a boolean sent as a string or a one-item array", () => {
    assert.equal(allowed({ exportable: true }), false);
    assert.equal(allowed({ exportable: "true" }), false);
    assert.equal(allowed({ exportable: ["true"] }), false);
    assert.equal(allowed({ exportable: [true] }), false);
  });

  it("denies a boolean sent as a number", () => {
    assert.equal(allowed({ exportable: 1 }), false);
    assert.equal(allowed({ exportable: [1] }), false);
  });

  it("denies false sent as null, 0 or an empty string", () => {
    assert.equal(allowed({ derived: null }), false);
    assert.equal(allowed({ derived: 0 }), false);
    assert.equal(allowed({ derived: "false" }), false);
  });

  it("denies a number sent as a string or a boolean", () => {
    assert.equal(allowed({ min_decryption_version: "1" }), false);
    assert.equal(allowed({ min_decryption_version: ["1"] }), false);
    assert.equal(allowed({ min_decryption_version: " 1" }), false);
    assert.equal(allowed({ min_decryption_version: true }), false);
  });

  it("allows values that coerce to something else", () => {
    assert.equal(allowed({ exportable: false }), true);
    assert.equal(allowed({ exportable: "false" }), true);
    assert.equal(allowed({ min_decryption_version: "2" }), true);
    assert.equal(allowed({ type: "aes256-gcm96" }), true);
  });

  it("still denies a listed string in an array", () => {
    assert.equal(allowed({ type: ["rsa-2048"] }), false);
  });
});
