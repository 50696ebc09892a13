import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from "fastify";
import pino from "pino";
import { buildApp } from "../../../src/api/app.ts";
import { Keyward } from "../../../src/core/keyward.ts";
import { HsmToken } from "../../../src/hsm/token.ts";
import { openSqliteStorage } from "../../../src/storage/index.ts";
import { SOFTHSM_LIBRARY, SoftHsm } from "../../hsm/softhsm.ts";

/** The label of the token the fixture creates, and its user PIN. */
export const HSM_TOKEN_LABEL = "keyward-engines";
export const HSM_PIN = "engine-pin-3141";

/**
 * A Keyward API over a real SQLite file whose engines keep HSM-held keys in
 * a SoftHSM2 token the fixture creates, initialised and unsealed, for
 * `inject()`.
 */
export interface HsmTestApp {
  app: FastifyInstance;
  keyward: Keyward;
  hsm: SoftHsm;
  token: HsmToken;
  /** Sends a request with the root token. */
  request(options: InjectOptions): Promise<LightMyRequestResponse>;
  /** Lists the token's objects with pkcs11-tool, logged in as the user. */
  listObjects(): { status: number | null; output: string };
  close(): Promise<void>;
}

/**
 * Creates the SoftHSM2 installation, the token and the app. SoftHSM reads
 * SOFTHSM2_CONF when the library initialises, so this sets it for the
 * process; `close` restores it.
 */
export async function createHsmTestApp(): Promise<HsmTestApp> {
  const hsm = SoftHsm.create();
  hsm.initToken(HSM_TOKEN_LABEL, HSM_PIN);
  const previousConfig = process.env.SOFTHSM2_CONF;
  process.env.SOFTHSM2_CONF = hsm.configFile;
  const token = await HsmToken.open({
    library: SOFTHSM_LIBRARY,
    tokenLabel: HSM_TOKEN_LABEL,
    pin: HSM_PIN,
  });

  const dataDir = mkdtempSync(join(tmpdir(), "keyward-hsm-keys-"));
  const storage = await openSqliteStorage({ path: join(dataDir, "keyward.db") });
  const logger = pino({ level: process.env.KEYWARD_TEST_LOG ?? "silent" });
  const keyward = await Keyward.open({ storage, logger, hsm: token });
  const init = await keyward.init({ shares: 1, threshold: 1 });
  for (const share of init.keysHex) await keyward.seal.submitUnsealShare(share);
  const app = await buildApp({ keyward, logger, maxRequestBytes: 1024 * 1024 });
  await app.ready();

  return {
    app,
    keyward,
    hsm,
    token,
    request({ headers, ...rest }) {
      return app.inject({ ...rest, headers: { "x-vault-token": init.rootToken, ...headers } });
    },
    listObjects() {
      return hsm.pkcs11Tool([
        "--token-label",
        HSM_TOKEN_LABEL,
        "--login",
        "--pin",
        HSM_PIN,
        "--list-objects",
      ]);
    },
    async close() {
      await app.close();
      await keyward.close();
      await token.close();
      rmSync(dataDir, { recursive: true, force: true });
      hsm.remove();
      if (previousConfig === undefined) delete process.env.SOFTHSM2_CONF;
      else process.env.SOFTHSM2_CONF = previousConfig;
    },
  };
}

/**
 * Splits `pkcs11-tool --list-objects` output into one block per object,
 * each starting with its object line ("Secret Key Object; …").
 */
export function objectBlocks(output: string): string[] {
  return output
    .split(/\n(?=\S[^\n]*Object;)/)
    .filter((block) => /Object;/.test(block.split("\n")[0] ?? ""));
}

/** Returns the blocks of `objectBlocks` whose label is exactly `label`. */
export function objectsLabelled(output: string, label: string): string[] {
  return objectBlocks(output).filter((block) =>
    block.split("\n").some((line) => line.trim() === `label:      ${label}`),
  );
}
