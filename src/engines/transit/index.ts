export { registerTransitRoutes, type ServiceResolver } from "./routes.ts";
export { TransitService } from "./service.ts";
export type * from "./types.ts";
