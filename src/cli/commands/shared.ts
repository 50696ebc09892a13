import { type Command, Option } from "commander";
import { KeywardClient } from "../client.ts";
import { OUTPUT_FORMATS, type OutputFormat } from "../output.ts";

/** The options `addClientOptions` adds to a command. */
export interface GlobalOptions {
  address: string;
  token?: string;
  caCert?: string;
  format: OutputFormat;
}

export function clientFrom(options: GlobalOptions): KeywardClient {
  return new KeywardClient({
    address: options.address,
    ...(options.token ? { token: options.token } : {}),
    ...(options.caCert ? { caCertFile: options.caCert } : {}),
  });
}

/** Reads all of standard input as text, for secrets that should not appear in shell history. */
export async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

/** Options every client command takes, each with its environment variable. */
export function addClientOptions(command: Command): Command {
  return command
    .addOption(
      new Option("--address <url>", "server address")
        .env("KEYWARD_ADDR")
        .default("http://127.0.0.1:8200"),
    )
    .addOption(new Option("--token <token>", "token to authenticate with").env("KEYWARD_TOKEN"))
    .addOption(
      new Option(
        "--ca-cert <file>",
        "PEM file of CA certificates that signed the server's certificate",
      ).env("KEYWARD_CACERT"),
    )
    .addOption(
      new Option("--format <format>", "output format").choices(OUTPUT_FORMATS).default("table"),
    );
}
