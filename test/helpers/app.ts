import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from "fastify";
import pino from "pino";
import { buildApp } from "../../src/api/app.ts";
import { Keyward } from "../../src/core/keyward.ts";
import { openSqliteStorage } from "../../src/storage/index.ts";

export interface TestApp {
  app: FastifyInstance;
  keyward: Keyward;
  rootToken: string;
  /** The unseal shares, hex-encoded. */
  shares: string[];
  dataDir: string;
  /** Sends a request with the root token unless `token` is given (null sends none). */
  request(options: InjectOptions & { token?: string | null }): Promise<LightMyRequestResponse>;
  close(): Promise<void>;
}

export interface TestAppOptions {
  maxRequestBytes?: number;
  /** Leave the server uninitialised. */
  uninitialised?: boolean;
  shares?: number;
  threshold?: number;
  /** Open Keyward as `keyward server --dev` does. */
  devMode?: boolean;
}

/** Builds a Keyward API on a real SQLite file in a temporary folder, initialised and unsealed, for inject(). */
export async function createTestApp(options: TestAppOptions = {}): Promise<TestApp> {
  const dataDir = mkdtempSync(join(tmpdir(), "keyward-test-"));
  const storage = await openSqliteStorage({ path: join(dataDir, "keyward.db") });
  const logger = pino({ level: process.env.KEYWARD_TEST_LOG ?? "silent" });
  const keyward = await Keyward.open({ storage, logger, devMode: options.devMode === true });
  let rootToken = "";
  let shares: string[] = [];
  if (!options.uninitialised) {
    const threshold = options.threshold ?? 1;
    const result = await keyward.init({ shares: options.shares ?? 1, threshold });
    rootToken = result.rootToken;
    shares = result.keysHex;
    for (const share of shares.slice(0, threshold)) await keyward.seal.submitUnsealShare(share);
  }
  const app = await buildApp({
    keyward,
    logger,
    maxRequestBytes: options.maxRequestBytes ?? 1024 * 1024,
  });
  await app.ready();

  return {
    app,
    keyward,
    rootToken,
    shares,
    dataDir,
    request({ token, headers, ...rest }) {
      const sent = token === null ? undefined : (token ?? rootToken);
      return app.inject({
        ...rest,
        headers: { ...(sent ? { "x-vault-token": sent } : {}), ...headers },
      });
    },
    async close() {
      await app.close();
      await keyward.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
