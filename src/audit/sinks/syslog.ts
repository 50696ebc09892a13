import { createSocket, type Socket as DatagramSocket } from "node:dgram";
import { isIPv6 } from "node:net";
import { hostname } from "node:os";
import type { ChainedRecord } from "../types.ts";
import type { AuditSink, SinkTail } from "./sink.ts";
import { type StreamAddress, StreamConnection } from "./stream.ts";

/** Syslog facility codes by name (RFC 5424, section 6.2.1, table 1). */
export const SYSLOG_FACILITIES: Readonly<Record<string, number>> = Object.freeze({
  kern: 0,
  user: 1,
  mail: 2,
  daemon: 3,
  auth: 4,
  syslog: 5,
  lpr: 6,
  news: 7,
  uucp: 8,
  cron: 9,
  authpriv: 10,
  ftp: 11,
  ntp: 12,
  audit: 13,
  alert: 14,
  clock: 15,
  local0: 16,
  local1: 17,
  local2: 18,
  local3: 19,
  local4: 20,
  local5: 21,
  local6: 22,
  local7: 23,
});

/** Severity of every audit message: informational (RFC 5424, section 6.2.1, table 2). */
const SEVERITY_INFORMATIONAL = 6;
/** HOSTNAME is at most 255 printable US-ASCII characters (RFC 5424, section 6.2.4). */
const MAX_HOSTNAME_LENGTH = 255;
/** APP-NAME is at most 48 printable US-ASCII characters (RFC 5424, section 6.2.5). */
export const MAX_TAG_LENGTH = 48;
const PRINTABLE_ASCII = /^[\x21-\x7e]+$/;

export type SyslogTransport = "udp" | "tcp" | "unix";

export interface SyslogOptions {
  transport: SyslogTransport;
  /** `host:port` for UDP and TCP, a socket path for Unix. */
  address: StreamAddress;
  facility: number;
  tag: string;
}

function syslogHostname(): string {
  const name = hostname()
    .replace(/[^\x21-\x7e]/g, "")
    .slice(0, MAX_HOSTNAME_LENGTH);
  return name === "" ? "-" : name;
}

/**
 * Formats one RFC 5424 message: `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID
 * MSGID - MSG`, with the record type as MSGID, no structured data, and the
 * record's JSON line as MSG. The MSG carries no byte order mark, so it is
 * MSG-ANY in the RFC's grammar, which many receivers parse more reliably
 * than MSG-UTF8.
 */
export function formatSyslogMessage(
  line: string,
  record: ChainedRecord,
  options: { facility: number; tag: string; hostname?: string; pid?: number },
): string {
  const priority = options.facility * 8 + SEVERITY_INFORMATIONAL;
  const host = options.hostname ?? syslogHostname();
  const pid = options.pid ?? process.pid;
  return `<${priority}>1 ${record.time} ${host} ${options.tag} ${pid} ${record.type} - ${line}`;
}

/** Checks a syslog tag (APP-NAME): 1 to 48 printable US-ASCII characters. */
export function isValidSyslogTag(tag: string): boolean {
  return tag.length <= MAX_TAG_LENGTH && PRINTABLE_ASCII.test(tag);
}

/**
 * Sends records to a syslog receiver as RFC 5424 messages: one datagram
 * each over UDP (RFC 5426), or octet-counted frames (`LENGTH SP MESSAGE`,
 * RFC 6587 section 3.4.1) over TCP and Unix stream sockets. The framing is
 * written here because it is a few lines.
 *
 * NOTE: a UDP datagram carries at most 65,507 bytes, so a larger record
 * fails on this device. Node has no Unix datagram sockets, so `unix` means
 * a stream socket; the usual `/dev/log` is a datagram socket and does not
 * accept it.
 */
export class SyslogSink implements AuditSink {
  readonly readsBack = false;
  readonly #options: SyslogOptions;
  readonly #stream: StreamConnection | undefined;
  #datagram: DatagramSocket | undefined;

  constructor(options: SyslogOptions) {
    this.#options = options;
    this.#stream = options.transport === "udp" ? undefined : new StreamConnection(options.address);
  }

  async open(): Promise<SinkTail | undefined> {
    if (this.#stream) await this.#stream.connect();
    else await this.#connectDatagram();
    return undefined;
  }

  async #connectDatagram(): Promise<DatagramSocket> {
    if (this.#datagram !== undefined) return this.#datagram;
    const address = this.#options.address;
    if (address.kind !== "tcp") throw new Error("syslog over UDP needs a host:port address");
    const socket = createSocket(isIPv6(address.host) ? "udp6" : "udp4");
    // Send errors reach the caller through the send callback; this listener
    // keeps an asynchronous socket error from crashing the process.
    socket.on("error", () => this.abort());
    await new Promise<void>((resolve, reject) => {
      socket.once("error", reject);
      socket.connect(address.port, address.host, () => {
        socket.off("error", reject);
        resolve();
      });
    });
    this.#datagram = socket;
    return socket;
  }

  async write(line: string, record: ChainedRecord): Promise<void> {
    const message = Buffer.from(formatSyslogMessage(line, record, this.#options), "utf8");
    if (this.#stream) {
      const frame = Buffer.concat([Buffer.from(`${message.length} `, "ascii"), message]);
      await this.#stream.write(frame);
      return;
    }
    const socket = await this.#connectDatagram();
    await new Promise<void>((resolve, reject) => {
      socket.send(message, (error) => (error ? reject(error) : resolve()));
    });
  }

  abort(): void {
    this.#stream?.abort();
    const datagram = this.#datagram;
    this.#datagram = undefined;
    if (datagram !== undefined) {
      try {
        datagram.close();
      } catch {
        // Already closed.
      }
    }
  }

  async close(): Promise<void> {
    if (this.#stream) {
      await this.#stream.close();
      return;
    }
    const datagram = this.#datagram;
    this.#datagram = undefined;
    if (datagram !== undefined) await new Promise<void>((resolve) => datagram.close(resolve));
  }
}
