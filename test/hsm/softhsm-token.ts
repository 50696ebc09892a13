import { HsmToken } from "../../src/hsm/token.ts";
import { SOFTHSM_LIBRARY, SoftHsm } from "./softhsm.ts";

/** A SoftHSM installation that this process uses, and a logged-in session with one of its tokens. */
export interface SoftHsmToken {
  hsm: SoftHsm;
  token: HsmToken;
  /** Closes the session and removes the installation (see `SoftHsm.remove`). */
  close(): Promise<void>;
}

/**
 * Creates a SoftHSM installation with a token for each of `labels`, all
 * with the user PIN `pin`, points this process at it (`useInProcess`) and
 * opens the first token. Kept apart from softhsm.ts, so tests that only
 * start server processes do not load the PKCS#11 addon.
 */
export async function openSoftHsmToken(
  labels: [string, ...string[]],
  pin: string,
): Promise<SoftHsmToken> {
  const hsm = SoftHsm.withTokens(labels, pin);
  hsm.useInProcess();
  let token: HsmToken;
  try {
    token = await HsmToken.open({ library: SOFTHSM_LIBRARY, tokenLabel: labels[0], pin });
  } catch (error) {
    hsm.remove();
    throw error;
  }
  return {
    hsm,
    token,
    async close() {
      await token.close();
      hsm.remove();
    },
  };
}
