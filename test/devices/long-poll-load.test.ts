import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  createDeviceApp,
  type DeviceApp,
  deviceRequest,
  type EnrolledDevice,
  enrolDevice,
  eventually,
  ok,
  startTlsServer,
  type TlsResponse,
  type TlsServer,
} from "./fixtures.ts";

const DEVICES = 10;
const POLLS_PER_DEVICE = 100;

describe("1000 waiting agents", () => {
  let t: DeviceApp;
  let server: TlsServer;
  const devices: EnrolledDevice[] = [];

  before(async () => {
    // The thousand clients share this process's event loop with the server,
    // so on a loaded machine an audit write can wait longer than the 5 s default.
    t = await createDeviceApp({ auditWriteTimeoutMs: 60_000 });
    server = await startTlsServer(t);
    await ok(t, "POST", "/v1/devices/secrets/fleet", { groups: ["fleet"] });
    for (let index = 0; index < DEVICES; index++) {
      devices.push(await enrolDevice(t, `agent-${index}`, { groups: ["fleet"] }));
    }
  });
  after(async () => {
    await server.close();
    await t.close();
  });

  it("wakes the waiting and forgets the disconnected", async () => {
    const polls: { controller: AbortController; response: Promise<TlsResponse | undefined> }[] = [];
    for (const device of devices) {
      const etag = (
        await deviceRequest(server, { method: "GET", path: "/v1/devices/self/state", device })
      ).json().data.etag;
      for (let index = 0; index < POLLS_PER_DEVICE; index++) {
        const controller = new AbortController();
        const response = deviceRequest(server, {
          method: "GET",
          path: `/v1/devices/self/state?since=${etag}&wait=60`,
          device,
          signal: controller.signal,
        }).catch(() => undefined);
        polls.push({ controller, response });
      }
    }
    const waiters = () => t.keyward.devices.waiters.size;
    await eventually(() => waiters() === DEVICES * POLLS_PER_DEVICE, "1000 long polls", 120_000);

    // Half the agents disconnect; their waits end without a change.
    const leaving = polls.filter((_, index) => index % 2 === 0);
    const staying = polls.filter((_, index) => index % 2 === 1);
    for (const poll of leaving) poll.controller.abort();
    await Promise.all(leaving.map((poll) => poll.response));
    await eventually(() => waiters() === staying.length, "the disconnected waits to end");

    // One rotation reaches every device of the group; each waiting agent gets the new state.
    await ok(t, "POST", "/v1/devices/secrets/fleet/rotate", {});
    const responses = await Promise.all(staying.map((poll) => poll.response));
    assert.ok(
      responses.every((response) => response?.status === 200),
      "every remaining poll ends with 200",
    );
    assert.ok(responses.every((response) => response?.json().data.artifacts[0].version === 2));
    assert.equal(waiters(), 0);
  });
});
