/**
 * KMIP throughput of Keyward beside PyKMIP's server, in one run.
 *
 * Starts a Keyward dev server (from dist/, so run `npm run build` first) with
 * its KMIP listener, and `pykmip-server` (PyKMIP 0.10 from Debian's
 * python3-pykmip, run with /usr/bin/python3), both on loopback. openssl makes
 * one CA, a server certificate and a client certificate in a temporary
 * folder, and both servers use them. The TTLV client in this file drives both
 * servers the same way, with KMIP 1.2 over mutual TLS 1.2 and one cipher
 * suite that both servers accept. It opens a fixed number of connections,
 * and each sends its next request as soon as the previous response arrives.
 *
 * Two loops run against each server, for each connection count:
 * - Create of an AES-256 key, then Get of that key (one pair is one unit);
 * - Encrypt of a 64-byte payload with one AES-256 key, CBC with PKCS#5
 *   padding, with an IV that the server draws.
 *
 * Each phase runs for a warm-up that is not counted, then until its time or
 * its maximum count of units is reached. Every response must report success.
 * Every Get must return 32 bytes of key material, and every Encrypt a
 * ciphertext of 80 bytes and a 16-byte IV. After each Encrypt phase, the last
 * ciphertext is decrypted by the server and by node:crypto with the key bytes
 * that Get returned, and both must give the plaintext back.
 *
 * Usage: npx tsx bench/kmip.ts [--duration SECONDS] [--warmup SECONDS]
 *   [--connections 1,4] [--max-units N] [--loops create-get,encrypt]
 *   [--cpu-prof DIR] [--keyward-only]
 *
 * With --cpu-prof, Keyward runs under `node --cpu-prof` and writes its CPU
 * profile to DIR when it stops.
 *
 * With --keyward-only, PyKMIP is not started, and the table gives for each
 * phase its unit count, the server's CPU milliseconds per unit, and the
 * phase's start and end on the monotonic clock in microseconds. Node's CPU
 * profiles stamp samples on that clock on Linux, so a profile can be cut to
 * the measured phase.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { createDecipheriv } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { constants, cpus, loadavg, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { connect, type TLSSocket } from "node:tls";
import { parseArgs } from "node:util";
import type { KmipItem, StructureItem } from "../src/kmip/item.ts";
import {
  bytes,
  bytesOf,
  child,
  enumItem,
  enumName,
  integer,
  requireChild,
  struct,
  tag,
  text,
  textOf,
} from "../src/kmip/server/items.ts";
import { decodeTtlv, encodeTtlv, TTLV_HEADER_BYTES, ttlvMessageLength } from "../src/kmip/ttlv.ts";
import { makeTestPki, type TestPki } from "../test/kmip/server/certs.ts";
import { exited, freePort, type RunningServer, startDevServer } from "./dev-server.ts";

/** Debian's python3-pykmip installs into the system Python, which may not be first on PATH. */
const SYSTEM_PYTHON = "/usr/bin/python3";
const PYKMIP_SERVER = "/usr/bin/pykmip-server";

/**
 * TLS settings of the client for both servers. pykmip-server 0.10's TLS1.2
 * authentication suite accepts only TLS 1.2, and offers AES-GCM only with
 * ECDSA certificates. With the RSA certificates of certs.ts, this ECDHE suite
 * is one that both servers accept.
 */
const TLS_VERSION = "TLSv1.2";
const TLS_CIPHER_OPENSSL = "ECDHE-RSA-AES256-SHA384";
const TLS_CIPHER_IANA = "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384";

const KMIP_VERSION = { major: 1, minor: 2 };
const KEY_BYTES = 32;
const PLAINTEXT = Buffer.alloc(64, 7);
/** CBC with PKCS#5 padding adds a whole block to a payload that fills whole blocks. */
const CIPHERTEXT_BYTES = PLAINTEXT.length + 16;
const IV_BYTES = 16;
/** Cryptographic Usage Mask bits Encrypt (0x04) and Decrypt (0x08). */
const USAGE_ENCRYPT_DECRYPT = 0x04 | 0x08;

