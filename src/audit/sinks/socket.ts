import type { AuditSink, SinkTail } from "./sink.ts";
import { type StreamAddress, StreamConnection } from "./stream.ts";

/**
 * Sends records as JSON lines over a TCP or Unix stream socket. A write
 * counts as done once the kernel has taken the line, because the protocol
 * has no acknowledgement. After a failed or timed-out write, the next write
 * reconnects, and the receiver may see a partial line where the connection
 * broke.
 */
export class SocketSink implements AuditSink {
  readonly readsBack = false;
  readonly #connection: StreamConnection;

  constructor(address: StreamAddress) {
    this.#connection = new StreamConnection(address);
  }

  async open(): Promise<SinkTail | undefined> {
    await this.#connection.connect();
    return undefined;
  }

  async write(line: string): Promise<void> {
    await this.#connection.write(Buffer.from(`${line}\n`, "utf8"));
  }

  abort(): void {
    this.#connection.abort();
  }

  close(): Promise<void> {
    return this.#connection.close();
  }
}
