import type { AcmeConfig } from "../config.ts";
import type { ProblemDocument } from "../problems.ts";
import type { ChallengeType, Identifier } from "../records.ts";
import { validateDns01 } from "./dns01.ts";
import { ValidationFailure } from "./failure.ts";
import { validateHttp01 } from "./http01.ts";
import { validateTlsAlpn01 } from "./tls-alpn01.ts";

/** One challenge to validate. */
export interface ValidationTarget {
  type: ChallengeType;
  /** The authorization's identifier, without a wildcard prefix. */
  identifier: Identifier;
  token: string;
  keyAuthorization: string;
}

/** Checks a challenge; returns undefined when it passed and the problem to store when it failed. */
export interface ChallengeValidator {
  validate(target: ValidationTarget, config: AcmeConfig): Promise<ProblemDocument | undefined>;
}

/**
 * The validator that connects to the client's servers (http-01,
 * tls-alpn-01) or queries DNS (dns-01), within the ACME settings'
 * allowed networks, hosts map, ports and time limit.
 */
export class NetworkValidator implements ChallengeValidator {
  async validate(
    target: ValidationTarget,
    config: AcmeConfig,
  ): Promise<ProblemDocument | undefined> {
    const timeoutMs = config.validation_timeout_seconds * 1000;
    const signal = AbortSignal.timeout(timeoutMs);
    try {
      switch (target.type) {
        case "http-01":
          await validateHttp01(target, config, signal, timeoutMs);
          break;
        case "tls-alpn-01":
          await validateTlsAlpn01(target, config, signal, timeoutMs);
          break;
        case "dns-01":
          await validateDns01(target, config, timeoutMs);
          break;
      }
      return undefined;
    } catch (error) {
      if (error instanceof ValidationFailure) return error.toDocument();
      throw error;
    }
  }
}