const { values } = parseArgs({
  options: {
    duration: { type: "string", default: "5" },
    warmup: { type: "string", default: "1" },
    connections: { type: "string", default: "1,4" },
    "max-units": { type: "string", default: "50000" },
    loops: { type: "string", default: "create-get,encrypt" },
    "cpu-prof": { type: "string" },
    "keyward-only": { type: "boolean", default: false },
  },
});
const durationSeconds = Number(values.duration);
const warmupSeconds = Number(values.warmup);
const connectionCounts = values.connections.split(",").map(Number);
const maxUnits = Number(values["max-units"]);
const LOOPS = { "create-get": "Create + Get", encrypt: "Encrypt" } as const;
const loops = values.loops.split(",").map((name) => {
  if (!Object.hasOwn(LOOPS, name)) {
    throw new Error(`invalid --loops value ${name}: expected create-get or encrypt`);
  }
  return LOOPS[name as keyof typeof LOOPS];
});
for (const [name, value] of [
  ["--duration", durationSeconds],
  ["--warmup", warmupSeconds],
  ["--max-units", maxUnits],
  ...connectionCounts.map((count) => ["--connections", count] as const),
] as const) {
  if (!Number.isFinite(value) || value <= 0) {
    throw new Error(`invalid ${name} value ${value}: expected a positive number`);
  }
}

// ---------------------------------------------------------------------------
// Requests

/** Builds a KMIP 1.2 Request Message with one Batch Item. */
function requestMessage(operation: string, payload: readonly KmipItem[]): Buffer {
  return encodeTtlv(
    struct("RequestMessage", [
      struct("RequestHeader", [
        struct("ProtocolVersion", [
          integer("ProtocolVersionMajor", KMIP_VERSION.major),
          integer("ProtocolVersionMinor", KMIP_VERSION.minor),
        ]),
        integer("BatchCount", 1),
      ]),
      struct("BatchItem", [enumItem("Operation", operation), struct("RequestPayload", payload)]),
    ]),
  );
}

/** Builds a KMIP 1.x Attribute whose Attribute Value has the type and value of `value`. */
function attribute(name: string, value: KmipItem): KmipItem {
  return struct("Attribute", [
    text("AttributeName", name),
    { ...value, tag: tag("AttributeValue") } as KmipItem,
  ]);
}

const CREATE_REQUEST = requestMessage("Create", [
  enumItem("ObjectType", "SymmetricKey"),
  struct("TemplateAttribute", [
    attribute("Cryptographic Algorithm", enumItem("CryptographicAlgorithm", "AES")),
    attribute("Cryptographic Length", integer("CryptographicLength", KEY_BYTES * 8)),
    attribute("Cryptographic Usage Mask", integer("CryptographicUsageMask", USAGE_ENCRYPT_DECRYPT)),
  ]),
]);

const AES_CBC_PKCS5 = struct("CryptographicParameters", [
  enumItem("BlockCipherMode", "CBC"),
  enumItem("PaddingMethod", "PKCS5"),
  enumItem("CryptographicAlgorithm", "AES"),
]);

function getRequest(uid: string): Buffer {
  return requestMessage("Get", [text("UniqueIdentifier", uid)]);
}

function activateRequest(uid: string): Buffer {
  return requestMessage("Activate", [text("UniqueIdentifier", uid)]);
}

function encryptRequest(uid: string): Buffer {
  return requestMessage("Encrypt", [
    text("UniqueIdentifier", uid),
    AES_CBC_PKCS5,
    bytes("Data", PLAINTEXT),
  ]);
}

function decryptRequest(uid: string, ciphertext: Uint8Array, iv: Uint8Array): Buffer {
  return requestMessage("Decrypt", [
    text("UniqueIdentifier", uid),
    AES_CBC_PKCS5,
    bytes("Data", ciphertext),
    bytes("IVCounterNonce", iv),
  ]);
}

// ---------------------------------------------------------------------------
// Client

/**
 * One mutual-TLS connection to a KMIP server, with at most one request in
 * flight: `call` sends a request and resolves with its response payload.
 */
