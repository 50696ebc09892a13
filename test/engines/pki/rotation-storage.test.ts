import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { PkiService } from "../../../src/engines/pki/service.ts";
import type { IssuerRecord } from "../../../src/engines/pki/types.ts";
import { createSealManager } from "../../../src/seal/seal-manager.ts";
import { FailingStorage } from "../../helpers/failing-storage.ts";
import { initAndUnseal, keywardError, SealFixture } from "../../seal/fixtures.ts";

const TEN_YEARS_SECONDS = 87_600 * 3600;

describe("PKI rotation storage", () => {
  let fixture: SealFixture;
  let storage: FailingStorage;
  let service: PkiService;
  let oldIssuerId: string;

  before(async () => {
    fixture = await SealFixture.create();
    storage = new FailingStorage(await fixture.openStorage());
    const seal = createSealManager(storage);
    await initAndUnseal(seal, 1, 1);
    service = new PkiService({
      barrier: seal.barrier,
      mount: "pki",
      mountTtls: () => ({ defaultSeconds: 3600, maxSeconds: TEN_YEARS_SECONDS }),
    });
    const root = await service.generateRoot("internal", {
      common_name: "Storage Root",
      key_type: "ec",
      ttl: "720h",
    });
    oldIssuerId = root.issuer_id;
  });

  after(async () => {
    await fixture.remove();
  });

  async function usageOf(id: string): Promise<IssuerRecord["usage"]> {
    return (await service.issuers.resolve(id)).usage;
  }

  it("rollback deletes the prepared key", async () => {
    const keysBefore = (await service.issuers.keys()).length;
    const prepared = await service.rotation.prepare({ common_name: "Dropped", key_type: "ec" });
    assert.equal((await service.issuers.keys()).length, keysBefore + 1);
    await service.rotation.rollback();
    assert.equal((await service.issuers.keys()).length, keysBefore);
    const filed = await service.inventory.search(
      { issuerId: prepared.newIssuerId, includeRevoked: true },
      { limit: 10 },
    );
    assert.deepEqual(filed.certificates, []);
  });

  it("failed switch changes nothing", async () => {
    const prepared = await service.rotation.prepare({ common_name: "Next", key_type: "ec" });
    storage.failWrites = true;
    try {
      await assert.rejects(service.rotation.switch(), keywardError("storage_failure"));
    } finally {
      storage.failWrites = false;
    }
    const status = await service.rotation.status();
    assert.equal(status.phase, "prepared");
    assert.equal(status.defaultIssuerId, oldIssuerId);
    assert.doesNotMatch(String(await usageOf(prepared.newIssuerId)), /issuing-certificates/);

    const switched = await service.rotation.switch();
    assert.equal(switched.defaultIssuerId, prepared.newIssuerId);
  });

  it("failed retire changes nothing", async () => {
    storage.failWrites = true;
    try {
      await assert.rejects(service.rotation.retire(), keywardError("storage_failure"));
    } finally {
      storage.failWrites = false;
    }
    assert.equal((await service.rotation.status()).phase, "switched");
    assert.equal(await usageOf(oldIssuerId), undefined);
  });

  it("steps run one at a time", async () => {
    const results = await Promise.allSettled([
      service.rotation.retire(),
      service.rotation.retire(),
      service.rotation.rollback(),
    ]);
    assert.equal(results[0]?.status, "fulfilled");
    for (const result of results.slice(1)) {
      assert.equal(result.status, "rejected");
      assert.match(String((result as PromiseRejectedResult).reason), /phase "retired"/);
    }
  });
});
