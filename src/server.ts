import { readFileSync } from "node:fs";
import type { FastifyInstance } from "fastify";
import pino, { type Logger } from "pino";
import { buildApp } from "./api/app.ts";
import { resolveNodeId } from "./cluster/node-id.ts";
import type { Pkcs11TokenConfig, SealPkcs11Config, ServerConfig } from "./config.ts";
import { type DevModeResult, startDevMode } from "./core/dev-mode.ts";
import { Keyward } from "./core/keyward.ts";
import { verifyPool } from "./crypto/verify-pool.ts";
import { KeywardError } from "./errors.ts";
import type { HsmToken } from "./hsm/token.ts";
import { createKmipService, type KmipService } from "./kmip/server/service.ts";
import { createPkcs11SealManager } from "./seal/pkcs11-seal.ts";
import type { RootKeyWrapper } from "./seal/wrapped-root-key.ts";
import { describeStorageLocation, openStorage } from "./storage/index.ts";
import type { Storage } from "./storage/storage.ts";
import { VERSION } from "./version.ts";

/** How often a closing server closes the keep-alive connections that became idle, in milliseconds. */
const IDLE_SWEEP_MS = 50;
/**
 * How long a closing server waits for the requests in flight before it
 * closes their connections, in milliseconds. It stays below the CLI's
 * shutdown limit, so a client that never finishes its request does not
 * turn every shutdown into a forced exit.
 */
const DRAIN_LIMIT_MS = 10_000;

export interface RunningServer {
  app: FastifyInstance;
  keyward: Keyward;
  /** The base URL the server listens on, such as `http://127.0.0.1:8200`. */
  address: string;
  /** Present in dev mode: the root token and where the unseal key is kept. */
  dev?: DevModeResult;
  /** The KMIP port bound, when KMIP is enabled. */
  kmipPort?: number;
  close(): Promise<void>;
}

export function createLogger(config: Pick<ServerConfig, "logLevel">): Logger {
  return pino({
    level: config.logLevel,
    base: { service: "keyward" },
    // Defence in depth: these never belong in a log line even if a caller passes them.
    redact: {
      paths: ["req.headers", "headers", "token", "plaintext", "*.token", "*.plaintext"],
      censor: "[redacted]",
    },
  });
}

/**
 * Opens the PKCS#11 seal's token: loads the library, finds the token and
 * logs in. The PKCS#11 code is imported here, so a server without a
 * PKCS#11 seal never loads the native addon.
 */
async function openRootKeyWrapper(
  config: SealPkcs11Config,
  logger: Logger,
): Promise<RootKeyWrapper> {
  const { openHsmRootKeyWrapper } = await import("./seal/hsm-root-key-wrapper.ts");
  const wrapper = await openHsmRootKeyWrapper({
    library: config.library,
    tokenLabel: config.tokenLabel,
    keyLabel: config.keyLabel,
    pin: config.readPin(),
    logger: logger.child({ component: "hsm" }),
  });
  logger.info(
    { library: config.library, tokenLabel: config.tokenLabel, keyLabel: config.keyLabel },
    "logged in to the PKCS#11 seal's token",
  );
  return wrapper;
}

/**
 * Opens the token that engines keep HSM-held keys in: loads the library,
 * finds the token and logs in, as for the seal, whose token it may be.
 */
async function openEngineHsm(config: Pkcs11TokenConfig, logger: Logger): Promise<HsmToken> {
  const { HsmToken } = await import("./hsm/token.ts");
  const token = await HsmToken.open({
    library: config.library,
    tokenLabel: config.tokenLabel,
    pin: config.readPin(),
    logger: logger.child({ component: "hsm" }),
  });
  logger.info(
    { library: config.library, tokenLabel: config.tokenLabel },
    "logged in to the engines' HSM token",
  );
  return token;
}

/**
 * Checks that the storage was initialised with the configured seal type
 * and, with a PKCS#11 seal, unseals with the root key the HSM unwraps.
 * Other failures to read the seal status surface at the first request, as
 * they always have.
 */
async function startSeal(keyward: Keyward): Promise<void> {
  let initialised: boolean;
  try {
    initialised = (await keyward.seal.status()).initialized;
  } catch (error) {
    if (error instanceof KeywardError && error.code === "seal_mismatch") throw error;
    return;
  }
  if (initialised && keyward.seal.autoUnseal !== undefined) await keyward.seal.autoUnseal();
}