class KmipConnection {
  readonly #socket: TLSSocket;
  readonly #server: string;
  #buffered: Buffer = Buffer.alloc(0);
  #pending: { resolve: (item: KmipItem) => void; reject: (error: Error) => void } | undefined;

  private constructor(socket: TLSSocket, server: string) {
    this.#socket = socket;
    this.#server = server;
    socket.on("data", (chunk: Buffer) => this.#receive(chunk));
    socket.on("error", (error) => this.#fail(error));
    socket.on("close", () => this.#fail(new Error(`${server} closed the connection`)));
  }

  /** Opens a connection and resolves once the TLS handshake has completed. */
  static open(server: string, port: number, pki: TestPki): Promise<KmipConnection> {
    return new Promise((resolve, reject) => {
      const socket = connect({
        host: "127.0.0.1",
        port,
        ca: pki.ca,
        cert: pki.clientCert,
        key: pki.clientKey,
        minVersion: TLS_VERSION,
        maxVersion: TLS_VERSION,
        ciphers: TLS_CIPHER_OPENSSL,
      });
      socket.setNoDelay(true);
      socket.once("error", reject);
      socket.once("secureConnect", () => {
        socket.off("error", reject);
        resolve(new KmipConnection(socket, server));
      });
    });
  }

  /**
   * Sends one encoded request and returns the Response Payload of its Batch
   * Item. Throws with the Result Reason and Message when the operation failed.
   */
  async call(operation: string, request: Buffer): Promise<StructureItem> {
    if (this.#pending !== undefined) throw new Error("a request is already in flight");
    const response = await new Promise<KmipItem>((resolve, reject) => {
      this.#pending = { resolve, reject };
      this.#socket.write(request);
    });
    if (response.type !== "Structure") {
      throw new Error(`${this.#server}: response is not a structure`);
    }
    const item = requireChild(response, "BatchItem") as StructureItem;
    const status = enumName(requireChild(item, "ResultStatus"));
    if (status !== "Success") {
      const reason = child(item, "ResultReason");
      const message = child(item, "ResultMessage");
      throw new Error(
        `${this.#server}: ${operation} failed: ${status}, ${reason ? enumName(reason) : "no reason"}: ${message ? textOf(message) : "no message"}`,
      );
    }
    return requireChild(item, "ResponsePayload") as StructureItem;
  }

  close(): void {
    this.#pending = undefined;
    this.#socket.removeAllListeners("close");
    this.#socket.destroy();
  }

  #receive(chunk: Buffer): void {
    this.#buffered = this.#buffered.length === 0 ? chunk : Buffer.concat([this.#buffered, chunk]);
    if (this.#buffered.length < TTLV_HEADER_BYTES) return;
    // A response that does not decode fails the call, so the benchmark stops and cleans up.
    let response: KmipItem;
    try {
      const length = ttlvMessageLength(this.#buffered);
      if (this.#buffered.length < length) return;
      response = decodeTtlv(this.#buffered.subarray(0, length));
      this.#buffered = this.#buffered.subarray(length);
    } catch (error) {
      this.#fail(new Error(`${this.#server} sent an invalid TTLV message`, { cause: error }));
      return;
    }
    const pending = this.#pending;
    this.#pending = undefined;
    if (pending === undefined) {
      this.#fail(new Error(`${this.#server} sent a message without a request`));
      return;
    }
    pending.resolve(response);
  }

  #fail(error: Error): void {
    const pending = this.#pending;
    this.#pending = undefined;
    pending?.reject(error);
  }
}

/** Returns the Unique Identifier of a response payload. */
function uidOf(payload: StructureItem): string {
  return textOf(requireChild(payload, "UniqueIdentifier"));
}

/** Returns the key material of a Get response for a symmetric key in Raw format. */
function keyMaterialOf(payload: StructureItem): Uint8Array {
  const key = requireChild(payload, "SymmetricKey") as StructureItem;
  const block = requireChild(key, "KeyBlock") as StructureItem;
  const value = requireChild(block, "KeyValue") as StructureItem;
  return bytesOf(requireChild(value, "KeyMaterial"));
}

function expectLength(field: string, actual: number, expected: number): void {
  if (actual !== expected) throw new Error(`${field} has ${actual} bytes, expected ${expected}`);
}

// ---------------------------------------------------------------------------
// Servers

interface KmipTarget {
  name: string;
  port: number;
  /** Process id of the server, whose CPU time a phase reads from /proc. */
  pid: number;
  stop(): Promise<void>;
}

/** Waits until a TLS handshake with the KMIP port succeeds, for at most 30 s. */
async function waitForListener(
  target: string,
  port: number,
  pki: TestPki,
  serverProcess: ChildProcess,
) {
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (serverProcess.exitCode !== null) {
      throw new Error(`${target} exited with ${serverProcess.exitCode}`);
    }
    try {
      (await KmipConnection.open(target, port, pki)).close();
      return;
    } catch (error) {
      if (Date.now() > deadline) {
        throw new Error(`${target} did not accept a TLS connection on port ${port} within 30 s`, {
          cause: error,
        });
      }
      await sleep(200);
    }
  }
}

async function startKeyward(pki: TestPki, profileDir: string | undefined): Promise<KmipTarget> {
  const port = await freePort();
  const server: RunningServer = await startDevServer(profileDir, {
    KEYWARD_KMIP_LISTEN: `127.0.0.1:${port}`,
    KEYWARD_KMIP_TLS_CERT_FILE: pki.serverCertPath,
    KEYWARD_KMIP_TLS_KEY_FILE: pki.serverKeyPath,
    KEYWARD_KMIP_CLIENT_CA_FILE: pki.caPath,
  });
  try {
    await waitForListener("Keyward", port, pki, server.child);
  } catch (error) {
    await server.stop();
    throw error;
  }
  return { name: "Keyward", port, pid: server.child.pid!, stop: server.stop };
}

/**
 * Starts pykmip-server with a configuration, an empty policy folder, an
 * SQLite database and a log file in `workDir`. It runs in its own process
 * group, because it forks a policy monitor and a multiprocessing manager,
 * and `stop` ends the whole group. `registerStop` receives `stop` as soon as
 * the process exists, so a failed or interrupted start is cleaned up too.
 */
async function startPyKmip(
  pki: TestPki,
  workDir: string,
  registerStop: (stop: () => Promise<void>) => void,
): Promise<KmipTarget> {
  if (!existsSync(SYSTEM_PYTHON) || !existsSync(PYKMIP_SERVER)) {
    throw new Error(`${PYKMIP_SERVER} or ${SYSTEM_PYTHON} is missing; install python3-pykmip`);
  }
  const port = await freePort();
  const policyDir = join(workDir, "policies");
  mkdirSync(policyDir);
  const configPath = join(workDir, "server.conf");
  // Logging at WARNING, as Keyward runs at warn: at INFO, PyKMIP logs every request.
  writeFileSync(
    configPath,
    [
      "[server]",
      "hostname=127.0.0.1",
      `port=${port}`,
      `certificate_path=${pki.serverCertPath}`,
      `key_path=${pki.serverKeyPath}`,
      `ca_path=${pki.caPath}`,
      // The default suite, Basic, allows only TLS 1.0, which OpenSSL 3 disables by default.
      "auth_suite=TLS1.2",
      `tls_cipher_suites=${TLS_CIPHER_IANA}`,
      "enable_tls_client_auth=True",
      `policy_path=${policyDir}`,
      `database_path=${join(workDir, "pykmip.sqlite")}`,
      "logging_level=WARNING",
      "",
    ].join("\n"),
  );
  const server = spawn(
    SYSTEM_PYTHON,
    [PYKMIP_SERVER, "--config_path", configPath, "--log_path", join(workDir, "server.log")],
    { cwd: workDir, detached: true, stdio: ["ignore", "ignore", "pipe"] },
  );
  let stderr = "";
  server.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const stop = async () => {
    if (server.pid === undefined) return;
    server.kill("SIGTERM");
    await Promise.race([exited(server), sleep(5_000)]);
    try {
      process.kill(-server.pid, "SIGKILL");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
    }
  };
  registerStop(stop);
  try {
    await waitForListener("PyKMIP", port, pki, server);
  } catch (error) {
    throw new Error(`pykmip-server failed to start:\n${stderr}`, { cause: error });
  }
  return { name: "PyKMIP", port, pid: server.pid!, stop };
}

function pyKmipVersion(): string {
  return execFileSync(SYSTEM_PYTHON, ["-c", "import kmip; print(kmip.__version__)"], {
    encoding: "utf8",
  }).trim();
}

// ---------------------------------------------------------------------------
// Loops

interface PhaseResult {
  units: number;
  perSecond: number;
  p99Ms: number;
  /** CPU time of the server process over wall time, in percent of one core. */
  serverCpuPercent: number;
  /** CPU time of this benchmark process (the client) over wall time, in percent of one core. */
  clientCpuPercent: number;
  /** Server CPU time per unit, in milliseconds. */
  serverCpuMsPerUnit: number;
  /** Start and end of the phase on the monotonic clock, in microseconds. */
  monotonicMicros: [bigint, bigint];
}

const CLOCK_TICKS_PER_SECOND = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }));

/** Returns the user and system CPU seconds of a process, all its threads included, from /proc. */
function processCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // The fields after the command name, which is in brackets and may contain spaces.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // utime and stime are fields 14 and 15 of the line, so 12 and 13 after the name.
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
}

/** The key that the Encrypt loop uses on one server, and its bytes as Get returned them. */
interface EncryptionKey {
  uid: string;
  material: Uint8Array;
  request: Buffer;
}

/**
 * Runs `unit` back to back on every connection until `seconds` have passed
 * or `limit` units have started, and returns units per second and the 99th
 * percentile of unit latency.
 */
async function runPhase(
  serverPid: number,
  connections: KmipConnection[],
  unit: (connection: KmipConnection) => Promise<void>,
  seconds: number,
  limit: number,
): Promise<PhaseResult> {
  const latencies: number[] = [];
  let started = 0;
  const serverCpuBefore = processCpuSeconds(serverPid);
  const clientCpuBefore = process.cpuUsage();
  const monotonicStart = process.hrtime.bigint() / 1000n;
  const start = performance.now();
  const deadline = start + seconds * 1000;
  await Promise.all(
    connections.map(async (connection) => {
      while (performance.now() < deadline && started < limit) {
        started += 1;
        const before = performance.now();
        await unit(connection);
        latencies.push(performance.now() - before);
      }
    }),
  );
  const elapsedSeconds = (performance.now() - start) / 1000;
  const monotonicEnd = process.hrtime.bigint() / 1000n;
  const serverCpuSeconds = processCpuSeconds(serverPid) - serverCpuBefore;
  const clientCpu = process.cpuUsage(clientCpuBefore);
  const clientCpuSeconds = (clientCpu.user + clientCpu.system) / 1e6;
  latencies.sort((a, b) => a - b);
  return {
    units: latencies.length,
    perSecond: latencies.length / elapsedSeconds,
    p99Ms: latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * 0.99))] ?? 0,
    serverCpuPercent: (100 * serverCpuSeconds) / elapsedSeconds,
    clientCpuPercent: (100 * clientCpuSeconds) / elapsedSeconds,
    serverCpuMsPerUnit: (1000 * serverCpuSeconds) / Math.max(1, latencies.length),
    monotonicMicros: [monotonicStart, monotonicEnd],
  };
}

