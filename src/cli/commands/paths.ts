import type { Command } from "commander";
import { readInputFile } from "../files.ts";
import { printResponse, renderList } from "../output.ts";
import { addClientOptions, clientFrom, type GlobalOptions, readStdin } from "./shared.ts";

/** A "." or ".." path segment, also with its dots percent-encoded as the URL parser accepts. */
const DOT_SEGMENT = /^(?:\.|%2e){1,2}$/i;

/** Turns `transit/keys/a` or `/v1/transit/keys/a` into the API path `/v1/transit/keys/a`. */
export function apiPath(path: string): string {
  const trimmed = path.replace(/^\/+/, "").replace(/^v1\//, "");
  if (trimmed === "") throw new Error("a path is required, such as transit/keys/my-key");
  // The URL parser would resolve these segments on the client, so the request
  // would reach another path than the one given. It also reads "\" as "/" and
  // "%2e" as "." in http and https URLs.
  if (trimmed.split(/[/\\]/).some((segment) => DOT_SEGMENT.test(segment))) {
    throw new Error(`invalid path "${path}": "." and ".." segments are not allowed`);
  }
  return `/v1/${trimmed}`;
}

/**
 * Parses `key=value` arguments as Vault's CLI does: `key=@file` reads a
 * file, `key=-` reads standard input; a value that is valid JSON other than
 * a string (a number, boolean, array or object) is sent as that JSON value.
 */
export async function parseFields(pairs: string[]): Promise<Record<string, unknown>> {
  const fields: Record<string, unknown> = {};
  for (const pair of pairs) {
    const index = pair.indexOf("=");
    if (index <= 0) throw new Error(`invalid argument "${pair}"; expected key=value`);
    const key = pair.slice(0, index);
    let value: string = pair.slice(index + 1);
    if (value === "-") value = (await readStdin()).replace(/\n$/, "");
    else if (value.startsWith("@")) {
      value = readInputFile(value.slice(1), `the file of field "${key}"`, "utf8").replace(
        /\n$/,
        "",
      );
    }
    // An assignment to "__proto__" would set the object's prototype and drop the field.
    Object.defineProperty(fields, key, {
      value: jsonValue(value),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return fields;
}

function jsonValue(value: string): unknown {
  if (!/^(true|false|null|-?\d+(\.\d+)?|\[.*\]|\{.*\})$/s.test(value)) return value;
  try {
    return JSON.parse(value);
  } catch {
    return value;
  }
}

export function registerPathCommands(program: Command) {
  addClientOptions(
    program
      .command("read")
      .description("read a path, such as transit/keys/my-key")
      .argument("<path>"),
  ).action(async (path: string, options: GlobalOptions) => {
    const { body } = await clientFrom(options).request("GET", apiPath(path));
    printResponse(options.format, body);
  });

  addClientOptions(
    program
      .command("write")
      .description(
        "write to a path: keyward write transit/encrypt/my-key plaintext=$(base64 <<< hello)",
      )
      .argument("<path>")
      .argument(
        "[fields...]",
        "key=value pairs; key=@file reads a file, key=- reads standard input",
      ),
  ).action(async (path: string, pairs: string[], options: GlobalOptions) => {
    const { body } = await clientFrom(options).request(
      "PUT",
      apiPath(path),
      await parseFields(pairs),
    );
    printResponse(options.format, body);
  });

  addClientOptions(
    program
      .command("list")
      .description("list the names under a path, such as transit/keys")
      .argument("<path>"),
  ).action(async (path: string, options: GlobalOptions) => {
    const { body } = await clientFrom(options).request("GET", `${apiPath(path)}?list=true`);
    const keys = ((body as { data?: { keys?: string[] } }).data?.keys ?? []) as string[];
    if (options.format === "json") printResponse("json", body);
    else process.stdout.write(`${renderList("Keys", keys)}\n`);
  });

  addClientOptions(
    program
      .command("delete")
      .description("delete a path, such as transit/keys/my-key")
      .argument("<path>"),
  ).action(async (path: string, options: GlobalOptions) => {
    const { body } = await clientFrom(options).request("DELETE", apiPath(path));
    if (body === undefined)
      process.stdout.write(`Success! Data deleted (if it existed) at: ${path}\n`);
    else printResponse(options.format, body);
  });
}
