/**
 * The KMIP listener: binary TTLV over mutual TLS (KMIP's TCP binding, port
 * 5696 by convention). Each connection carries any number of request
 * messages, one after another, and each response is written before the next
 * request is read. The client certificate and the client's address are
 * passed to the dispatcher, which maps the certificate to an identity and
 * audits each message.
 *
 * The server certificate can change while the listener runs (`setTls`).
 * Without one, every handshake fails with a handshake-failure alert, which
 * is how the listener rejects clients while Keyward is sealed.
 *
 * The same port serves KMIP's HTTPS binding over the same mutual TLS. A
 * connection whose first bytes are an HTTP request line goes to an HTTP
 * server. It takes a POST of one request message in TTLV, XML or JSON
 * (see http.ts).
 *
 * A frame that cannot be a Request Message (wrong first tag or type, or a
 * length above the limit) gets an Invalid Message response and the
 * connection is closed, because the stream can no longer be framed. A
 * connection idle for longer than the idle timeout, including one that
 * stops in the middle of a frame, is closed.
 */
import { createHash } from "node:crypto";
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type ServerResponse,
} from "node:http";
import type { AddressInfo } from "node:net";
import { createServer, type DetailedPeerCertificate, type TLSSocket } from "node:tls";
import { isKmipDecodeError } from "../errors.ts";
import {
  DEFAULT_MAX_MESSAGE_BYTES,
  encodeTtlv,
  TTLV_HEADER_BYTES,
  ttlvMessageLength,
} from "../ttlv.ts";
import type { KmipClient } from "./context.ts";
import type { KmipDispatcher, KmipLogger } from "./dispatcher.ts";
import { handleKmipHttp } from "./http.ts";
import type { KmipPeerCertificate } from "./identity.ts";
import { tag } from "./items.ts";

export interface KmipServerOptions {
  dispatcher: KmipDispatcher;
  host: string;
  /** 0 picks a free port; the result carries the port bound. */
  port: number;
  /**
   * PEM server certificate and key, and the CA bundle that client
   * certificates must chain to. Without them the listener rejects every
   * handshake until `setTls` gives them.
   */
  tls?: KmipListenerTls | undefined;
  logger: KmipLogger;
  /** Largest request message accepted, in bytes. Default 1 MiB, the TTLV decoder's default. */
  maxMessageBytes?: number;
  /** Milliseconds a connection may stay silent before it is closed. Default 60 s. */
  idleTimeoutMs?: number;
  /** Open connections allowed at once; further ones are dropped. Default 1024. */
  maxConnections?: number;
}

/** The listener's certificate chain and key, and the client CA bundle, PEM. */
export interface KmipListenerTls {
  cert: Buffer | string;
  key: Buffer | string;
  ca: Buffer | string;
}

export interface KmipServer {
  readonly port: number;
  /**
   * Replaces the server certificate, key and client CA for new
   * connections; undefined makes every new handshake fail. Open
   * connections keep theirs.
   */
  setTls(tls: KmipListenerTls | undefined): void;
  /** Stops accepting connections and closes the open ones. */
  close(): Promise<void>;
}

export const DEFAULT_IDLE_TIMEOUT_MS = 60_000;
export const DEFAULT_MAX_CONNECTIONS = 1024;

const STRUCTURE_TYPE = 0x01;
const MIN_TLS_VERSION = "TLSv1.2";