async function createAndGet(connection: KmipConnection): Promise<void> {
  const uid = uidOf(await connection.call("Create", CREATE_REQUEST));
  const material = keyMaterialOf(await connection.call("Get", getRequest(uid)));
  expectLength("Get key material", material.length, KEY_BYTES);
}

/** The last ciphertext of the running Encrypt phase, checked when the phase ends. */
let lastEncryption: { ciphertext: Uint8Array; iv: Uint8Array } | undefined;

function encryptWith(key: EncryptionKey) {
  return async (connection: KmipConnection): Promise<void> => {
    const payload = await connection.call("Encrypt", key.request);
    const ciphertext = bytesOf(requireChild(payload, "Data"));
    const iv = bytesOf(requireChild(payload, "IVCounterNonce"));
    expectLength("Encrypt ciphertext", ciphertext.length, CIPHERTEXT_BYTES);
    expectLength("Encrypt IV", iv.length, IV_BYTES);
    lastEncryption = { ciphertext, iv };
  };
}

/** Creates and activates the key of the Encrypt loop, and reads its bytes back with Get. */
async function prepareEncryptionKey(connection: KmipConnection): Promise<EncryptionKey> {
  const uid = uidOf(await connection.call("Create", CREATE_REQUEST));
  await connection.call("Activate", activateRequest(uid));
  const material = keyMaterialOf(await connection.call("Get", getRequest(uid)));
  expectLength("Get key material", material.length, KEY_BYTES);
  return { uid, material, request: encryptRequest(uid) };
}

