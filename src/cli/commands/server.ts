import type { Command } from "commander";
import {
  type ConfigSource,
  readConfigFile,
  readEnvironment,
  resolveServerConfig,
} from "../../config.ts";
import { startServer } from "../../server.ts";

/**
 * How long a shutdown after SIGTERM or SIGINT may take before the process
 * exits with status 1, in milliseconds. With its storage responding, a
 * server stops within about a second in the tests. With PostgreSQL
 * unreachable and the default timeouts, the waits for storage added up
 * to about 25 s in a test. The limit ends them below Kubernetes' default
 * grace period of 30 s, after which the process would be killed.
 * Acknowledged writes are durable already, so only requests still in
 * flight are lost.
 */
const SHUTDOWN_LIMIT_MS = 20_000;

interface ServerFlags {
  config?: string;
  listen?: string;
  dataDir?: string;
  storage?: string;
  storageCa?: string;
  tlsCertFile?: string;
  tlsKeyFile?: string;
  logLevel?: string;
  maxRequestSize?: string;
  jobIntervalMs?: string;
  dev?: boolean;
  devRootToken?: string;
  kmipListen?: string;
  kmipTlsCertFile?: string;
  kmipTlsKeyFile?: string;
  kmipClientCaFile?: string;
  kmipServerHostnames?: string;
  kmipKeysMount?: string;
  nodeId?: string;
  apiAddr?: string;
  sealPkcs11Library?: string;
  sealPkcs11TokenLabel?: string;
  sealPkcs11KeyLabel?: string;
  sealPkcs11PinFile?: string;
  hsmPkcs11Library?: string;
  hsmPkcs11TokenLabel?: string;
  hsmPkcs11PinFile?: string;
}

function flagsToSource(flags: ServerFlags): ConfigSource {
  return {
    listen: flags.listen,
    data_dir: flags.dataDir,
    storage: flags.storage,
    storage_ca: flags.storageCa,
    tls_cert_file: flags.tlsCertFile,
    tls_key_file: flags.tlsKeyFile,
    log_level: flags.logLevel,
    max_request_size: flags.maxRequestSize,
    job_interval_ms: flags.jobIntervalMs,
    dev: flags.dev,
    dev_root_token: flags.devRootToken,
    kmip_listen: flags.kmipListen,
    kmip_tls_cert_file: flags.kmipTlsCertFile,
    kmip_tls_key_file: flags.kmipTlsKeyFile,
    kmip_client_ca_file: flags.kmipClientCaFile,
    kmip_server_hostnames: flags.kmipServerHostnames,
    kmip_keys_mount: flags.kmipKeysMount,
    node_id: flags.nodeId,
    api_addr: flags.apiAddr,
    seal_pkcs11_library: flags.sealPkcs11Library,
    seal_pkcs11_token_label: flags.sealPkcs11TokenLabel,
    seal_pkcs11_key_label: flags.sealPkcs11KeyLabel,
    seal_pkcs11_pin_file: flags.sealPkcs11PinFile,
    hsm_pkcs11_library: flags.hsmPkcs11Library,
    hsm_pkcs11_token_label: flags.hsmPkcs11TokenLabel,
    hsm_pkcs11_pin_file: flags.hsmPkcs11PinFile,
  };
}

const DEV_WARNING = `
WARNING: dev mode. The single unseal key and the root token are stored in
the data directory, so anyone who can read that directory can read every
key. Use dev mode for development only; run a production server without
--dev and keep its unseal shares apart.
`;

