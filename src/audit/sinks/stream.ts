import { createConnection, type Socket } from "node:net";

/** A TCP address or the path of a Unix domain socket. */
export type StreamAddress =
  | { kind: "tcp"; host: string; port: number }
  | { kind: "unix"; path: string };

/**
 * Parses `host:port` (an IPv6 host in brackets, as in `[::1]:9090`).
 * Throws a plain Error whose message names the expected form.
 */
export function parseHostPort(address: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(address);
  const port = match ? Number(match[3]) : Number.NaN;
  if (!match || port < 1 || port > 65535) {
    throw new Error(`"${address}" is not of the form host:port, such as 127.0.0.1:9090`);
  }
  return { host: (match[1] ?? match[2]) as string, port };
}

/**
 * One lazily opened stream connection: connects on the first write, and
 * again on the first write after the connection broke or was aborted.
 */
export class StreamConnection {
  readonly #address: StreamAddress;
  #socket: Socket | undefined;

  constructor(address: StreamAddress) {
    this.#address = address;
  }

  /** Connects unless a connection is open. */
  async connect(): Promise<Socket> {
    const current = this.#socket;
    if (current !== undefined && !current.destroyed && !current.connecting) return current;
    if (current !== undefined) current.destroy();

    const address = this.#address;
    const socket =
      address.kind === "tcp"
        ? createConnection({ host: address.host, port: address.port })
        : createConnection({ path: address.path });
    this.#socket = socket;
    // A socket error with no listener would crash the process; the failure
    // reaches the caller through the pending connect or write instead.
    socket.on("error", () => socket.destroy());
    socket.on("close", () => {
      if (this.#socket === socket) this.#socket = undefined;
    });
    await new Promise<void>((resolve, reject) => {
      const settle = (error?: Error) => {
        socket.off("connect", onConnect);
        socket.off("error", onError);
        socket.off("close", onClose);
        if (error) reject(error);
        else resolve();
      };
      const onConnect = () => settle();
      const onError = (error: Error) => settle(error);
      // `abort` destroys the socket without an error, which only closes it.
      const onClose = () =>
        settle(new Error(`the connection to ${describeAddress(address)} was closed`));
      socket.once("connect", onConnect);
      socket.once("error", onError);
      socket.once("close", onClose);
    });
    return socket;
  }

  /** Writes `data`; resolves once the kernel has taken all of it. */
  async write(data: Uint8Array): Promise<void> {
    const socket = await this.connect();
    await new Promise<void>((resolve, reject) => {
      const onClose = () => reject(new Error("the connection closed during the write"));
      socket.once("close", onClose);
      socket.write(data, (error) => {
        socket.off("close", onClose);
        if (error) reject(error);
        else resolve();
      });
    });
  }

  /** Destroys the connection; a pending connect or write fails. */
  abort(): void {
    this.#socket?.destroy();
    this.#socket = undefined;
  }

  /**
   * Ends the connection once the kernel has taken every pending write. It
   * waits as long as the peer does not read, so callers bound it with a
   * timeout and call `abort`.
   */
  async close(): Promise<void> {
    const socket = this.#socket;
    if (socket === undefined || socket.destroyed) return;
    await new Promise<void>((resolve) => {
      socket.once("close", () => resolve());
      socket.end(() => socket.destroy());
    });
    if (this.#socket === socket) this.#socket = undefined;
  }
}

export function describeAddress(address: StreamAddress): string {
  return address.kind === "tcp" ? `${address.host}:${address.port}` : address.path;
}
