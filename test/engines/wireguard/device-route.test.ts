import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type {
  FastifyInstance,
  FastifyRequest,
  InjectOptions,
  LightMyRequestResponse,
} from "fastify";
import { createFastify } from "../../../src/api/app.ts";
import { registerDeviceWireguardKeyRoute } from "../../../src/api/routes/devices-wireguard.ts";
import {
  generateKeyPair,
  registerWireguardRoutes,
  WireguardService,
} from "../../../src/engines/wireguard/index.ts";
import { KeywardError } from "../../../src/errors.ts";
import { MemoryBarrier } from "../../helpers/memory-barrier.ts";
import { FixedClock, ok } from "./fixtures.ts";

const pub = () => generateKeyPair().publicKey;
const KEY_URL = "/v1/devices/self/wireguard/key";

/** Stands in for the device registry's mutual-TLS check: the device's name comes in a header. */
async function authenticate(request: FastifyRequest) {
  const name = request.headers["x-test-device"];
  if (typeof name !== "string") {
    throw new KeywardError("device_authentication_failed", "mutual TLS is required");
  }
  return { name, id: `id-${name}`, groups: [], tags: {} };
}

describe("wireguard device key route", () => {
  const clock = new FixedClock();
  let service: WireguardService;
  let app: FastifyInstance;
  let sealed = false;
  const admin = { request: (options: InjectOptions) => app.inject(options) };

  /** Posts `body` as device `device`, or as no device when it is null. */
  const post = (body: unknown, device: string | null = "gw-1") =>
    app.inject({
      method: "POST",
      url: KEY_URL,
      payload: body as object,
      headers: device === null ? {} : { "x-test-device": device },
    });
  const body = (overrides: Record<string, unknown> = {}) => ({
    mount: "wireguard",
    network: "office",
    peer: "alpha",
    public_key: pub(),
    ...overrides,
  });

  before(async () => {
    service = new WireguardService({
      barrier: new MemoryBarrier(),
      mount: "wireguard",
      clock: clock.now,
    });
    app = createFastify();
    await app.register(async (scope) => registerWireguardRoutes(scope, () => service), {
      prefix: "/v1/wireguard",
    });
    await registerDeviceWireguardKeyRoute(app, {
      authenticate,
      serviceFor: (mount) => {
        if (sealed) throw new KeywardError("sealed", "Keyward is sealed");
        return mount === "wireguard" ? service : undefined;
      },
    });
    await app.ready();
    await ok(admin, "POST", "/v1/wireguard/networks/office", {
      address_ranges: "10.20.0.0/24",
      rotation_notice: "1h",
    });
    await ok(admin, "POST", "/v1/wireguard/networks/office/peers/alpha", { device_id: "gw-1" });
    await ok(admin, "POST", "/v1/wireguard/networks/office/peers/bravo", {
      public_key: pub(),
      device_id: "gw-2",
    });
  });

  after(async () => {
    await app.close();
  });

  it("activates a first key at once", async () => {
    const key = pub();
    const response = await post(body({ public_key: key }));
    assert.equal(response.statusCode, 200, response.body);
    assert.deepEqual(response.json().data, {
      key_version: 1,
      activate_at: "2030-01-01T00:00:00.000Z",
    });
    const peer = await ok(admin, "GET", "/v1/wireguard/networks/office/peers/alpha");
    assert.equal(peer.public_key, key);
  });

  it("stages a later key", async () => {
    const key = pub();
    const response = await post(body({ public_key: key }));
    assert.equal(response.statusCode, 200, response.body);
    assert.deepEqual(response.json().data, {
      key_version: 2,
      activate_at: "2030-01-01T01:00:00.000Z",
    });
    const peer = await ok(admin, "GET", "/v1/wireguard/networks/office/peers/alpha");
    assert.equal(peer.next_key, key);
    assert.equal(peer.next_key_version, 2);
    assert.equal(peer.next_key_activate_at, "2030-01-01T01:00:00.000Z");

    // A retry of the same key returns the same response.
    const again = await post(body({ public_key: key }));
    assert.equal(again.statusCode, 200, again.body);
    assert.deepEqual(again.json().data, response.json().data);
  });

  it("clears a rotation request", async () => {
    await ok(admin, "POST", "/v1/wireguard/networks/office/peers/alpha/request-rotation");
    const requested = await ok(admin, "GET", "/v1/wireguard/networks/office/peers/alpha");
    assert.equal(requested.rotation_requested, true);
    const response = await post(body());
    assert.equal(response.statusCode, 200, response.body);
    const peer = await ok(admin, "GET", "/v1/wireguard/networks/office/peers/alpha");
    assert.equal(peer.rotation_requested, false);
    assert.equal(peer.rotation_requested_at, null);
  });

  const rejected: {
    name: string;
    request: () => Promise<LightMyRequestResponse>;
    status: number;
    code: string;
    field?: string;
  }[] = [
    {
      name: "fail without device",
      request: () => post({ nonsense: true }, null),
      status: 401,
      code: "device_authentication_failed",
    },
    {
      name: "fail peer of another device",
      request: () => post(body({ peer: "bravo" })),
      status: 403,
      code: "permission_denied",
    },
    {
      name: "fail unknown peer",
      request: () => post(body({ peer: "nobody" })),
      status: 403,
      code: "permission_denied",
    },
    {
      name: "fail unknown network",
      request: () => post(body({ network: "nowhere" })),
      status: 403,
      code: "permission_denied",
    },
    {
      name: "fail unknown mount",
      request: () => post(body({ mount: "elsewhere" })),
      status: 403,
      code: "permission_denied",
    },
    {
      name: "fail invalid mount",
      request: () => post(body({ mount: "Bad Mount" })),
      status: 400,
      code: "invalid_field",
      field: "mount",
    },
    {
      name: "fail invalid network name",
      request: () => post(body({ network: "-office" })),
      status: 400,
      code: "invalid_field",
      field: "network",
    },
    {
      name: "fail missing key",
      request: () => post({ mount: "wireguard", network: "office", peer: "alpha" }),
      status: 400,
      code: "missing_field",
      field: "public_key",
    },
    {
      name: "fail malformed key",
      request: () => post(body({ public_key: "not a key" })),
      status: 400,
      code: "invalid_field",
      field: "public_key",
    },
    {
      name: "fail all-zero key",
      request: () => post(body({ public_key: Buffer.alloc(32).toString("base64") })),
      status: 400,
      code: "invalid_field",
      field: "public_key",
    },
    {
      name: "fail key of another peer",
      request: async () => {
        const bravo = await ok(admin, "GET", "/v1/wireguard/networks/office/peers/bravo");
        return post(body({ public_key: bravo.public_key }));
      },
      status: 409,
      code: "already_exists",
      field: "public_key",
    },
    {
      name: "fail unknown field",
      request: () => post(body({ generate_key: true })),
      status: 400,
      code: "unknown_field",
      field: "generate_key",
    },
    {
      name: "fail number as key",
      request: () => post(body({ public_key: 42 })),
      status: 400,
      code: "invalid_field",
      field: "public_key",
    },
    {
      name: "fail sealed",
      request: async () => {
        sealed = true;
        try {
          return await post(body());
        } finally {
          sealed = false;
        }
      },
      status: 503,
      code: "sealed",
    },
  ];

  for (const testCase of rejected) {
    it(testCase.name, async () => {
      const before = await ok(admin, "GET", "/v1/wireguard/networks/office");
      const response = await testCase.request();
      assert.equal(response.statusCode, testCase.status, response.body);
      assert.equal(response.json().code, testCase.code);
      if (testCase.field !== undefined) assert.equal(response.json().field, testCase.field);
      const after = await ok(admin, "GET", "/v1/wireguard/networks/office");
      assert.equal(after.revision, before.revision, "a rejected request changed the network");
    });
  }
});
