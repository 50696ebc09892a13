export { WireguardDeviceSource } from "./device-source.ts";
export { createWireguardJobs, type WireguardJob } from "./jobs.ts";
export { generateKeyPair, publicKeyOf, validatePublicKey } from "./keys.ts";
export { PRIVATE_KEY_PLACEHOLDER } from "./render.ts";
export { registerWireguardRoutes, type WireguardServiceResolver } from "./routes.ts";
export { type DeviceKeyRegistration, WireguardService } from "./service.ts";
export { effectiveView, type NetworkView } from "./staging.ts";
export type * from "./types.ts";
