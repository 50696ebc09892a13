/**
 * Assembles the KMIP server of `keyward server`: the object store, the
 * roles and credentials, the dispatcher and the listener, and keeps the
 * listener's certificate in step with the seal.
 *
 * With the three TLS files, the listener uses them from the start and
 * client certificates map to roles by their CN. Without them, the server
 * certificate comes from Keyward's KMIP CA: the listener is bound at start
 * but rejects every handshake until an unseal loads the certificate
 * (making the CA and the certificate when needed), and again after seal.
 * While unsealed, the certificate is checked every hour and replaced
 * inside its renewal window.
 */
import { readFileSync } from "node:fs";
import type { Logger } from "pino";
import type { KmipConfig } from "../../config.ts";
import type { Keyward } from "../../core/keyward.ts";
import { KeywardError } from "../../errors.ts";
import type { HsmToken } from "../../hsm/token.ts";
import {
  KMIP_TLS_PREFIX,
  KmipCertificateAuthority,
  serverCertificateNames,
} from "./certificate-authority.ts";
import { KmipCredentials } from "./credentials.ts";
import { KmipDispatcher } from "./dispatcher.ts";
import { KmipOperationError } from "./errors.ts";
import { KmipIdentityResolver } from "./identity.ts";
import { KMIP_CREDENTIALS_PREFIX, KMIP_ROLES_PREFIX, KmipIdentityStore } from "./identity-store.ts";
import { type KmipListenerTls, type KmipServer, startKmipServer } from "./listener.ts";
import { KmipManagedKeySync } from "./managed-key-sync.ts";
import { type KmipKeyMounts, KmipManagedKeys } from "./managed-keys.ts";
import { KMIP_OBJECTS_PREFIX, KmipObjectStore } from "./object-store.ts";

/** How often the server certificate's expiry is checked while unsealed. */
const RENEWAL_CHECK_MS = 60 * 60 * 1000;

export interface KmipServiceOptions {
  keyward: Keyward;
  config: KmipConfig;
  /** This node's id; each node keeps its own server certificate. */
  nodeId: string;
  logger: Logger;
  /** The engines' HSM, where keys created with Extractable false are generated. */
  hsm?: HsmToken | undefined;
}

export interface KmipService {
  /** The roles and credentials, for the `sys/kmip/` routes. */
  readonly credentials: KmipCredentials;
  /** The checks of the managed keys of KMIP objects (see managed-key-sync.ts). */
  readonly managedKeySync: KmipManagedKeySync;
  /**
   * Binds the listener and returns the port bound. When unsealed, it
   * first indexes the Names of objects stored before the Name index
   * existed (see name-index.ts), and makes the objects of versions that
   * transit added while the service was not running (see
   * managed-key-sync.ts).
   */
  start(): Promise<number>;
  /** Stops the listener and the renewal checks. */
  close(): Promise<void>;
}

