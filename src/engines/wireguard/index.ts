export { generateKeyPair, publicKeyOf, validatePublicKey } from "./keys.ts";
export { PRIVATE_KEY_PLACEHOLDER } from "./render.ts";
export { registerWireguardRoutes, type WireguardServiceResolver } from "./routes.ts";
export { WireguardService } from "./service.ts";
export type * from "./types.ts";
