export { createPkiJobs } from "./jobs.ts";
export { type PkiRouteOptions, type PkiServiceResolver, registerPkiRoutes } from "./routes.ts";
export { PkiService } from "./service.ts";
