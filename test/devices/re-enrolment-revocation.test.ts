import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import pino from "pino";
import { devicePath } from "../../src/devices/context.ts";
import { DeviceService } from "../../src/devices/service.ts";
import { DeviceStore } from "../../src/devices/store.ts";
import type { DeviceRecord } from "../../src/devices/types.ts";
import { normaliseSerialHex } from "../../src/engines/pki/key-pairs.ts";
import type { StorageWriter, TransactionOptions } from "../../src/storage/storage.ts";
import { FailingStorage } from "../helpers/failing-storage.ts";
import { createDeviceApp, type DeviceApp, enrolDevice, makeDeviceKeys, ok } from "./fixtures.ts";

// A re-enrolment revokes the device's earlier identity certificates before
// it signs the new one and records it. A certificate that another node
// adds meanwhile is revoked after the record is committed. Whatever fails,
// no certificate may stay valid and unrevoked while no device record
// lists it, and a client whose enrolment failed must be able to retry.

/** The storage key fragment of the device serial index, written by every enrolment and renewal. */
const SERIAL_INDEX = "devices/serials/";
/** The storage key fragment of the PKI revocation entries, written by every revocation. */
const REVOCATION_ENTRY = "revoked/";

/** A FailingStorage that can start failing every write once a chosen transaction has committed. */
class FailAfterCommitStorage extends FailingStorage {
  #fragment: string | undefined;

  /** Turns `failWrites` on after the next transaction that puts a key containing `fragment` commits. */
  failWritesAfterCommitOf(fragment: string): void {
    this.#fragment = fragment;
  }

