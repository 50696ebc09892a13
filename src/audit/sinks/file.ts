import { constants } from "node:fs";
import { type FileHandle, open } from "node:fs/promises";
import { dirname } from "node:path";
import type { Logger } from "pino";
import { KeywardError } from "../../errors.ts";
import { type AuditSink, type SinkTail, tailOfLine } from "./sink.ts";

/** Permission bits of an audit file: the server's user only. */
const FILE_MODE = 0o600;
/**
 * Open flags: read and append, created when missing. O_NONBLOCK keeps the
 * open of a FIFO from waiting for a reader, so that `open` can reject it
 * (the flag does nothing to a regular file).
 */
const OPEN_FLAGS = constants.O_RDWR | constants.O_APPEND | constants.O_CREAT | constants.O_NONBLOCK;
/** Bytes read at a time while looking for the last line. */
const TAIL_CHUNK_BYTES = 64 * 1024;
const NEWLINE = 0x0a;

/** Returns the offset of the last newline before `end`, or -1 when there is none. */
async function lastNewlineBefore(handle: FileHandle, end: number): Promise<number> {
  let position = end;
  while (position > 0) {
    const start = Math.max(0, position - TAIL_CHUNK_BYTES);
    const buffer = Buffer.alloc(position - start);
    await handle.read(buffer, 0, buffer.length, start);
    const index = buffer.lastIndexOf(NEWLINE);
    if (index !== -1) return start + index;
    position = start;
  }
  return -1;
}

/**
 * Appends records as JSON lines to a file, fsync'ing each one before the
 * write resolves, so a record is on disk before the request proceeds.
 *
 * The file is opened once. After a log rotator renames it, `reopen`
 * (which the server runs on SIGHUP) starts a new file at the same path,
 * and the hash chain continues there.
 */
export class FileSink implements AuditSink {
  readonly readsBack = true;
  readonly #path: string;
  readonly #logger: Logger;
  #handle: FileHandle | undefined;

  constructor(path: string, logger: Logger) {
    this.#path = path;
    this.#logger = logger;
  }

  async open(): Promise<SinkTail | undefined> {
    await this.close();
    const handle = await open(this.#path, OPEN_FLAGS, FILE_MODE);
    try {
      const stats = await handle.stat();
      // Checked before the chmod, which would otherwise change a device such as /dev/null.
      if (!stats.isFile()) {
        throw new KeywardError(
          "invalid_request",
          `the audit file "${this.#path}" is not a regular file (it is a device, FIFO or socket, or a link to one); name a regular file`,
          { field: "options.file_path" },
        );
      }
      if ((stats.mode & 0o777) !== FILE_MODE) await handle.chmod(FILE_MODE);
      if (stats.size === 0) await syncDirectory(dirname(this.#path));
      const head = await this.#readTail(handle, stats.size);
      this.#handle = handle;
      return head;
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  /**
   * Returns the tail of the last complete line. A final line without a
   * newline is the remains of a write cut short by a crash. No request was
   * reported as audited by that write, so the partial line is cut off.
   */
  async #readTail(handle: FileHandle, size: number): Promise<SinkTail | undefined> {
    if (size === 0) return undefined;
    let end = size;
    const lastNewline = await lastNewlineBefore(handle, end);
    if (lastNewline !== end - 1) {
      end = lastNewline + 1;
      await handle.truncate(end);
      await handle.sync();
      this.#logger.warn(
        { path: this.#path, droppedBytes: size - end },
        "cut off an incomplete last line of the audit file",
      );
      if (end === 0) return undefined;
    }
    const start = (await lastNewlineBefore(handle, end - 1)) + 1;
    const buffer = Buffer.alloc(end - 1 - start);
    await handle.read(buffer, 0, buffer.length, start);
    return tailOfLine(buffer.toString("utf8"));
  }

  async reopen(): Promise<SinkTail | undefined> {
    return this.open();
  }

  async write(line: string): Promise<void> {
    await this.writeBatch([line]);
  }

  /** Appends the lines with one fsync for all of them. */
  async writeBatch(lines: string[]): Promise<void> {
    const handle = this.#handle;
    if (handle === undefined) throw new Error("the audit file is not open");
    const data = Buffer.from(lines.map((line) => `${line}\n`).join(""), "utf8");
    let offset = 0;
    while (offset < data.length) {
      const { bytesWritten } = await handle.write(data, offset, data.length - offset);
      offset += bytesWritten;
    }
    await handle.sync();
  }

  abort(): void {
    // A file write cannot be cancelled; the device stops queueing behind it instead.
  }

  async close(): Promise<void> {
    const handle = this.#handle;
    this.#handle = undefined;
    if (handle !== undefined) await handle.close();
  }
}

/** Fsyncs a directory, so a file just created in it survives a crash. */
async function syncDirectory(path: string): Promise<void> {
  const directory = await open(path, "r");
  try {
    await directory.sync();
  } finally {
    await directory.close();
  }
}
