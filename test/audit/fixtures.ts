import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { AuditBroker, type AuditBrokerOptions } from "../../src/audit/broker.ts";
import type { AuditRequestEntry, AuditResponseEntry } from "../../src/audit/types.ts";
import { createSealManager } from "../../src/seal/seal-manager.ts";
import type { Barrier } from "../../src/seal/types.ts";
import { openSqliteStorage } from "../../src/storage/index.ts";
import type { Storage } from "../../src/storage/storage.ts";
import { MemoryBarrier } from "../helpers/memory-barrier.ts";

export const silentLogger = pino({ level: process.env.KEYWARD_TEST_LOG ?? "silent" });

export interface BrokerFixture {
  broker: AuditBroker;
  barrier: MemoryBarrier;
  dir: string;
  cleanup(): Promise<void>;
}

/** Opens a broker on a memory barrier, with a temporary folder for file devices. */
export async function openBroker(
  options: Partial<AuditBrokerOptions> & { barrier?: MemoryBarrier } = {},
): Promise<BrokerFixture> {
  const barrier = options.barrier ?? new MemoryBarrier();
  const dir = mkdtempSync(join(tmpdir(), "keyward-audit-"));
  const broker = new AuditBroker({ logger: silentLogger, ...options, barrier });
  await broker.open();
  return {
    broker,
    barrier,
    dir,
    async cleanup() {
      await broker.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** An unsealed barrier on a SQLite file in a temporary folder, with the storage under it. */
export interface SqliteBarrierFixture {
  barrier: Barrier;
  /** The raw storage, for changing a stored value behind the barrier's back. */
  storage: Storage;
  dir: string;
  close(): Promise<void>;
}

/**
 * Initialises and unseals a barrier on a new SQLite file. SQLite admits one
 * process per file, so brokers that stand for several nodes share this one
 * barrier.
 */
export async function openSqliteBarrier(): Promise<SqliteBarrierFixture> {
  const dir = mkdtempSync(join(tmpdir(), "keyward-audit-sqlite-"));
  const storage = await openSqliteStorage({ path: join(dir, "keyward.db") });
  const seal = createSealManager(storage);
  const result = await seal.init({ shares: 1, threshold: 1 });
  await seal.submitUnsealShare(result.keysHex[0] as string);
  return {
    barrier: seal.barrier,
    storage,
    dir,
    async close() {
      await seal.seal();
      await storage.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Returns a request entry for `transit/encrypt/payments` with a plaintext and the root identity. */
export function requestEntry(index: number, overrides: Partial<AuditRequestEntry> = {}) {
  return {
    request: {
      id: `req-${index}`,
      operation: "update" as const,
      path: "transit/encrypt/payments",
      remoteAddress: "127.0.0.1",
      clientToken: "kw.test-token",
      keyName: "payments",
      data: { plaintext: `cGxhaW50ZXh0LQ==${index}` },
    },
    auth: { accessor: "root-accessor", displayName: "root", policies: ["root"] },
    ...overrides,
  } satisfies AuditRequestEntry;
}

export function responseEntry(index: number, status = 200): AuditResponseEntry {
  return {
    ...requestEntry(index),
    response: { status, data: { data: { ciphertext: `keyward:v1:${index}` } } },
  };
}

/** Reads a JSON-lines file as lines without the final empty one. */
export function readLines(path: string): string[] {
  return readFileSync(path, "utf8")
    .split("\n")
    .filter((line) => line !== "");
}

export function writeLines(path: string, lines: string[]): void {
  writeFileSync(path, lines.map((line) => `${line}\n`).join(""));
}

/** A TCP or Unix socket server on loopback that collects the lines it receives. */
export interface LineServer {
  /** `host:port` for TCP, the socket path for Unix. */
  address: string;
  /** Raw bytes received so far, across all connections. */
  received(): Buffer;
  lines(): string[];
  /** Resolves once `count` complete lines arrived; rejects after `timeoutMs`. */
  waitForLines(count: number, timeoutMs?: number): Promise<string[]>;
  /** Closes the server and every open connection. */
  close(): Promise<void>;
}

export async function startLineServer(
  options: { unixPath?: string; neverRead?: boolean } = {},
): Promise<LineServer> {
  const chunks: Buffer[] = [];
  const sockets = new Set<Socket>();
  const waiters: Array<() => void> = [];
  const server = createServer({ pauseOnConnect: options.neverRead === true }, (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => socket.destroy());
    socket.on("data", (chunk: Buffer) => {
      chunks.push(chunk);
      for (const waiter of waiters.splice(0)) waiter();
    });
  });
  await new Promise<void>((resolve) => {
    if (options.unixPath) server.listen(options.unixPath, resolve);
    else server.listen(0, "127.0.0.1", resolve);
  });
  const bound = server.address();
  const address =
    typeof bound === "string" || bound === null
      ? String(options.unixPath)
      : `127.0.0.1:${bound.port}`;
  const received = () => Buffer.concat(chunks);
  const lines = () => received().toString("utf8").split("\n").slice(0, -1);
  return {
    address,
    received,
    lines,
    async waitForLines(count, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (lines().length < count) {
        if (Date.now() > deadline) {
          throw new Error(`expected ${count} lines, received ${lines().length}`);
        }
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 100);
          waiters.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
      return lines();
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Creates a logger that keeps each log line as a parsed object. */
export function capturingLogger(): {
  logger: pino.Logger;
  entries: Array<Record<string, unknown>>;
} {
  const entries: Array<Record<string, unknown>> = [];
  const stream = { write: (line: string) => entries.push(JSON.parse(line)) };
  return { logger: pino({ level: "debug" }, stream), entries };
}
