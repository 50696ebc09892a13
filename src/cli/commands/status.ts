import type { Command } from "commander";
import { print } from "../output.ts";
import { addClientOptions, clientFrom, type GlobalOptions } from "./shared.ts";

/** Exit status of `keyward status` when the server is sealed, as Vault's CLI uses it. */
const EXIT_SEALED = 2;

export function registerStatusCommand(program: Command) {
  addClientOptions(
    program.command("status").description("show the seal status (exit status 2 when sealed)"),
  ).action(async (options: GlobalOptions) => {
    const { body } = await clientFrom(options).request("GET", "/v1/sys/seal-status");
    const status = body as Record<string, unknown>;
    if (options.format === "json") {
      print("json", status);
    } else {
      print("table", {
        "Seal Type": status.type,
        Initialized: status.initialized,
        Sealed: status.sealed,
        "Total Shares": status.n,
        Threshold: status.t,
        "Unseal Progress": `${status.progress}/${status.t}`,
        "Unseal Nonce": status.nonce === "" ? "n/a" : status.nonce,
        Version: status.version,
        "Storage Type": status.storage_type,
      });
    }
    if (status.sealed === true) process.exitCode = EXIT_SEALED;
  });
}
