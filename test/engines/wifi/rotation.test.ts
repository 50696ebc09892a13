import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { DeviceArtifact, DeviceRef } from "../../../src/devices/artifacts.ts";
import { createWifiJobs } from "../../../src/engines/wifi/jobs.ts";
import type { WifiService } from "../../../src/engines/wifi/service.ts";
import { createDeviceApp, type DeviceApp, ok, TestClock } from "../../devices/fixtures.ts";

const HOUR = 3600_000;
const LAPTOP_MAC = "02:11:22:33:44:55";
const PHONE_MAC = "02:aa:bb:cc:dd:ee";

function deviceRef(name: string, groups: string[] = []): DeviceRef {
  return { name, id: `id-${name}`, groups, tags: {} };
}

/** Returns the content lines of a rendered file, without its comment header. */
function contentLines(text: string): string[] {
  return text.split("\n").filter((line) => line !== "" && !line.startsWith("#"));
}

describe("Wi-Fi rotation and grace window", () => {
  const clock = new TestClock(Date.parse("2026-03-01T00:00:00Z"));
  let t: DeviceApp;
  let service: WifiService;
  const job = () =>
    createWifiJobs({ services: () => [service], intervalMs: 60_000 })[0] as {
      run(now: Date): Promise<void>;
    };

  /** Returns the access point artifact of `network` as `ap-1` receives it. */
  async function accessPoint(network = "office"): Promise<DeviceArtifact> {
    const artifacts = await service.deviceArtifacts(deviceRef("ap-1", ["office-aps"]));
    const found = artifacts.find((artifact) => artifact.id === `wifi:wifi:${network}`);
    assert.ok(found, `ap-1 has no artifact for ${network}`);
    return found;
  }

  async function station(device: string, key: string): Promise<DeviceArtifact | undefined> {
    const artifacts = await service.deviceArtifacts(deviceRef(device));
    return artifacts.find((artifact) => artifact.id === `wifi:wifi:office:${key}`);
  }

  async function keyPassphrase(key: string): Promise<string> {
    return (await ok(t, "GET", `/v1/wifi/networks/office/keys/${key}/onboarding`)).passphrase;
  }

  async function sharedPassphrase(): Promise<string> {
    return (await ok(t, "GET", "/v1/wifi/networks/office/onboarding")).passphrase;
  }

  before(async () => {
    t = await createDeviceApp({ clock });
    await ok(t, "POST", "/v1/sys/mounts/wifi", { type: "wifi" }, 204);
    service = t.keyward.wifi("wifi") as WifiService;
    await ok(t, "POST", "/v1/wifi/networks/office", {
      ssid: "Office",
      security: "wpa2-wpa3",
      vlans: [10],
      generate_passphrase: true,
      rotation_period: "720h",
      grace_window: "72h",
      access_point_groups: ["office-aps"],
    });
    await ok(t, "POST", "/v1/wifi/networks/office/keys/laptop", {
      mac: LAPTOP_MAC,
      vlan: 10,
      sae_password_id: "laptop",
      device_id: "laptop-7",
    });
    await ok(t, "POST", "/v1/wifi/networks/office/keys/phone", {
      mac: PHONE_MAC,
      device_id: "phone-3",
    });
  });

  after(async () => {
    await t.close();
  });

  it("rotate keeps both key passphrases in the window", async () => {
    // An hour after the keys were made, so the laptop's passphrase is due after the phone's.
    clock.advance(HOUR);
    const before = await accessPoint();
    const oldPassphrase = await keyPassphrase("laptop");
    const oldStation = await station("laptop-7", "laptop");
    assert.equal(oldStation?.fields.sae_password_id, "laptop.1");

    const view = await ok(t, "POST", "/v1/wifi/networks/office/keys/laptop/rotate");
    assert.equal(view.passphrase.generation, 2);
    assert.equal(view.passphrase.previous_generation, 1);
    assert.equal(
      view.passphrase.previous_expires_at,
      new Date(clock.now().getTime() + 72 * HOUR).toISOString(),
    );
    const newPassphrase = await keyPassphrase("laptop");
    assert.notEqual(newPassphrase, oldPassphrase);

    const during = await accessPoint();
    assert.ok(during.version > before.version, "the artifact version rises");
    const psk = contentLines(during.secrets.wpa_psk_file as string);
    assert.ok(psk.includes(`keyid=laptop vlanid=10 ${LAPTOP_MAC} ${oldPassphrase}`));
    assert.ok(psk.includes(`keyid=laptop vlanid=10 ${LAPTOP_MAC} ${newPassphrase}`));
    const sae = contentLines(during.secrets.sae_password as string);
    assert.ok(
      sae.includes(`sae_password=${oldPassphrase}|mac=${LAPTOP_MAC}|vlanid=10|id=laptop.1`),
    );
    assert.ok(
      sae.includes(`sae_password=${newPassphrase}|mac=${LAPTOP_MAC}|vlanid=10|id=laptop.2`),
    );

    const newStation = await station("laptop-7", "laptop");
    assert.equal(newStation?.version, during.version);
    assert.equal(newStation?.fields.sae_password_id, "laptop.2");
    const block = newStation?.secrets.wpa_supplicant as string;
    assert.ok(block.includes(`sae_password="${newPassphrase}"`));
    assert.ok(block.includes('sae_password_id="laptop.2"'));
    assert.ok(!block.includes(oldPassphrase), "a station gets only the new passphrase");
  });

  it("job drops the old key passphrase after the window", async () => {
    const newPassphrase = await keyPassphrase("laptop");
    const before = await accessPoint();
    const oldLine = contentLines(before.secrets.wpa_psk_file as string).find(
      (line) => line.includes(LAPTOP_MAC) && !line.endsWith(newPassphrase),
    );
    assert.ok(oldLine, "the old line is still listed before the job runs");

    clock.advance(71 * HOUR);
    await job().run(clock.now());
    const still = await accessPoint();
    assert.equal(still.version, before.version, "nothing changes inside the window");
    assert.ok(contentLines(still.secrets.wpa_psk_file as string).includes(oldLine));

    clock.advance(1 * HOUR);
    await job().run(clock.now());
    const afterWindow = await accessPoint();
    assert.ok(afterWindow.version > before.version);
    const psk = contentLines(afterWindow.secrets.wpa_psk_file as string);
    assert.deepEqual(
      psk.filter((line) => line.includes(LAPTOP_MAC)),
      [`keyid=laptop vlanid=10 ${LAPTOP_MAC} ${newPassphrase}`],
    );
    const sae = contentLines(afterWindow.secrets.sae_password as string);
    assert.deepEqual(
      sae.filter((line) => line.includes(LAPTOP_MAC)),
      [`sae_password=${newPassphrase}|mac=${LAPTOP_MAC}|vlanid=10|id=laptop.2`],
    );
    const view = await ok(t, "GET", "/v1/wifi/networks/office/keys/laptop");
    assert.equal(view.passphrase.previous_generation, null);
    assert.equal(view.passphrase.previous_expires_at, null);
  });

  it("shared passphrase rotates with a window", async () => {
    const oldShared = await sharedPassphrase();
    const before = await accessPoint();
    const view = await ok(t, "POST", "/v1/wifi/networks/office/rotate");
    assert.equal(view.shared_passphrase.generation, 2);
    assert.equal(view.shared_passphrase.previous_generation, 1);
    const newShared = await sharedPassphrase();
    assert.notEqual(newShared, oldShared);

    const during = await accessPoint();
    assert.ok(during.version > before.version);
    const psk = contentLines(during.secrets.wpa_psk_file as string);
    assert.ok(psk.includes(`00:00:00:00:00:00 ${oldShared}`));
    assert.ok(psk.includes(`00:00:00:00:00:00 ${newShared}`));
    // hostapd honours one SAE password per station and identifier, so only the new one is listed.
    const sae = contentLines(during.secrets.sae_password as string);
    assert.ok(sae.includes(`sae_password=${newShared}`));
    assert.ok(!sae.some((line) => line.includes(oldShared)));

    clock.advance(72 * HOUR);
    await job().run(clock.now());
    const afterWindow = await accessPoint();
    const remaining = contentLines(afterWindow.secrets.wpa_psk_file as string);
    assert.ok(remaining.includes(`00:00:00:00:00:00 ${newShared}`));
    assert.ok(!remaining.some((line) => line.endsWith(oldShared)));
  });

  it("job rotates passphrases past the rotation period", async () => {
    const shared = await sharedPassphrase();
    const laptop = await keyPassphrase("laptop");
    const phone = await keyPassphrase("phone");
    const before = await accessPoint();
    const phoneBefore = await station("phone-3", "phone");

    // The phone's passphrase is the oldest, made an hour before the laptop's rotation.
    const phoneView = await ok(t, "GET", "/v1/wifi/networks/office/keys/phone");
    const due = Date.parse(phoneView.passphrase.rotation_due_at);
    clock.advance(due - clock.now().getTime() - 1000);
    await job().run(clock.now());
    assert.equal((await accessPoint()).version, before.version, "nothing is due yet");

    clock.advance(1000);
    await job().run(clock.now());
    const rotated = await accessPoint();
    assert.ok(rotated.version > before.version);
    const newPhone = await keyPassphrase("phone");
    assert.notEqual(newPhone, phone);
    assert.equal(await keyPassphrase("laptop"), laptop, "the laptop's passphrase is not due yet");
    assert.equal(await sharedPassphrase(), shared, "the shared passphrase is not due yet");

    const psk = contentLines(rotated.secrets.wpa_psk_file as string);
    assert.ok(psk.includes(`keyid=phone ${PHONE_MAC} ${phone}`));
    assert.ok(psk.includes(`keyid=phone ${PHONE_MAC} ${newPhone}`));
    // The phone has no identifier stem, so SAE lists only its new passphrase.
    const sae = contentLines(rotated.secrets.sae_password as string);
    assert.deepEqual(
      sae.filter((line) => line.includes(PHONE_MAC)),
      [`sae_password=${newPhone}|mac=${PHONE_MAC}`],
    );
    const phoneAfter = await station("phone-3", "phone");
    assert.ok((phoneAfter?.version ?? 0) > (phoneBefore?.version ?? 0));
    assert.equal(phoneAfter?.fields.generation, 2);

    clock.advance(72 * HOUR);
    await job().run(clock.now());
    const afterWindow = contentLines((await accessPoint()).secrets.wpa_psk_file as string);
    assert.deepEqual(
      afterWindow.filter((line) => line.includes(PHONE_MAC)),
      [`keyid=phone ${PHONE_MAC} ${newPhone}`],
    );
  });

  it("revoked station loses its keys", async () => {
    await ok(t, "POST", "/v1/devices/registry/phone-3", {});
    const phone = await keyPassphrase("phone");
    const laptop = await keyPassphrase("laptop");
    const before = await accessPoint();
    await ok(t, "POST", "/v1/devices/registry/phone-3/revoke", {});

    const afterRevoke = await accessPoint();
    assert.ok(afterRevoke.version > before.version);
    const text = `${afterRevoke.secrets.wpa_psk_file}${afterRevoke.secrets.sae_password}`;
    assert.ok(!text.includes(PHONE_MAC));
    assert.ok(!text.includes(phone));
    assert.ok(text.includes(laptop), "other keys stay");
    assert.equal(await station("phone-3", "phone"), undefined);
    const missing = await t.request({ method: "GET", url: "/v1/wifi/networks/office/keys/phone" });
    assert.equal(missing.statusCode, 404);
  });

  it("revoked access point replaces every passphrase", async () => {
    await ok(t, "POST", "/v1/devices/registry/ap-1", { groups: ["office-aps"] });
    const shared = await sharedPassphrase();
    const laptop = await keyPassphrase("laptop");
    const before = await accessPoint();
    await ok(t, "POST", "/v1/devices/registry/ap-1/revoke", {});

    const newShared = await sharedPassphrase();
    const newLaptop = await keyPassphrase("laptop");
    assert.notEqual(newShared, shared);
    assert.notEqual(newLaptop, laptop);
    const view = await ok(t, "GET", "/v1/wifi/networks/office/keys/laptop");
    assert.equal(view.passphrase.previous_generation, null, "no grace window after a revocation");

    // Another access point of the group receives files without the old passphrases.
    const artifacts = await service.deviceArtifacts(deviceRef("ap-2", ["office-aps"]));
    const files = artifacts.find((artifact) => artifact.id === "wifi:wifi:office");
    assert.ok(files);
    assert.ok(files.version > before.version);
    const text = `${files.secrets.wpa_psk_file}${files.secrets.sae_password}`;
    assert.ok(!text.includes(shared));
    assert.ok(!text.includes(laptop));
    assert.ok(text.includes(newShared));
    assert.ok(text.includes(newLaptop));
    const laptopStation = await station("laptop-7", "laptop");
    assert.ok(laptopStation?.secrets.wpa_supplicant?.includes(newLaptop));
  });
});