export function registerServerCommand(program: Command) {
  program
    .command("server")
    .description("start the Keyward server")
    .option(
      "--config <file>",
      "JSON config file (fields: listen, data_dir, storage, storage_ca, tls_cert_file, tls_key_file, log_level, max_request_size, job_interval_ms, kmip_listen, kmip_tls_cert_file, kmip_tls_key_file, kmip_client_ca_file, kmip_server_hostnames, kmip_keys_mount, node_id, api_addr, seal_pkcs11_library, seal_pkcs11_token_label, seal_pkcs11_key_label, seal_pkcs11_pin_file, hsm_pkcs11_library, hsm_pkcs11_token_label, hsm_pkcs11_pin_file)",
    )
    .option(
      "--listen <host:port>",
      "address to listen on [env KEYWARD_LISTEN] (default 127.0.0.1:8200)",
    )
    .option("--data-dir <dir>", "data directory [env KEYWARD_DATA_DIR] (default ./keyward-data)")
    .option(
      "--storage <location>",
      "storage: a postgres:// URL, sqlite:PATH or a data directory [env KEYWARD_STORAGE] (default: SQLite in the data directory)",
    )
    .option(
      "--storage-ca <file>",
      "PEM file of CA certificates for TLS to PostgreSQL storage [env KEYWARD_STORAGE_CA]",
    )
    .option(
      "--kmip-listen <host[:port]>",
      "serve KMIP over mutual TLS at this address, port 5696 unless given; without KMIP TLS files the certificates come from Keyward's own KMIP CA [env KEYWARD_KMIP_LISTEN]",
    )
    .option(
      "--kmip-tls-cert-file <file>",
      "KMIP server certificate chain, PEM [env KEYWARD_KMIP_TLS_CERT_FILE]",
    )
    .option(
      "--kmip-tls-key-file <file>",
      "KMIP server private key, PEM [env KEYWARD_KMIP_TLS_KEY_FILE]",
    )
    .option(
      "--kmip-client-ca-file <file>",
      "CA bundle KMIP client certificates must chain to, PEM [env KEYWARD_KMIP_CLIENT_CA_FILE]",
    )
    .option(
      "--kmip-server-hostnames <names>",
      "comma-separated DNS names and IP addresses for the KMIP server certificate Keyward issues when no KMIP TLS files are given [env KEYWARD_KMIP_SERVER_HOSTNAMES]",
    )
    .option(
      "--kmip-keys-mount <path>",
      "transit mount that keeps the keys of KMIP objects, default kmip-keys [env KEYWARD_KMIP_KEYS_MOUNT]",
    )
    .option("--tls-cert-file <file>", "TLS certificate chain, PEM [env KEYWARD_TLS_CERT_FILE]")
    .option("--tls-key-file <file>", "TLS private key, PEM [env KEYWARD_TLS_KEY_FILE]")
    .option(
      "--log-level <level>",
      "trace, debug, info, warn, error or silent [env KEYWARD_LOG_LEVEL]",
    )
    .option(
      "--max-request-size <bytes>",
      "largest request body accepted, in bytes [env KEYWARD_MAX_REQUEST_SIZE] (default 33554432)",
    )
    .option(
      "--job-interval-ms <ms>",
      "milliseconds between runs of the transit, PKI, WireGuard and Wi-Fi background jobs [env KEYWARD_JOB_INTERVAL_MS] (default 60000)",
    )
    .option(
      "--node-id <id>",
      "this node's id among nodes sharing one PostgreSQL database [env KEYWARD_NODE_ID] (default: generated once and kept in the data directory)",
    )
    .option(
      "--api-addr <url>",
      "URL at which other nodes and load balancers reach this node, reported by sys/ha-status [env KEYWARD_API_ADDR] (default: from --listen)",
    )
    .option(
      "--seal-pkcs11-library <file>",
      "seal the root key with an HSM key through this PKCS#11 library, and unseal at start without shares [env KEYWARD_SEAL_PKCS11_LIBRARY]",
    )
    .option(
      "--seal-pkcs11-token-label <label>",
      "label of the HSM token holding the wrapping key [env KEYWARD_SEAL_PKCS11_TOKEN_LABEL]",
    )
    .option(
      "--seal-pkcs11-key-label <label>",
      "label of the AES-256 wrapping key, created at init when absent [env KEYWARD_SEAL_PKCS11_KEY_LABEL] (default keyward-root-wrapping-key)",
    )
    .option(
      "--seal-pkcs11-pin-file <file>",
      "file containing the token's user PIN [env KEYWARD_SEAL_PKCS11_PIN_FILE]; or put the PIN in env KEYWARD_SEAL_PKCS11_PIN",
    )
    .option(
      "--hsm-pkcs11-library <file>",
      "keep engine keys created with hsm: true in an HSM through this PKCS#11 library [env KEYWARD_HSM_PKCS11_LIBRARY]",
    )
    .option(
      "--hsm-pkcs11-token-label <label>",
      "label of the HSM token for engine keys; may be the seal's token [env KEYWARD_HSM_PKCS11_TOKEN_LABEL]",
    )
    .option(
      "--hsm-pkcs11-pin-file <file>",
      "file containing that token's user PIN [env KEYWARD_HSM_PKCS11_PIN_FILE]; or put the PIN in env KEYWARD_HSM_PKCS11_PIN",
    )
    .option(
      "--dev",
      "dev mode: initialise and unseal automatically, keeping the unseal key in the data directory",
    )
    .option("--dev-root-token <token>", "in dev mode, use this root token")
    .action(async (flags: ServerFlags) => {
      if (flags.devRootToken !== undefined && !flags.dev) {
        throw new Error("--dev-root-token is valid only with --dev");
      }
      const file = flags.config ? readConfigFile(flags.config) : {};
      const config = resolveServerConfig(file, readEnvironment(process.env), flagsToSource(flags));
      const server = await startServer(config);

      if (server.dev) {
        process.stderr.write(DEV_WARNING);
        process.stdout.write(
          [
            "",
            "Keyward dev server is running.",
            "",
            `  Address:         ${server.address}`,
            `  Root token:      ${server.dev.rootToken}`,
            `  Unseal key file: ${server.dev.unsealKeyPath}`,
            "",
            "In another shell:",
            `  export KEYWARD_ADDR=${server.address}`,
            `  export KEYWARD_TOKEN=${server.dev.rootToken}`,
            "",
          ].join("\n"),
        );
      } else {
        process.stdout.write(`Keyward server listening on ${server.address}\n`);
      }

      const stop = (signal: string) => {
        const { logger } = server.keyward;
        logger.info({ signal }, "signal received");
        // Each wait for an unreachable database ends on its own timeout,
        // but a shutdown may meet several in a row.
        setTimeout(() => {
          logger.error(
            { limitMs: SHUTDOWN_LIMIT_MS },
            "shutdown did not finish within the limit; exiting without waiting further",
          );
          process.exit(1);
        }, SHUTDOWN_LIMIT_MS);
        server.close().then(
          () => process.exit(0),
          () => process.exit(1),
        );
      };
      process.once("SIGINT", () => stop("SIGINT"));
      process.once("SIGTERM", () => stop("SIGTERM"));
      // A log rotator renames the audit files, then sends SIGHUP so new files are opened.
      process.on("SIGHUP", () => {
        server.keyward.logger.info({ signal: "SIGHUP" }, "signal received: reopening audit files");
        void server.keyward.audit.reopenFiles();
      });
    });
}
