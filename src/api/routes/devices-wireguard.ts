import type { FastifyInstance, FastifyRequest } from "fastify";
import type { Keyward } from "../../core/keyward.ts";
import type { DeviceRef } from "../../devices/artifacts.ts";
import { authenticateDevice } from "../../devices/authentication.ts";
import type { WireguardService } from "../../engines/wireguard/index.ts";
import { KeywardError } from "../../errors.ts";
import { sendData } from "../envelope.ts";

/** Mount paths as the mount table accepts them. */
const MOUNT_PATH = /^[a-z0-9][a-z0-9_-]{0,63}$/;

/** Dependencies of the device WireGuard routes. */
export interface DeviceWireguardRouteOptions {
  /** Returns the device that sent the request, or throws `device_authentication_failed`. */
  authenticate(request: FastifyRequest): Promise<DeviceRef>;
  /** Returns the WireGuard service mounted at `mount`, or undefined. Throws `sealed` while sealed. */
  serviceFor(mount: string): WireguardService | undefined;
}

interface KeyBody {
  mount: string;
  network: string;
  peer: string;
  public_key: string;
}

const keyBody = {
  type: "object",
  additionalProperties: false,
  required: ["mount", "network", "peer", "public_key"],
  properties: {
    mount: { type: "string", minLength: 1, maxLength: 64, description: "The WireGuard mount." },
    network: { type: "string", minLength: 1, maxLength: 64, description: "Network name." },
    peer: { type: "string", minLength: 1, maxLength: 64, description: "Peer name." },
    public_key: {
      type: "string",
      maxLength: 256,
      description:
        "The new X25519 public key the agent made, as `wg pubkey` prints it (44 characters of base64).",
    },
  },
} as const;

/**
 * Registers the device API's WireGuard routes with explicit dependencies.
 * `registerDeviceWireguardRoutes` wires them to the running server.
 */
export async function registerDeviceWireguardKeyRoute(
  app: FastifyInstance,
  options: DeviceWireguardRouteOptions,
): Promise<void> {
  const devices = new WeakMap<FastifyRequest, DeviceRef>();

  app.route<{ Body: KeyBody }>({
    // PUT too, as for every write of the API.
    method: ["POST", "PUT"],
    url: "/v1/devices/self/wireguard/key",
    config: { public: true },
    schema: {
      tags: ["devices"],
      summary: "Register a WireGuard key made by the device's agent.",
      description:
        "Mutual TLS with the device's identity certificate; no token. The peer's device_id must be the device's name. A peer's first key is active at once; a later key is staged for the network's rotation_notice. Registering the staged key again changes nothing.",
      body: keyBody,
    },
    // Authentication comes before schema validation, so a caller that is no
    // device learns nothing about the route's fields from a 400.
    preValidation: async (request) => {
      devices.set(request, await options.authenticate(request));
    },
    handler: async (request, reply) => {
      const device = devices.get(request);
      if (device === undefined) {
        throw new KeywardError("internal", "internal error", {
          details: { reason: "device route ran without an authenticated device" },
        });
      }
      const { mount, network, peer, public_key: publicKey } = request.body;
      if (!MOUNT_PATH.test(mount)) {
        throw new KeywardError(
          "invalid_field",
          `"mount" must be a mount path: 1-64 characters of a-z, 0-9, '-' and '_'`,
          { field: "mount" },
        );
      }
      const service = options.serviceFor(mount);
      if (!service) {
        throw new KeywardError(
          "permission_denied",
          `peer "${peer}" of WireGuard network "${network}" on mount "${mount}" is not bound to device "${device.name}"`,
        );
      }
      const registered = await service.registerDeviceKey(network, peer, device.name, publicKey);
      return sendData(request, reply, {
        key_version: registered.keyVersion,
        activate_at: registered.activateAt,
      });
    },
  });
}

/**
 * Registers `POST /v1/devices/self/wireguard/key`: the agent of a device
 * registers the public key it made for one of its peers. The route is
 * public (no token), and the device authenticates with its identity
 * certificate over mutual TLS.
 */
export async function registerDeviceWireguardRoutes(
  app: FastifyInstance,
  keyward: Keyward,
): Promise<void> {
  await registerDeviceWireguardKeyRoute(app, {
    authenticate: authenticateDevice,
    serviceFor: (mount) => {
      if (keyward.sealed) throw new KeywardError("sealed", "Keyward is sealed");
      return keyward.wireguard(mount);
    },
  });
}
