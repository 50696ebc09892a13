import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createDeviceApp, type DeviceApp, makeDeviceKeys, ok, registerDevice } from "./fixtures.ts";

/** Returns a promise and the function that resolves it. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open = () => {};
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

// Deletion reads the device's state before it takes the device's lock. An
// enrolment that holds the lock at that moment finishes first, so deletion
// must notice the new certificate under the lock and revoke it, or the
// certificate stays valid in the PKI mount with no device record left.
describe("device deletion during enrolment", () => {
  let t: DeviceApp;

  before(async () => {
    t = await createDeviceApp({ enrolmentRateLimit: { capacity: 1000 } });
  });
  after(() => t.close());

  it("revokes the certificate the enrolment issued", async () => {
    const token = await registerDevice(t, "raced");
    const keys = await makeDeviceKeys("raced");

    // Hold the enrolment inside the device's lock, while it signs.
    const pki = t.keyward.pki("pki");
    assert.ok(pki);
    const signing = gate();
    const release = gate();
    const sign = pki.sign.bind(pki);
    pki.sign = async (...args: Parameters<typeof sign>) => {
      signing.open();
      await release.promise;
      return sign(...args);
    };

    // Let deletion read the device (still registered) before the enrolment finishes.
    const registry = t.keyward.devices.registry;
    const firstRead = gate();
    const require = registry.require.bind(registry);
    registry.require = async (name: string) => {
      const device = await require(name);
      firstRead.open();
      return device;
    };

    try {
      const enrolment = t.request({
        method: "POST",
        url: "/v1/devices/enroll",
        token: null,
        payload: { bootstrap_token: token, csr: keys.csr, encryption_key: keys.encryptionKey },
      });
      await signing.promise;
      const deletion = t.request({ method: "DELETE", url: "/v1/devices/registry/raced" });
      await firstRead.promise;
      release.open();

      const enrolled = await enrolment;
      assert.equal(enrolled.statusCode, 200, enrolled.body);
      const deleted = await deletion;
      assert.equal(deleted.statusCode, 204, deleted.body);

      const serial = enrolled.json().data.serial_number as string;
      const certificate = await ok(t, "GET", `/v1/pki/cert/${serial}`);
      assert.ok(certificate.revocation_time > 0, `certificate ${serial} is not revoked`);
      const afterDeletion = await t.request({ method: "GET", url: "/v1/devices/registry/raced" });
      assert.equal(afterDeletion.statusCode, 404, afterDeletion.body);
    } finally {
      pki.sign = sign;
      registry.require = require;
    }
  });
});
