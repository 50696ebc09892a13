import { createReadStream, statSync } from "node:fs";
import { StringDecoder } from "node:string_decoder";
import type { Command } from "commander";
import type { NodeChainResult, StoreVerifyResult } from "../../audit/store-verify.ts";
import { type VerifyResult, verifyAuditLog } from "../../audit/verify.ts";
import { fileReadMessage, readInputFile } from "../files.ts";
import { print } from "../output.ts";
import { addClientOptions, clientFrom, type GlobalOptions } from "./shared.ts";

/** Exit status of `keyward audit verify` when the log was tampered with. */
export const EXIT_TAMPERED = 1;

/** Parses `key=value` device options; every value stays a string, as Vault's options are. */
function parseOptions(pairs: string[]): Record<string, string> {
  const options: Record<string, string> = {};
  for (const pair of pairs) {
    const index = pair.indexOf("=");
    if (index <= 0) throw new Error(`invalid option "${pair}"; expected key=value`);
    options[pair.slice(0, index)] = pair.slice(index + 1);
  }
  return options;
}

/**
 * Longest line `fileLines` reads, in UTF-16 code units: far above any audit
 * record, and below V8's maximum string length of about 2^29 code units.
 */
export const MAX_LINE_LENGTH = 256 * 1024 * 1024;

/**
 * Yields the lines of a file without their newlines, reading it in chunks.
 * Each chunk is searched once, so a long line costs time linear in its
 * length. Read errors are thrown, and so is a line longer than `maxLength`.
 */
export async function* fileLines(
  path: string,
  maxLength = MAX_LINE_LENGTH,
): AsyncGenerator<string> {
  const decoder = new StringDecoder("utf8");
  let pending = "";
  let lineNumber = 0;
  const checkLength = (length: number) => {
    if (length > maxLength) {
      throw new Error(
        `invalid audit log: line ${lineNumber + 1} of ${path} is longer than ${maxLength} characters`,
      );
    }
  };
  for await (const chunk of createReadStream(path)) {
    const text = decoder.write(chunk as Buffer);
    let start = 0;
    for (let end = text.indexOf("\n"); end !== -1; end = text.indexOf("\n", start)) {
      checkLength(pending.length + end - start);
      lineNumber += 1;
      yield pending + text.slice(start, end);
      pending = "";
      start = end + 1;
    }
    checkLength(pending.length + text.length - start);
    pending += text.slice(start);
  }
  pending += decoder.end();
  if (pending !== "") yield pending;
}

/**
 * Yields the lines of several files in order, and maps a line number of
 * the whole back to the file and its own line number.
 */
function concatenatedLines(files: string[]) {
  const ends: number[] = [];
  async function* lines(): AsyncGenerator<string> {
    let count = 0;
    for (const file of files) {
      for await (const line of fileLines(file)) {
        count += 1;
        yield line;
      }
      ends.push(count);
    }
  }
  const locate = (line: number): { file: string; line: number } => {
    let start = 0;
    for (const [index, end] of ends.entries()) {
      if (line <= end) return { file: files[index] ?? "", line: line - start };
      start = end;
    }
    // Past the last line: the problem is the end of the last file.
    return { file: files.at(-1) ?? "", line: line - start };
  };
  return { lines: lines(), locate };
}

/** Reads a public key given as PEM text or as the path of a PEM file. */
function readPublicKey(value: string): string {
  return value.trimStart().startsWith("-----BEGIN")
    ? value
    : readInputFile(value, "the public key file (--public-key)", "utf8");
}

/**
 * Checks that each audit log file exists and is no directory, before any is
 * read. Pipes are allowed, such as `<(zcat audit.log.gz)`.
 */
