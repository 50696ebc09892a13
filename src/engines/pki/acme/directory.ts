import { eabPolicyOf } from "./config.ts";
import type { AcmeContext, AcmeResponse, AcmeScope } from "./context.ts";
import { issuancePolicy } from "./policy.ts";

/**
 * Serves a directory (RFC 8555 section 7.1.1), with the renewalInfo URL of
 * RFC 9773. It fails with `unauthorized` when ACME is disabled or the
 * directory is not served, so clients learn that before registering.
 */
export async function directory(context: AcmeContext, scope: AcmeScope): Promise<AcmeResponse> {
  await issuancePolicy(context.pki, scope.config, scope.directory);
  const { urls } = scope;
  return {
    status: 200,
    body: {
      newNonce: urls.newNonce,
      newAccount: urls.newAccount,
      newOrder: urls.newOrder,
      revokeCert: urls.revokeCert,
      keyChange: urls.keyChange,
      renewalInfo: urls.renewalInfo,
      meta: {
        externalAccountRequired: eabPolicyOf(scope.config, scope.directory) !== "not-required",
      },
    },
  };
}
