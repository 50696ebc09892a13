import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { FailingStorage } from "../helpers/failing-storage.ts";
import {
  createDeviceApp,
  type DeviceApp,
  enrolDevice,
  makeDeviceKeys,
  ok,
  registerDevice,
} from "./fixtures.ts";

// An enrolment or renewal signs the device's certificate first and then
// records it in one transaction. When that transaction fails, no device
// record lists the certificate, so the server revokes it at once.

/** The storage key fragment of the device serial index, written by every enrolment and renewal. */
const SERIAL_INDEX = "devices/serials/";

/** Returns the stored PKI certificates whose common name is `name`, by plain hex serial. */
async function certificatesNamed(t: DeviceApp, name: string) {
  const listed = await ok(t, "GET", "/v1/pki/certs?list=true");
  const found: { serial: string; revoked: boolean }[] = [];
  for (const serial of listed.keys as string[]) {
    const data = await ok(t, "GET", `/v1/pki/cert/${serial}`);
    const certificate = new X509Certificate(data.certificate as string);
    if (certificate.subject !== `CN=${name}`) continue;
    found.push({
      serial: certificate.serialNumber.toLowerCase(),
      revoked: (data.revocation_time as number) > 0,
    });
  }
  return found;
}

function plainSerial(serial: string): string {
  return serial.replaceAll(":", "").toLowerCase();
}

describe("failed enrolment", () => {
  let t: DeviceApp;
  let storage: FailingStorage;

  before(async () => {
    t = await createDeviceApp({
      enrolmentRateLimit: { capacity: 1000 },
      wrapStorage: (inner) => {
        storage = new FailingStorage(inner);
        return storage;
      },
    });
  });
  after(() => t.close());

  it("revokes the certificate it signed", async () => {
    const token = await registerDevice(t, "unlucky");
    const keys = await makeDeviceKeys("unlucky");
    const payload = { bootstrap_token: token, csr: keys.csr, encryption_key: keys.encryptionKey };

    storage.failNextTransactionWriting(SERIAL_INDEX);
    const failed = await t.request({
      method: "POST",
      url: "/v1/devices/enroll",
      token: null,
      payload,
    });
    assert.equal(failed.statusCode >= 500, true, failed.body);
    const afterFailure = await certificatesNamed(t, "unlucky");
    assert.equal(afterFailure.length, 1);
    assert.equal(afterFailure[0]!.revoked, true);

    // The token was not used up, so the device enrols with it.
    const enrolled = await t.request({
      method: "POST",
      url: "/v1/devices/enroll",
      token: null,
      payload,
    });
    assert.equal(enrolled.statusCode, 200, enrolled.body);
    const serial = plainSerial(enrolled.json().data.serial_number as string);
    const current = (await certificatesNamed(t, "unlucky")).find((c) => c.serial === serial);
    assert.equal(current?.revoked, false);
  });

  it("revokes the certificate a failed renewal signed", async () => {
    const device = await enrolDevice(t, "renewer");
    const registry = t.keyward.devices.registry;
    const ref = await registry.require("renewer");
    const keys = await makeDeviceKeys("renewer");

    storage.failNextTransactionWriting(SERIAL_INDEX);
    await assert.rejects(t.keyward.devices.enrolment.renew(ref, { csr: keys.csr }), {
      code: "storage_failure",
    });

    const certificates = await certificatesNamed(t, "renewer");
    assert.equal(certificates.length, 2);
    const enrolledSerial = plainSerial(device.serialNumber);
    for (const certificate of certificates) {
      assert.equal(certificate.revoked, certificate.serial !== enrolledSerial, certificate.serial);
    }
  });
});