function checkLogFiles(files: string[]): void {
  for (const file of files) {
    let isDirectory: boolean;
    try {
      isDirectory = statSync(file).isDirectory();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") {
        throw new Error(`audit log file not found: ${file}`, { cause: error });
      }
      throw new Error(fileReadMessage("the audit log file", file, error), { cause: error });
    }
    if (isDirectory) throw new Error(`cannot read the audit log file "${file}": it is a directory`);
  }
}

/** Formats `n` with `noun`, adding "s" unless `n` is 1. */
function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}

/** Prints a verification result and sets the exit status to 1 when the log was tampered with. */
export function reportVerification(format: GlobalOptions["format"], result: VerifyResult) {
  if (!result.ok) process.exitCode = EXIT_TAMPERED;
  if (format === "json") {
    print("json", result);
    return;
  }
  if (!result.ok) {
    const { firstBad } = result;
    const record = firstBad.seq === undefined ? "" : ` record ${firstBad.seq}`;
    const inFile = firstBad.file === undefined ? "" : ` of ${firstBad.file}`;
    process.stdout.write(
      `Audit log TAMPERED:${record} at line ${firstBad.line}${inFile}: ${firstBad.reason} (${firstBad.detail}).\n` +
        `Verified before it: ${count(result.records, "record")}, ${count(result.checkpoints, "checkpoint")}.\n`,
    );
    return;
  }
  process.stdout.write(
    `Audit log verified: ${count(result.records, "record")}, ${count(result.checkpoints, "checkpoint")}, last seq ${result.lastSeq}.\n`,
  );
  if (!result.signaturesChecked) {
    process.stderr.write(
      "WARNING: no public key given, so checkpoint signatures were not checked; pass --public-key (from GET /v1/sys/audit/public-key).\n",
    );
  }
  if (result.unsignedRecords > 0) {
    process.stderr.write(
      `WARNING: the last ${result.unsignedRecords} records follow the last checkpoint, so no signature covers them; a log closed cleanly ends with a checkpoint.\n`,
    );
  }
}

/** Names a store chain in the report: its node, or the legacy chain. */
function chainLabel(node: string | null): string {
  return node === null ? "legacy chain (written before per-node chains)" : `node ${node}`;
}

/** Describes one chain's verification in a line, without its label. */
function describeChain(result: NodeChainResult): string {
  if (!result.ok) {
    const { firstBad } = result;
    const record = firstBad.seq === undefined ? "" : ` record ${firstBad.seq}`;
    return (
      `TAMPERED:${record} at line ${firstBad.line}: ${firstBad.reason} (${firstBad.detail}); ` +
      `verified before it: ${count(result.records, "record")}, ${count(result.checkpoints, "checkpoint")}`
    );
  }
  const unsigned =
    result.unsignedRecords === 0
      ? ""
      : `, ${count(result.unsignedRecords, "record")} after the last checkpoint`;
  return `verified: ${count(result.records, "record")}, ${count(result.checkpoints, "checkpoint")}, last seq ${result.lastSeq}${unsigned}`;
}

/**
 * Prints the verification of a store device, one line per node's chain,
 * and sets the exit status to 1 when any chain was tampered with.
 */
export function reportStoreVerification(
  format: GlobalOptions["format"],
  result: StoreVerifyResult,
) {
  if (!result.ok) process.exitCode = EXIT_TAMPERED;
  if (format === "json") {
    print("json", result);
    return;
  }
  const chains = count(result.nodes.length, "chain");
  const firstBad = result.firstBad;
  const verdict =
    firstBad === undefined
      ? `verified: ${chains}, ${count(result.records, "record")}, ${count(result.checkpoints, "checkpoint")}`
      : `TAMPERED in ${chainLabel(firstBad.node)}${firstBad.seq === undefined ? "" : `, record ${firstBad.seq}`}: ${firstBad.reason}`;
  const lines = [`Audit store device ${result.device}/ ${verdict}.`];
  for (const chain of result.nodes)
    lines.push(`  ${chainLabel(chain.node)}: ${describeChain(chain)}.`);
  process.stdout.write(`${lines.join("\n")}\n`);
  if (!result.signaturesChecked) {
    process.stderr.write(
      "WARNING: the server checked no checkpoint signatures, so only the hash chains were verified.\n",
    );
  }
}