/** Decrypts the last ciphertext on the server and with node:crypto; both must return the plaintext. */
async function checkLastEncryption(
  target: string,
  connection: KmipConnection,
  key: EncryptionKey,
): Promise<void> {
  if (lastEncryption === undefined) throw new Error(`${target}: no Encrypt completed`);
  const { ciphertext, iv } = lastEncryption;
  const payload = await connection.call("Decrypt", decryptRequest(key.uid, ciphertext, iv));
  if (!Buffer.from(bytesOf(requireChild(payload, "Data"))).equals(PLAINTEXT)) {
    throw new Error(`${target}: Decrypt did not return the plaintext`);
  }
  const decipher = createDecipheriv("aes-256-cbc", key.material, iv);
  const local = Buffer.concat([decipher.update(ciphertext), decipher.final()]);
  if (!local.equals(PLAINTEXT)) {
    throw new Error(`${target}: the ciphertext is not AES-256-CBC of the plaintext`);
  }
  lastEncryption = undefined;
}

/** Checks that two Create and Get units return different keys. */
async function checkDistinctKeys(target: string, connection: KmipConnection): Promise<void> {
  const keys: Buffer[] = [];
  for (let i = 0; i < 2; i += 1) {
    const uid = uidOf(await connection.call("Create", CREATE_REQUEST));
    keys.push(Buffer.from(keyMaterialOf(await connection.call("Get", getRequest(uid)))));
  }
  if (keys[0]!.equals(keys[1]!)) throw new Error(`${target}: two Creates returned the same key`);
}