  override async transaction<T>(
    work: (tx: StorageWriter) => Promise<T>,
    options?: TransactionOptions,
  ): Promise<T> {
    let matched = false;
    const result = await super.transaction((tx) => {
      const watched: StorageWriter = {
        get: (key) => tx.get(key),
        list: (prefix) => tx.list(prefix),
        scan: (prefix, scanOptions) => tx.scan(prefix, scanOptions),
        put: (key, value) => {
          if (this.#fragment !== undefined && key.includes(this.#fragment)) matched = true;
          return tx.put(key, value);
        },
        delete: (key) => tx.delete(key),
      };
      return work(watched);
    }, options);
    if (matched) {
      this.#fragment = undefined;
      this.failWrites = true;
    }
    return result;
  }
}

function plainSerial(serial: string): string {
  return normaliseSerialHex(serial.replaceAll(":", ""));
}

describe("re-enrolment revocation", () => {
  let t: DeviceApp;
  let storage: FailAfterCommitStorage;
  let records: DeviceStore;

  before(async () => {
    t = await createDeviceApp({
      enrolmentRateLimit: { capacity: 1000 },
      wrapStorage: (inner) => {
        storage = new FailAfterCommitStorage(inner);
        return storage;
      },
    });
    records = new DeviceStore(t.keyward.seal.barrier);
  });
  after(async () => {
    storage.failWrites = false;
    await t.close();
  });

  async function isRevoked(serial: string): Promise<boolean> {
    const certificate = await ok(t, "GET", `/v1/pki/cert/${serial}`);
    return (certificate.revocation_time as number) > 0;
  }

  /** Returns the serials, plain hex, that the stored record of device `name` lists. */
  async function listedSerials(name: string): Promise<string[]> {
    const device = await records.get<DeviceRecord>(devicePath(name));
    assert.ok(device, `device ${name} has no record`);
    return device.certificates.map((certificate) => certificate.serial);
  }

  /** Creates a new bootstrap token for `name` and returns an enrolment request body with new keys. */
  async function reenrolmentPayload(name: string) {
    const issued = await ok(t, "POST", `/v1/devices/registry/${name}/bootstrap-token`, {});
    const keys = await makeDeviceKeys(name);
    return {
      bootstrap_token: issued.bootstrap_token as string,
      csr: keys.csr,
      encryption_key: keys.encryptionKey,
    };
  }

  function enrol(payload: object) {
    return t.request({ method: "POST", url: "/v1/devices/enroll", token: null, payload });
  }

  it("failed revocation commits nothing", async () => {
    const first = await enrolDevice(t, "phoenix");
    const firstSerial = plainSerial(first.serialNumber);
    const payload = await reenrolmentPayload("phoenix");

    storage.failNextTransactionWriting(REVOCATION_ENTRY);
    const failed = await enrol(payload);
    assert.equal(failed.statusCode >= 500, true, failed.body);
    assert.equal(await isRevoked(firstSerial), false, "the revocation was rolled back");
    assert.deepEqual(await listedSerials("phoenix"), [firstSerial]);

    // The token kept its use, so the same request succeeds.
    const retried = await enrol(payload);
    assert.equal(retried.statusCode, 200, retried.body);
    const secondSerial = plainSerial(retried.json().data.serial_number as string);
    assert.equal(await isRevoked(firstSerial), true, "the first certificate is revoked");
    assert.equal(await isRevoked(secondSerial), false, "the new certificate is valid");
    assert.deepEqual(await listedSerials("phoenix"), [secondSerial]);
  });

  it("retry after partial revocation succeeds", async () => {
    const first = await enrolDevice(t, "ember");
    const firstSerial = plainSerial(first.serialNumber);
    // A renewal gives the device a second certificate, so the re-enrolment revokes two.
    const ref = await t.keyward.devices.registry.require("ember");
    const renewalKeys = await makeDeviceKeys("ember");
    const renewed = await t.keyward.devices.enrolment.renew(ref, { csr: renewalKeys.csr });
    const renewedSerial = plainSerial(renewed.serial_number);
    assert.deepEqual(await listedSerials("ember"), [firstSerial, renewedSerial]);
    const payload = await reenrolmentPayload("ember");

    // The first revocation commits, and every write after it fails, so the second certificate stays unrevoked.
    storage.failWritesAfterCommitOf(REVOCATION_ENTRY);
    const failed = await enrol(payload);
    storage.failWrites = false;
    assert.equal(failed.statusCode >= 500, true, failed.body);
    assert.deepEqual(await listedSerials("ember"), [firstSerial, renewedSerial]);
    assert.equal(await isRevoked(firstSerial), true, "the first revocation committed");
    assert.equal(await isRevoked(renewedSerial), false, "the second revocation failed");

    // Revoking the first certificate again must not fail the retry.
    const retried = await enrol(payload);
    assert.equal(retried.statusCode, 200, retried.body);
    const newSerial = plainSerial(retried.json().data.serial_number as string);
    assert.equal(await isRevoked(firstSerial), true);
    assert.equal(await isRevoked(renewedSerial), true);
    assert.equal(await isRevoked(newSerial), false);
    assert.deepEqual(await listedSerials("ember"), [newSerial]);
  });

  it("storage failure after commit succeeds", async () => {
    const first = await enrolDevice(t, "cinder");
    const firstSerial = plainSerial(first.serialNumber);
    const payload = await reenrolmentPayload("cinder");

    // Every write fails once the enrolment's transaction has committed. The
    // request goes to the enrolment service, not through HTTP, because the
    // audit device stores its records in the same failing storage.
    storage.failWritesAfterCommitOf(SERIAL_INDEX);
    let reenrolled: Awaited<ReturnType<typeof t.keyward.devices.enrolment.enrol>>;
    try {
      reenrolled = await t.keyward.devices.enrolment.enrol(payload, "127.0.0.1");
    } finally {
      storage.failWrites = false;
    }
    const newSerial = plainSerial(reenrolled.serial_number);
    assert.equal(await isRevoked(firstSerial), true, "revoked before the commit");
    assert.equal(await isRevoked(newSerial), false);
    assert.deepEqual(await listedSerials("cinder"), [newSerial]);
  });

  describe("certificate added by another node", () => {
    /** Log entries of the second node, parsed. */
    const logged: Record<string, unknown>[] = [];
    let otherNode: DeviceService;

    before(() => {
      // A second device service on the same storage acts as another node:
      // it has its own device locks, so a renewal through `t` can run
      // while it holds the device's lock.
      const logger = pino(
        { level: "info" },
        { write: (line: string) => logged.push(JSON.parse(line) as Record<string, unknown>) },
      );
      otherNode = new DeviceService({
        barrier: t.keyward.seal.barrier,
        logger,
        pki: (mount) => t.keyward.pki(mount),
      });
    });

    /**
     * Re-enrols `name` through the other node. When the other node signs,
     * the device first renews through `t` and `afterRenewal` runs. Returns
     * the enrolment response and the renewed certificate's serial.
     */
    async function reenrolDuringRenewal(name: string, afterRenewal: () => void) {
      const pki = t.keyward.pki("pki");
      assert.ok(pki);
      const sign = pki.sign.bind(pki);
      let renewedSerial: string | undefined;
      pki.sign = async (...args: Parameters<typeof sign>) => {
        pki.sign = sign;
        const ref = await t.keyward.devices.registry.require(name);
        const keys = await makeDeviceKeys(name);
        const renewed = await t.keyward.devices.enrolment.renew(ref, { csr: keys.csr });
        renewedSerial = plainSerial(renewed.serial_number);
        afterRenewal();
        return sign(...args);
      };
      try {
        const payload = await reenrolmentPayload(name);
        const response = await otherNode.enrolment.enrol(payload, "127.0.0.1");
        assert.ok(renewedSerial, "the renewal did not run");
        return { response, renewedSerial };
      } finally {
        pki.sign = sign;
      }
    }

    it("revokes it after the commit", async () => {
      const first = await enrolDevice(t, "kindle");
      const firstSerial = plainSerial(first.serialNumber);

      const { response, renewedSerial } = await reenrolDuringRenewal("kindle", () => {});
      const newSerial = plainSerial(response.serial_number);
      assert.equal(await isRevoked(firstSerial), true);
      assert.equal(await isRevoked(renewedSerial), true, "the renewed certificate is revoked");
      assert.equal(await isRevoked(newSerial), false);
      assert.deepEqual(await listedSerials("kindle"), [newSerial]);
    });

    it("logs a failed revocation after the commit", async () => {
      const first = await enrolDevice(t, "flare");
      const firstSerial = plainSerial(first.serialNumber);

      logged.length = 0;
      let response: Awaited<ReturnType<typeof reenrolDuringRenewal>>["response"];
      let renewedSerial: string;
      try {
        ({ response, renewedSerial } = await reenrolDuringRenewal("flare", () => {
          storage.failWritesAfterCommitOf(SERIAL_INDEX);
        }));
      } finally {
        storage.failWrites = false;
      }

      // The enrolment committed, so it succeeds although one revocation failed.
      const newSerial = plainSerial(response.serial_number);
      assert.equal(await isRevoked(firstSerial), true);
      assert.equal(await isRevoked(newSerial), false);
      assert.deepEqual(await listedSerials("flare"), [newSerial]);

      // The renewed certificate could not be revoked, so the error log names it.
      assert.equal(await isRevoked(renewedSerial), false);
      const errors = logged.filter((entry) => entry.level === 50);
      assert.equal(errors.length, 1, JSON.stringify(logged));
      const [entry] = errors;
      assert.equal(entry?.device, "flare");
      assert.equal(entry?.mount, "pki");
      assert.equal(entry?.serial, renewedSerial);
      assert.match(String(entry?.msg), /operator must revoke this serial/);
    });
  });
});