interface SearchFlags extends GlobalOptions {
  device?: string;
  node?: string;
  from?: string;
  to?: string;
  accessor?: string;
  path?: string;
  key?: string;
  type?: string;
  limit?: string;
  offset?: string;
}

function searchPath(flags: SearchFlags): string {
  const query = new URLSearchParams();
  const fields: Array<[string, string | undefined]> = [
    ["device", flags.device],
    ["node", flags.node],
    ["from", flags.from],
    ["to", flags.to],
    ["accessor", flags.accessor],
    ["path_prefix", flags.path],
    ["key", flags.key],
    ["type", flags.type],
    ["limit", flags.limit],
    ["offset", flags.offset],
  ];
  for (const [name, value] of fields) if (value !== undefined) query.set(name, value);
  const text = query.toString();
  return text === "" ? "/v1/sys/audit/search" : `/v1/sys/audit/search?${text}`;
}

interface RecordRow {
  seq: number;
  time: string;
  node?: string;
  type: string;
  request?: { operation?: string; path?: string };
  auth?: { accessor?: string };
  response?: { status?: number };
}

/** Renders search results as aligned columns, one record per line. */
function renderRecords(records: RecordRow[]): string {
  const rows = records.map((record) => [
    record.time,
    record.node ?? "",
    String(record.seq),
    record.type,
    record.request?.operation ?? "",
    record.request?.path ?? "",
    record.auth?.accessor ?? "",
    record.response?.status === undefined ? "" : String(record.response.status),
  ]);
  const header = ["Time", "Node", "Seq", "Type", "Operation", "Path", "Accessor", "Status"];
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => (row[column] ?? "").length)),
  );
  const line = (cells: string[]) =>
    cells
      .map((cell, column) => cell.padEnd(widths[column] ?? 0))
      .join("  ")
      .trimEnd();
  return [line(header), line(widths.map((width) => "-".repeat(width))), ...rows.map(line)].join(
    "\n",
  );
}