async function openConnections(target: KmipTarget, pki: TestPki, count: number) {
  return Promise.all(
    Array.from({ length: count }, () => KmipConnection.open(target.name, target.port, pki)),
  );
}

type LoopName = (typeof LOOPS)[keyof typeof LOOPS];

/** Warms up, measures one loop on one server, and runs the checks of that loop. */
async function measure(
  target: KmipTarget,
  pki: TestPki,
  loop: LoopName,
  connectionCount: number,
  key: EncryptionKey,
): Promise<PhaseResult> {
  const connections = await openConnections(target, pki, connectionCount);
  try {
    const unit = loop === "Encrypt" ? encryptWith(key) : createAndGet;
    await runPhase(target.pid, connections, unit, warmupSeconds, maxUnits);
    const result = await runPhase(target.pid, connections, unit, durationSeconds, maxUnits);
    if (loop === "Encrypt") await checkLastEncryption(target.name, connections[0]!, key);
    else await checkDistinctKeys(target.name, connections[0]!);
    return result;
  } finally {
    for (const connection of connections) connection.close();
  }
}

// ---------------------------------------------------------------------------
// Main

/** Measures every loop on Keyward alone and prints the CPU cost and profile window of each phase. */
async function measureKeywardOnly(keyward: KmipTarget, pki: TestPki): Promise<void> {
  const [setup] = await openConnections(keyward, pki, 1);
  let key: EncryptionKey;
  try {
    key = await prepareEncryptionKey(setup!);
  } finally {
    setup!.close();
  }
  console.log(
    `machine: ${cpus().length} x ${cpus()[0]?.model ?? "unknown CPU"}, Node ${process.version}`,
  );
  console.log(`load average at start: ${formatLoad()}\n`);
  console.log(
    "| loop | connections | units | units/s | p99 ms | server CPU % | server CPU ms/unit | monotonic µs start-end |",
  );
  console.log("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
  for (const loop of loops) {
    for (const count of connectionCounts) {
      const result = await measure(keyward, pki, loop, count, key);
      const [start, end] = result.monotonicMicros;
      console.log(
        `| ${loop} | ${count} | ${result.units} | ${result.perSecond.toFixed(0)} | ${result.p99Ms.toFixed(1)} | ${result.serverCpuPercent.toFixed(0)} | ${result.serverCpuMsPerUnit.toFixed(3)} | ${start}-${end} |`,
      );
    }
  }
  console.log(`\nload average at end: ${formatLoad()}`);
}

function formatLoad(): string {
  return loadavg()
    .map((value) => value.toFixed(2))
    .join(", ");
}

async function main(): Promise<void> {
  const cleanups: (() => Promise<void> | void)[] = [];
  // A signal and the failure it causes in the running phase both clean up,
  // so the second caller waits for the first cleanup instead of exiting early.
  let cleaning: Promise<void> | undefined;
  const cleanUp = () => {
    cleaning ??= (async () => {
      for (const cleanup of cleanups.reverse()) await cleanup();
    })();
    return cleaning;
  };
  // tsx passes a signal on to this process as well, so the handler stays
  // installed: a second signal must not end the process during the cleanup.
  const onSignal = (signal: NodeJS.Signals) => {
    void cleanUp().finally(() => process.exit(128 + constants.signals[signal]));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);

  try {
    const pki = makeTestPki("keyward-kmip-bench");
    cleanups.push(() => rmSync(pki.dir, { recursive: true, force: true }));
    const workDir = mkdtempSync(join(tmpdir(), "keyward-kmip-bench-"));
    cleanups.push(() => rmSync(workDir, { recursive: true, force: true }));

    const keyward = await startKeyward(pki, values["cpu-prof"]);
    cleanups.push(() => keyward.stop());
    if (values["keyward-only"]) {
      await measureKeywardOnly(keyward, pki);
      return;
    }
    const pykmip = await startPyKmip(pki, workDir, (stop) => cleanups.push(stop));

    const keys = new Map<KmipTarget, EncryptionKey>();
    for (const target of [keyward, pykmip]) {
      const [setup] = await openConnections(target, pki, 1);
      try {
        keys.set(target, await prepareEncryptionKey(setup!));
      } finally {
        setup!.close();
      }
    }

    console.log(
      `machine: ${cpus().length} x ${cpus()[0]?.model ?? "unknown CPU"}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}, PyKMIP ${pyKmipVersion()}`,
    );
    console.log(
      `KMIP 1.2 over TLS 1.2 (${TLS_CIPHER_OPENSSL}), ${warmupSeconds} s warm-up and up to ${durationSeconds} s or ${maxUnits} units per phase`,
    );
    console.log(`load average at start: ${formatLoad()}\n`);
    console.log(
      "| loop | connections | Keyward units/s | PyKMIP units/s | ratio | Keyward p99 ms | PyKMIP p99 ms | server CPU %, Keyward / PyKMIP | client CPU %, Keyward / PyKMIP phase |",
    );
    console.log("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (const loop of loops) {
      for (const count of connectionCounts) {
        const ours = await measure(keyward, pki, loop, count, keys.get(keyward)!);
        const theirs = await measure(pykmip, pki, loop, count, keys.get(pykmip)!);
        console.log(
          `| ${loop} | ${count} | ${ours.perSecond.toFixed(0)} | ${theirs.perSecond.toFixed(1)} | ${(ours.perSecond / theirs.perSecond).toFixed(1)} | ${ours.p99Ms.toFixed(1)} | ${theirs.p99Ms.toFixed(1)} | ${ours.serverCpuPercent.toFixed(0)} / ${theirs.serverCpuPercent.toFixed(0)} | ${ours.clientCpuPercent.toFixed(0)} / ${theirs.clientCpuPercent.toFixed(0)} |`,
        );
      }
    }
    console.log(`\nload average at end: ${formatLoad()}`);
  } finally {
    await cleanUp();
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

await main();
