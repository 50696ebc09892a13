import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, type TestContext } from "node:test";
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from "fastify";
import pino from "pino";
import { buildApp } from "../../../src/api/app.ts";
import { Keyward } from "../../../src/core/keyward.ts";
import type { HsmToken } from "../../../src/hsm/token.ts";
import { openSqliteStorage } from "../../../src/storage/index.ts";
import { requireSoftHsm, type SoftHsm, softHsmInstalled } from "../../hsm/softhsm.ts";
import { openSoftHsmToken } from "../../hsm/softhsm-token.ts";

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
  /** Sends a request with the root token to `/v1/{path}`, and returns the status and the parsed body (undefined when empty). */
  call(
    method: "GET" | "POST" | "DELETE",
    path: string,
    payload?: object,
    // biome-ignore lint/suspicious/noExplicitAny: each route returns its own shape; tests read fields directly.
  ): Promise<{ status: number; body: any }>;
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
  const softHsm = await openSoftHsmToken([HSM_TOKEN_LABEL], HSM_PIN);
  const { hsm, token } = softHsm;

  const dataDir = mkdtempSync(join(tmpdir(), "keyward-hsm-keys-"));
  const storage = await openSqliteStorage({ path: join(dataDir, "keyward.db") });
  const logger = pino({ level: process.env.KEYWARD_TEST_LOG ?? "silent" });
  const keyward = await Keyward.open({ storage, logger, hsm: token });
  const init = await keyward.init({ shares: 1, threshold: 1 });
  for (const share of init.keysHex) await keyward.seal.submitUnsealShare(share);
  const app = await buildApp({ keyward, logger, maxRequestBytes: 1024 * 1024 });
  await app.ready();

  const request = ({ headers, ...rest }: InjectOptions) =>
    app.inject({ ...rest, headers: { "x-vault-token": init.rootToken, ...headers } });

  return {
    app,
    keyward,
    hsm,
    token,
    request,
    async call(method, path, payload) {
      const response = await request({
        method,
        url: `/v1/${path}`,
        ...(payload === undefined ? {} : { payload }),
      });
      return {
        status: response.statusCode,
        body: response.body === "" ? undefined : response.json(),
      };
    },
    listObjects() {
      return hsm.listObjects(HSM_TOKEN_LABEL, HSM_PIN);
    },
    async close() {
      await app.close();
      await keyward.close();
      await softHsm.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** An `HsmTestApp` that `useHsmTestApp` creates for the tests of one suite. */
export interface HsmTestAppHooks {
  /** The app; throws when SoftHSM2 is missing, so call it after `ready`. */
  readonly app: HsmTestApp;
  /** Returns the app, or skips the test (failing it in CI) and returns undefined when SoftHSM2 is missing. */
  ready(t: TestContext): HsmTestApp | undefined;
}

/**
 * Registers hooks in the current suite that create an `HsmTestApp` before
 * its tests, when SoftHSM2 is installed, and close it after them.
 */
export function useHsmTestApp(): HsmTestAppHooks {
  let fixture: HsmTestApp | undefined;
  before(async () => {
    if (softHsmInstalled()) fixture = await createHsmTestApp();
  });
  after(async () => {
    await fixture?.close();
  });
  return {
    get app() {
      if (fixture === undefined)
        throw new Error("the HSM test app was not created: SoftHSM2 is missing");
      return fixture;
    },
    ready(t) {
      return requireSoftHsm(t) ? fixture : undefined;
    },
  };
}

/** Returns the flags of an object's `Access:` line in pkcs11-tool's listing, such as "never extractable". */
export function accessFlags(block: string): string[] {
  const line = /Access:\s+(.*)/.exec(block)?.[1] ?? "";
  return line.split(",").map((flag) => flag.trim());
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
