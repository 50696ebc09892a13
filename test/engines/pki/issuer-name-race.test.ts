import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { PkiService } from "../../../src/engines/pki/service.ts";
import { createSealManager } from "../../../src/seal/seal-manager.ts";
import type { Barrier } from "../../../src/seal/types.ts";
import { initAndUnseal, SealFixture } from "../../seal/fixtures.ts";

const TTLS = () => ({ defaultSeconds: 3600, maxSeconds: 87_600 * 3600 });

// Two nodes have their own PkiService and locks over one storage. An issuer
// or key name is claimed in the transaction that writes the record, so two
// nodes that give one name at once cannot both succeed.
describe("issuer and key names across nodes", () => {
  let fixture: SealFixture;
  let barrier: Barrier;

  before(async () => {
    fixture = await SealFixture.create();
    const seal = createSealManager(await fixture.openStorage());
    await initAndUnseal(seal, 1, 1);
    barrier = seal.barrier;
  });
  after(async () => {
    await fixture.remove();
  });

  function node(): PkiService {
    return new PkiService({ barrier, mount: "pki", mountTtls: TTLS });
  }

  const root = (service: PkiService, name: string) =>
    service.generateRoot("internal", {
      common_name: `${name} root`,
      key_type: "ec",
      ttl: "720h",
      issuer_name: name,
    });

  it("lets one of two nodes name an issuer", async () => {
    const results = await Promise.allSettled([root(node(), "shared"), root(node(), "shared")]);
    const fulfilled = results.filter((result) => result.status === "fulfilled");
    assert.equal(fulfilled.length, 1);
    const rejected = results.find((result) => result.status === "rejected");
    assert.ok(rejected !== undefined);
    assert.equal((rejected.reason as { code?: string }).code, "already_exists");
    const named = (await node().issuers.list()).filter((issuer) => issuer.name === "shared");
    assert.equal(named.length, 1);
  });

  it("lets one of two nodes name a key", async () => {
    const withKey = (service: PkiService, issuerName: string) =>
      service.generateRoot("internal", {
        common_name: `${issuerName} root`,
        key_type: "ec",
        ttl: "720h",
        issuer_name: issuerName,
        key_name: "shared-key",
      });
    const results = await Promise.allSettled([withKey(node(), "left"), withKey(node(), "right")]);
    assert.equal(results.filter((result) => result.status === "fulfilled").length, 1);
    const named = (await node().issuers.keys()).filter((key) => key.name === "shared-key");
    assert.equal(named.length, 1);
  });

  it("frees a name when its issuer is renamed or deleted", async () => {
    const first = node();
    const created = await root(first, "moving");
    await first.issuers.updateIssuer(created.issuer_id, { name: "moved" });
    await root(node(), "moving");
    await assert.rejects(root(node(), "moved"), { code: "already_exists" });
    await first.issuers.deleteIssuer("moved");
    await root(node(), "moved");
  });
});