export async function startKmipServer(options: KmipServerOptions): Promise<KmipServer> {
  const maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  const idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  const sockets = new Set<TLSSocket>();
  let hasCertificate = options.tls !== undefined;
  const server = createServer(
    {
      ...(options.tls ?? {}),
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: MIN_TLS_VERSION,
      // A client may send its last request and then end its side; the responses still go out.
      allowHalfOpen: true,
    },
    (socket) => {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
      socket.setTimeout(idleTimeoutMs);
      const silent = () => socket.destroy();
      socket.once("timeout", silent);
      // The first bytes tell TTLV (a Request Message tag, 0x42) from an HTTP request line.
      socket.once("data", (first: Buffer) => {
        socket.off("timeout", silent);
        socket.pause();
        socket.unshift(first);
        if (HTTP_REQUEST_LINE.test(first.subarray(0, 8).toString("latin1"))) {
          httpServer.emit("connection", socket);
        } else {
          serveConnection(socket, options, maxMessageBytes, idleTimeoutMs);
        }
        socket.resume();
      });
    },
  );
  const httpServer = createHttpServer({ requestTimeout: idleTimeoutMs }, (request, response) => {
    serveHttpRequest(request, response, options, maxMessageBytes).catch((error: unknown) => {
      options.logger.error(
        { err: error, remoteAddress: request.socket.remoteAddress },
        "KMIP HTTP request failed",
      );
      if (!response.headersSent) response.writeHead(500, { "content-type": "text/plain" });
      response.end("internal error\n");
    });
  });
  httpServer.keepAliveTimeout = idleTimeoutMs;
  server.maxConnections = options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
  server.on("tlsClientError", (error, socket) => {
    if (!hasCertificate) {
      options.logger.info(
        { remoteAddress: socket.remoteAddress },
        "KMIP TLS handshake rejected: no server certificate is loaded while Keyward is sealed",
      );
      return;
    }
    options.logger.warn(
      { err: error.message, remoteAddress: socket.remoteAddress },
      "KMIP TLS handshake failed",
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  options.logger.info({ host: options.host, port }, "KMIP listener started");
  return {
    port,
    setTls(tls) {
      // An empty context has no certificate, so OpenSSL fails every handshake.
      server.setSecureContext({ ...(tls ?? {}), minVersion: MIN_TLS_VERSION });
      hasCertificate = tls !== undefined;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => {
          options.logger.info({ port }, "KMIP listener stopped");
          resolve();
        });
      }),
  };
}

/** The start of an HTTP/1.1 request line: a method in capitals and a space. */
const HTTP_REQUEST_LINE = /^[A-Z]{3,7} /;

/** How far past the size limit a request body is read before the connection is dropped. */
const DRAIN_LIMIT_FACTOR = 16;

/** The path KMIP's HTTPS binding posts to. */
const HTTP_PATH = "/kmip";

/**
 * Serves one KMIP request over HTTP: a POST to `/kmip` whose body is one
 * request message. A larger body than the limit gets 413.
 */
async function serveHttpRequest(
  request: IncomingMessage,
  response: ServerResponse,
  options: KmipServerOptions,
  maxMessageBytes: number,
): Promise<void> {
  const plain = (status: number, message: string, headers: Record<string, string> = {}) => {
    response.writeHead(status, { "content-type": "text/plain; charset=utf-8", ...headers });
    response.end(`${message}\n`);
  };
  const path = (request.url ?? "").split("?")[0];
  if (path !== HTTP_PATH) {
    plain(404, `not found: KMIP requests go to POST ${HTTP_PATH}`);
    return;
  }
  if (request.method !== "POST") {
    plain(405, `method not allowed: send POST ${HTTP_PATH}`, { allow: "POST" });
    return;
  }
  const chunks: Buffer[] = [];
  let received = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    received += chunk.length;
    // A body past the limit is read on without being kept, so the client
    // gets its 413 instead of a reset, up to a point where the connection is dropped.
    if (received > DRAIN_LIMIT_FACTOR * maxMessageBytes) break;
    if (received <= maxMessageBytes) chunks.push(chunk);
  }
  const socket = request.socket as TLSSocket;
  const certificate = peerCertificateOf(socket);
  const answer = await handleKmipHttp(
    options.dispatcher,
    request.headers["content-type"],
    Buffer.concat(chunks),
    {
      identity: certificate?.commonName,
      certificate,
      remoteAddress: socket.remoteAddress,
      maxMessageBytes,
      truncated: received > maxMessageBytes,
    },
  );
  response.writeHead(answer.status, { "content-type": answer.contentType });
  response.end(answer.body);
}

