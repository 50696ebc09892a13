import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from "fastify";
import pino from "pino";
import { buildApp } from "../../src/api/app.ts";
import { Keyward } from "../../src/core/keyward.ts";
import { openSqliteStorage } from "../../src/storage/index.ts";
import { CountingStorage } from "../helpers/counting-storage.ts";

/** A Keyward API on a SQLite file behind a row-counting storage wrapper, for inject(). */
export interface PkiScaleApp {
  app: FastifyInstance;
  keyward: Keyward;
  storage: CountingStorage;
  /** The unseal share, hex, to open the same file again. */
  share: string;
  /** Sends a request with the root token. */
  request(options: InjectOptions): Promise<LightMyRequestResponse>;
  /** Closes the API and Keyward, which releases the SQLite file; the file stays. */
  close(): Promise<void>;
}

/**
 * Opens Keyward on the SQLite file at `path` and unseals it: with `unseal`
 * (the share and root token of an earlier run) the file is opened again,
 * otherwise it is initialised. The jobs' interval is one day, so after their
 * run at unseal only the test starts a sweep.
 */
export async function openPkiScaleApp(
  path: string,
  unseal?: { share: string; rootToken: string },
): Promise<PkiScaleApp & { rootToken: string }> {
  const storage = new CountingStorage(await openSqliteStorage({ path }));
  const logger = pino({ level: process.env.KEYWARD_TEST_LOG ?? "silent" });
  const keyward = await Keyward.open({ storage, logger, jobIntervalMs: 24 * 3600 * 1000 });
  let share = unseal?.share ?? "";
  let rootToken = unseal?.rootToken ?? "";
  if (unseal === undefined) {
    const result = await keyward.init({ shares: 1, threshold: 1 });
    share = result.keysHex[0] as string;
    rootToken = result.rootToken;
  }
  await keyward.seal.submitUnsealShare(share);
  const app = await buildApp({ keyward, logger, maxRequestBytes: 1024 * 1024 });
  await app.ready();
  return {
    app,
    keyward,
    storage,
    share,
    rootToken,
    request: (options) =>
      app.inject({ ...options, headers: { "x-vault-token": rootToken, ...options.headers } }),
    async close() {
      await app.close();
      await keyward.close();
    },
  };
}

/** Formats milliseconds for the timing lines the scale tests print. */
export function ms(milliseconds: number): string {
  return `${milliseconds.toFixed(1)} ms`;
}
