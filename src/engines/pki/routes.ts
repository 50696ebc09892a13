import type { FastifyInstance, FastifyRequest } from "fastify";
import { registerAcmeRoutes } from "./routes/acme.ts";
import { registerAcmeAdminRoutes } from "./routes/acme-admin.ts";
import { registerCaRoutes } from "./routes/ca.ts";
import { registerCertificateRoutes } from "./routes/certs.ts";
import { registerIssueRoutes } from "./routes/issue.ts";
import { registerIssuerRoutes } from "./routes/issuers.ts";
import { registerOcspRoutes } from "./routes/ocsp.ts";
import { registerRevocationRoutes } from "./routes/revocation.ts";
import { registerRoleRoutes } from "./routes/roles.ts";
import { registerRotationRoutes } from "./routes/rotation.ts";
import type { PkiServiceResolver } from "./routes/shared.ts";
import { registerTidyRoutes } from "./routes/tidy.ts";

export type { PkiServiceResolver } from "./routes/shared.ts";

export interface PkiRouteOptions {
  /** Returns the service of the request's mount. */
  serviceFor: PkiServiceResolver;
  /** Rejects a request whose token lacks `sudo` on its path; `sign-verbatim` calls it. */
  requireSudo: (request: FastifyRequest) => Promise<void>;
}

/**
 * Registers the PKI engine's routes relative to the mount's prefix. The
 * CA, CRL and OCSP download routes are marked public (`config.public`), as
 * in Vault, and so are the ACME routes, which authenticate with JWS. The
 * OCSP route adds a content-type parser for `application/ocsp-request` to
 * this plugin's scope.
 */
export async function registerPkiRoutes(
  app: FastifyInstance,
  options: PkiRouteOptions,
): Promise<void> {
  await registerCaRoutes(app, options.serviceFor);
  await registerIssuerRoutes(app, options.serviceFor);
  await registerRoleRoutes(app, options.serviceFor);
  await registerIssueRoutes(app, options.serviceFor, options.requireSudo);
  await registerCertificateRoutes(app, options.serviceFor);
  await registerRevocationRoutes(app, options.serviceFor);
  registerOcspRoutes(app, options.serviceFor);
  registerTidyRoutes(app, options.serviceFor);
  await registerAcmeRoutes(app, options.serviceFor);
  registerAcmeAdminRoutes(app, options.serviceFor);
  registerRotationRoutes(app, options.serviceFor);
}