function asList(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

/** Reads the client certificate of an authorised connection, or undefined when there is none. */
export function peerCertificateOf(socket: TLSSocket): KmipPeerCertificate | undefined {
  const peer = socket.getPeerCertificate() as DetailedPeerCertificate | Record<string, never>;
  if (peer === null || !("raw" in peer) || peer.raw === undefined) return undefined;
  const subject = peer.subject as unknown as Record<string, string | string[] | undefined>;
  const serial = (peer.serialNumber ?? "").toLowerCase().replace(/^(00)+(?=[0-9a-f]{2})/, "");
  return {
    commonName: asList(subject?.CN)[0],
    organizationalUnits: asList(subject?.OU),
    serialNumber: serial.length % 2 === 1 ? `0${serial}` : serial,
    fingerprint: createHash("sha256").update(peer.raw).digest("hex"),
  };
}

function serveConnection(
  socket: TLSSocket,
  options: KmipServerOptions,
  maxMessageBytes: number,
  idleTimeoutMs: number,
): void {
  const certificate = peerCertificateOf(socket);
  const identity = certificate?.commonName;
  const client: KmipClient = { identity, remoteAddress: socket.remoteAddress, certificate };
  const log = { remoteAddress: socket.remoteAddress, identity };
  let buffered: Buffer = Buffer.alloc(0);
  let processing = false;
  let closing = false;

  socket.setTimeout(idleTimeoutMs);
  socket.on("timeout", () => {
    options.logger.info(log, "KMIP connection idle; closing it");
    socket.destroy();
  });
  socket.on("error", (error) => {
    options.logger.warn({ ...log, err: error.message }, "KMIP connection failed");
  });

  const fail = (reason: "InvalidMessage", message: string) => {
    closing = true;
    buffered = Buffer.alloc(0);
    options.logger.warn({ ...log, reason: message }, "KMIP frame rejected; closing the connection");
    options.dispatcher
      .rejectMessage(client, reason, message)
      .then((response) => socket.end(encodeTtlv(response)))
      .catch((error: unknown) => {
        options.logger.error(
          { ...log, err: error },
          "failed to build the KMIP error response; closing the connection",
        );
        socket.destroy();
      });
  };

  /** Returns the next complete frame, or undefined until more bytes arrive. */
  const nextFrame = (): Buffer | undefined => {
    if (buffered.length < TTLV_HEADER_BYTES) return undefined;
    const firstTag = buffered.readUIntBE(0, 3);
    if (firstTag !== tag("RequestMessage") || buffered[3] !== STRUCTURE_TYPE) {
      fail("InvalidMessage", "the stream does not start with a TTLV Request Message");
      return undefined;
    }
    let length: number;
    try {
      length = ttlvMessageLength(buffered, { maxMessageBytes });
    } catch (error) {
      if (!isKmipDecodeError(error)) throw error;
      fail("InvalidMessage", error.message);
      return undefined;
    }
    if (buffered.length < length) return undefined;
    const frame = buffered.subarray(0, length);
    buffered = buffered.subarray(length);
    return frame;
  };

  let peerEnded = false;
  /** Closes the connection after the client ended its side, once every complete request has its response. */
  const endAfterPeer = () => {
    if (buffered.length > 0) {
      fail("InvalidMessage", "the connection ended inside a TTLV message");
      return;
    }
    socket.end();
  };

  const drain = async () => {
    if (processing) return;
    processing = true;
    try {
      for (let frame = nextFrame(); frame !== undefined && !closing; frame = nextFrame()) {
        const response = await options.dispatcher.handleTtlv(frame, client, { maxMessageBytes });
        if (socket.destroyed) return;
        socket.write(response);
      }
    } catch (error) {
      options.logger.error({ ...log, err: error }, "KMIP request failed");
      socket.destroy();
    } finally {
      processing = false;
    }
    if (peerEnded && !closing && !socket.destroyed) endAfterPeer();
  };

  socket.on("data", (chunk: Buffer) => {
    if (closing) return;
    buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
    void drain();
  });
  socket.on("end", () => {
    if (closing) return;
    peerEnded = true;
    if (!processing) endAfterPeer();
  });
}
