export { registerSshRoutes, type SshServiceResolver } from "./routes.ts";
export { SshService } from "./service.ts";
export type * from "./types.ts";