export function registerAuditCommands(program: Command) {
  const audit = program
    .command("audit")
    .description("manage audit devices, and search and verify the audit log");

  addClientOptions(audit.command("list").description("list the enabled audit devices")).action(
    async (options: GlobalOptions) => {
      const { body } = await clientFrom(options).request("GET", "/v1/sys/audit");
      const data = ((body as { data?: Record<string, unknown> }).data ?? {}) as Record<
        string,
        { type: string; description: string }
      >;
      if (options.format === "json") {
        print("json", data);
        return;
      }
      const rows = Object.entries(data).map(
        ([path, device]) => `${path.padEnd(16)}  ${device.type.padEnd(8)}  ${device.description}`,
      );
      process.stdout.write(
        `${["Path".padEnd(16), "Type".padEnd(8), "Description"].join("  ")}\n${rows.join("\n")}\n`,
      );
    },
  );

  addClientOptions(
    audit
      .command("enable")
      .description(
        "enable an audit device: keyward audit enable file file_path=/var/log/keyward/audit.log",
      )
      .argument("<type>", "file, socket, syslog or store")
      .argument("[options...]", "device options as key=value, such as address=127.0.0.1:9090")
      .option("--path <path>", "path to enable the device at (default: the type)")
      .option("--description <text>", "a description shown by audit list"),
  ).action(
    async (
      type: string,
      pairs: string[],
      options: GlobalOptions & { path?: string; description?: string },
    ) => {
      const path = (options.path ?? type).replace(/^\/+|\/+$/g, "");
      await clientFrom(options).request("PUT", `/v1/sys/audit/${encodeURIComponent(path)}`, {
        type,
        description: options.description ?? "",
        options: parseOptions(pairs),
      });
      process.stdout.write(`Success! Enabled the ${type} audit device at: ${path}/\n`);
    },
  );

  addClientOptions(
    audit.command("disable").description("disable an audit device").argument("<path>"),
  ).action(async (path: string, options: GlobalOptions) => {
    const trimmed = path.replace(/^\/+|\/+$/g, "");
    await clientFrom(options).request("DELETE", `/v1/sys/audit/${encodeURIComponent(trimmed)}`);
    process.stdout.write(
      `Success! Disabled the audit device (if it was enabled) at: ${trimmed}/\n`,
    );
  });

  addClientOptions(
    audit
      .command("search")
      .description("search the records of the store audit device, merged by time over every node")
      .option("--from <time>", "earliest record time, inclusive (ISO 8601)")
      .option("--to <time>", "latest record time, exclusive (ISO 8601)")
      .option("--accessor <accessor>", "token accessor")
      .option("--path <prefix>", "start of the request path, such as transit/encrypt/")
      .option("--key <name>", "managed key name")
      .option("--type <type>", "request, response or checkpoint (default: requests and responses)")
      .option("--limit <n>", "maximum records to print, 1 to 1000 (default 100)")
      .option("--offset <n>", "matching records to skip")
      .option("--device <path>", "store device to search (default: the first one)")
      .option("--node <id>", "only the records of this node's chain (default: every node)"),
  ).action(async (flags: SearchFlags) => {
    const { body } = await clientFrom(flags).request("GET", searchPath(flags));
    const data = (body as { data: { records: RecordRow[]; total: number } }).data;
    if (flags.format === "json") {
      print("json", data);
      return;
    }
    process.stdout.write(`${renderRecords(data.records)}\n`);
    process.stderr.write(`${data.records.length} of ${data.total} matching records shown.\n`);
  });

  addClientOptions(
    audit
      .command("verify")
      .description(
        "verify an audit log file offline, or every node's chain of the store device through the server (--store); exit status 1 when tampered",
      )
      .argument(
        "[files...]",
        "a file device's log; several files (such as rotated ones, oldest first) are verified as one log",
      )
      .option("--public-key <pem>", "PEM file (or text) of the checkpoint signing key")
      .option(
        "--strict",
        "also require the log to end with a signed checkpoint, as a log closed cleanly does (needs --public-key)",
      )
      .option(
        "--continuation",
        "accept a log that starts after record 1, such as a rotated file without its predecessors",
      )
      .option("--store", "verify the store device's records on the server")
      .option("--device <path>", "with --store, the store device to verify"),
  ).action(
    async (
      files: string[],
      options: GlobalOptions & {
        publicKey?: string;
        strict?: boolean;
        continuation?: boolean;
        store?: boolean;
        device?: string;
      },
    ) => {
      if (options.store) {
        if (files.length > 0) throw new Error("give either files or --store, not both");
        const query = options.device ? `?device=${encodeURIComponent(options.device)}` : "";
        const { body } = await clientFrom(options).request("GET", `/v1/sys/audit/verify${query}`);
        reportStoreVerification(options.format, (body as { data: StoreVerifyResult }).data);
        return;
      }
      if (files.length === 0) throw new Error("give the audit log file to verify, or --store");
      if (options.strict && !options.publicKey) {
        throw new Error("--strict needs --public-key, since only a signature proves the end");
      }
      checkLogFiles(files);
      const publicKey = options.publicKey ? readPublicKey(options.publicKey) : undefined;
      const log = concatenatedLines(files);
      const result = await verifyAuditLog(log.lines, publicKey, {
        requireSignedEnd: options.strict === true,
        continuation: options.continuation === true,
      });
      if (!result.ok && files.length > 1) {
        const { file, line } = log.locate(result.firstBad.line);
        result.firstBad = { ...result.firstBad, line, file };
      }
      reportVerification(options.format, result);
    },
  );
}