/** Opens storage, builds the API and starts listening. */
export async function startServer(
  config: ServerConfig,
  logger = createLogger(config),
): Promise<RunningServer> {
  const nodeId = resolveNodeId(config.nodeId, config.dataDir);
  verifyPool.reportFailuresTo((error) =>
    logger.warn(
      { err: error },
      "signature check worker stopped: checks run on the event loop until it restarts",
    ),
  );
  // Opened before anything else, so a wrong PIN or a missing token stops the server at once.
  const rootKeyWrapper =
    config.sealPkcs11 === undefined
      ? undefined
      : await openRootKeyWrapper(config.sealPkcs11, logger);
  let engineHsm: HsmToken | undefined;
  const closeHsms = async () => {
    await engineHsm?.close();
    await rootKeyWrapper?.close();
  };
  let storage: Storage;
  try {
    if (config.hsmPkcs11 !== undefined) {
      engineHsm = await openEngineHsm(config.hsmPkcs11, logger);
    }
    storage = await openStorage(config.storage, {
      logger,
      nodeId,
      ...(config.storageCaFile === undefined ? {} : { caFile: config.storageCaFile }),
    });
  } catch (error) {
    await closeHsms();
    throw error;
  }
  // Known once the server listens; until then heartbeats report the configured one or none.
  let apiAddress = config.apiAddress ?? "";
  const keyward = await Keyward.open({
    storage,
    logger,
    jobIntervalMs: config.jobIntervalMs,
    devMode: config.dev,
    nodeId,
    apiAddress: () => apiAddress,
    version: VERSION,
    ...(engineHsm === undefined ? {} : { hsm: engineHsm }),
    ...(rootKeyWrapper === undefined
      ? {}
      : {
          createSeal: (sealStorage, options) =>
            createPkcs11SealManager(sealStorage, rootKeyWrapper, options),
        }),
  });
  try {
    await startSeal(keyward);
  } catch (error) {
    await keyward.close();
    await closeHsms();
    throw error;
  }

  let dev: DevModeResult | undefined;
  if (config.dev) dev = await startDevMode(keyward, config.dataDir, config.devRootToken);

  const kmip: KmipService | undefined =
    config.kmip === undefined
      ? undefined
      : createKmipService({ keyward, config: config.kmip, nodeId, logger, hsm: engineHsm });

  const https =
    config.tlsCertFile && config.tlsKeyFile
      ? { cert: readFileSync(config.tlsCertFile), key: readFileSync(config.tlsKeyFile) }
      : undefined;
  const app = await buildApp({
    keyward,
    logger,
    maxRequestBytes: config.maxRequestBytes,
    version: VERSION,
    ...(https ? { https } : {}),
    ...(kmip === undefined ? {} : { kmip: kmip.credentials }),
  });

  await app.listen({ host: config.host, port: config.port });
  const bound = app.server.address();
  const port = typeof bound === "object" && bound ? bound.port : config.port;
  const host = config.host.includes(":") ? `[${config.host}]` : config.host;
  const address = `${https ? "https" : "http"}://${host}:${port}`;
  apiAddress = config.apiAddress ?? address;
  logger.info(
    {
      address,
      nodeId,
      storage: storage.kind,
      storageLocation: describeStorageLocation(config.storage),
      seal: keyward.seal.type,
      dev: config.dev,
    },
    "server started",
  );

  let kmipPort: number | undefined;
  if (kmip !== undefined && config.kmip !== undefined) {
    kmipPort = await kmip.start();
    logger.info(
      {
        host: config.kmip.host,
        port: kmipPort,
        certificates: config.kmip.tlsCertFile === undefined ? "keyward-ca" : "files",
      },
      "KMIP server started",
    );
  }

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      logger.info("server stopping");
      await kmip?.close();
      // The HTTP server waits for requests in flight, long polls included.
      keyward.endLongPolls();
      // A kept-alive connection whose request finished during the close
      // would hold it until the connection idles out, so the sweeps close
      // each connection as soon as it is idle.
      const idleSweep = setInterval(() => app.server.closeIdleConnections(), IDLE_SWEEP_MS);
      // A client that never finishes its request would hold the close for good.
      const drainLimit = setTimeout(() => {
        logger.warn(
          { limitMs: DRAIN_LIMIT_MS },
          "closing the HTTP connections whose requests did not finish during shutdown",
        );
        app.server.closeAllConnections();
      }, DRAIN_LIMIT_MS);
      try {
        await app.close();
      } finally {
        clearInterval(idleSweep);
        clearTimeout(drainLimit);
      }
      await keyward.close();
      // Finalises the PKCS#11 library once every session is closed.
      await closeHsms();
      logger.info("server stopped");
    })();
    return closing;
  };
  return {
    app,
    keyward,
    address,
    close,
    ...(dev ? { dev } : {}),
    ...(kmipPort === undefined ? {} : { kmipPort }),
  };
}
