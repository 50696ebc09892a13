import assert from "node:assert/strict";
import { createPrivateKey, generateKeyPairSync, type KeyObject } from "node:crypto";
import { afterEach, beforeEach, describe, it } from "node:test";
import { encodeOpensshPrivateKey } from "../../../src/engines/ssh/private-keys.ts";
import { createSshRouteFixture, type SshRouteFixture } from "./fixtures.ts";

/**
 * Builds a P-256 private key whose public point belongs to one key pair and
 * whose scalar belongs to another. Node 20 imports such a JWK without checking
 * that the point is the scalar times the base point.
 */
function mismatchedEcKey(): KeyObject {
  const pointOwner = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey;
  const scalarOwner = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey;
  const { x, y } = pointOwner.export({ format: "jwk" });
  const { d } = scalarOwner.export({ format: "jwk" });
  return createPrivateKey({ key: { kty: "EC", crv: "P-256", x, y, d }, format: "jwk" });
}

/**
 * A CA key whose public half does not belong to its private half signs
 * certificates that no verifier accepts (`ssh-keygen -L` prints
 * "incorrect signature"), while the trust bundles publish the wrong key.
 * The import must reject it.
 */
describe("SSH CA import of a mismatched EC key", () => {
  let fixture: SshRouteFixture;

  beforeEach(async () => {
    fixture = await createSshRouteFixture();
  });
  afterEach(async () => fixture.close());

  const forms: [string, () => string][] = [
    ["openssh-key-v1", () => encodeOpensshPrivateKey(mismatchedEcKey())],
    ["SEC 1 PEM", () => mismatchedEcKey().export({ format: "pem", type: "sec1" }) as string],
  ];
  for (const [name, privateKey] of forms) {
    it(`rejects ${name} key`, async () => {
      const response = await fixture.request({
        method: "POST",
        url: "/v1/ssh/config/ca",
        payload: { private_key: privateKey() },
      });
      assert.equal(response.statusCode, 400, response.body);
      assert.equal(response.json().code, "invalid_field", response.body);
      assert.equal(response.json().field, "private_key", response.body);

      const stored = await fixture.request({ method: "GET", url: "/v1/ssh/config/ca" });
      assert.equal(stored.statusCode, 404, `a rejected import stores no CA key: ${stored.body}`);
    });
  }
});