/** Builds the KMIP server's parts; `start` binds the listener. */
export function createKmipService(options: KmipServiceOptions): KmipService {
  const { keyward, config, logger } = options;
  const barrier = keyward.seal.barrier;
  const files =
    config.tlsCertFile !== undefined &&
    config.tlsKeyFile !== undefined &&
    config.clientCaFile !== undefined
      ? { cert: config.tlsCertFile, key: config.tlsKeyFile, ca: config.clientCaFile }
      : undefined;

  const keyMounts = transitKeyMounts(keyward, config.keysMount, logger);
  const kmipLogger = logger.child({ component: "kmip" });
  // The store reads through the barrier, so while sealed every KMIP request gets an error response.
  const store = new KmipObjectStore(barrier, {
    managedKeys: new KmipManagedKeys(keyMounts, keyward.clock),
    logger: kmipLogger,
  });
  /**
   * Indexes the Names of objects stored before the Name index existed,
   * once per storage. A failure is logged, and the first lookup by Name
   * tries again.
   */
  const buildNameIndex = async () => {
    try {
      await store.buildNameIndex();
    } catch (error) {
      kmipLogger.error({ err: error }, "failed to build the KMIP Name index");
    }
  };
  const sync = new KmipManagedKeySync({
    store,
    mounts: keyMounts,
    transitMounts: () =>
      keyward
        .mounts()
        .filter((entry) => entry.type === "transit")
        .map((entry) => entry.path),
    logger: kmipLogger,
    clock: keyward.clock,
  });
  const identities = new KmipIdentityStore(barrier);
  const ca = files === undefined ? new KmipCertificateAuthority(barrier) : undefined;
  const credentials = new KmipCredentials({ store: identities, ca });
  const dispatcher = new KmipDispatcher({
    store,
    logger: kmipLogger,
    audit: keyward.audit,
    hsm: options.hsm,
    identities: new KmipIdentityResolver({
      store: identities,
      policies: keyward.policies,
      source: files === undefined ? "keyward" : "external",
    }),
  });

  // Key material leaves memory at seal, with the barrier keys.
  keyward.seal.onChange(async (sealed) => {
    if (sealed) {
      store.clear();
      return;
    }
    await keyMounts.prepare();
    // In the background, so that the unseal does not wait for every key.
    void buildNameIndex();
    void sync.reconcileAll();
  });
  // Rotations on this node, and key changes on other nodes, of the mount
  // new objects' keys go to. Keys in other mounts get their objects when
  // read, and at the next full pass.
  keyward.onTransitKeyChanges((mount, names) => {
    if (mount === config.keysMount) sync.notify(mount, names);
  });
  // A server unsealed before this service existed (dev mode) mounts it now.
  if (!barrier.sealed) void keyMounts.prepare();
  // Objects and roles another node sharing the storage changed are read again.
  keyward.onRemoteChanges((keys) => {
    if (keys === undefined) {
      store.clear();
      identities.invalidate();
      ca?.forget();
      return;
    }
    for (const key of keys) {
      if (key.startsWith(KMIP_OBJECTS_PREFIX)) store.forget(key.slice(KMIP_OBJECTS_PREFIX.length));
      if (key.startsWith(KMIP_ROLES_PREFIX) || key.startsWith(KMIP_CREDENTIALS_PREFIX)) {
        identities.invalidate();
      }
      if (key.startsWith(KMIP_TLS_PREFIX)) ca?.forget();
    }
  });

  let server: KmipServer | undefined;
  let timer: NodeJS.Timeout | undefined;
  let loadedCertificate: string | undefined;
  const names = serverCertificateNames(config.host, config.serverHostnames);

  /** Loads (and when needed issues) the server certificate, and gives it to the listener. */
  const refresh = async () => {
    if (ca === undefined || server === undefined || barrier.sealed) return;
    try {
      const { credentials: tls, renewAt } = await ca.serverCredentials(options.nodeId, names);
      if (tls.cert !== loadedCertificate) {
        server.setTls(tls);
        loadedCertificate = tls.cert;
        logger.info(
          { names, renewAt: renewAt.toISOString() },
          "KMIP server certificate loaded from Keyward's KMIP CA",
        );
      }
    } catch (error) {
      logger.error(
        { err: error },
        "failed to load the KMIP server certificate; KMIP handshakes fail until the next check",
      );
    }
  };

  const unload = () => {
    ca?.forget();
    server?.setTls(undefined);
    loadedCertificate = undefined;
  };

  if (ca !== undefined) {
    keyward.seal.onChange(async (sealed) => {
      if (sealed) unload();
      else await refresh();
    });
  }

  return {
    credentials,
    managedKeySync: sync,
    async start() {
      if (!barrier.sealed) {
        await keyMounts.prepare();
        await buildNameIndex();
        await sync.reconcileAll();
      }
      const tls: KmipListenerTls | undefined =
        files === undefined
          ? undefined
          : {
              cert: readFileSync(files.cert),
              key: readFileSync(files.key),
              ca: readFileSync(files.ca),
            };
      server = await startKmipServer({
        dispatcher,
        host: config.host,
        port: config.port,
        tls,
        logger: logger.child({ component: "kmip" }),
      });
      if (ca !== undefined) {
        await refresh();
        timer = setInterval(() => void refresh(), RENEWAL_CHECK_MS);
        timer.unref();
      }
      return server.port;
    },
    async close() {
      if (timer !== undefined) clearInterval(timer);
      await server?.close();
      await sync.idle();
    },
  };
}

/**
 * Builds the access to the transit mount of KMIP objects' keys. `prepare`
 * and the first use mount a transit engine there when none is.
 */
function transitKeyMounts(
  keyward: Keyward,
  mount: string,
  logger: Logger,
): KmipKeyMounts & { prepare(): Promise<void> } {
  let mounting: Promise<void> | undefined;

  /** Mounts a transit engine at `mount` unless one is there; throws when another engine is. */
  const ensure = async (): Promise<void> => {
    const type = keyward.engineType(mount);
    if (type === "transit") return;
    if (type !== undefined) {
      throw new KmipOperationError(
        "GeneralFailure",
        `the mount "${mount}" that keeps KMIP objects' keys is a ${type} mount; unmount it, or set kmip_keys_mount to a free path or a transit mount`,
      );
    }
    try {
      await keyward.mount(mount, "transit", "keys of KMIP objects");
      logger.info({ mount }, "mounted the transit engine of KMIP objects' keys");
    } catch (error) {
      // Another node, or a concurrent request, mounted it first.
      if (!(error instanceof KeywardError && error.code === "already_exists")) throw error;
    }
  };

  const ensureOnce = (): Promise<void> => {
    mounting ??= ensure().finally(() => {
      mounting = undefined;
    });
    return mounting;
  };

  return {
    mount,
    async keyStore(path) {
      if (path === mount) await ensureOnce();
      const transit = keyward.transit(path);
      if (transit === undefined) {
        throw new KmipOperationError(
          "GeneralFailure",
          `the transit mount "${path}" that keeps this object's key is missing`,
        );
      }
      return transit.keyStore;
    },
    async prepare() {
      try {
        await ensureOnce();
      } catch (error) {
        logger.error(
          { err: error, mount },
          "failed to mount the transit engine of KMIP objects' keys; KMIP requests that create keys fail until it exists",
        );
      }
    },
  };
}
