import type { Command } from "commander";
import { print, printResponse } from "../output.ts";
import { registerMigrateCommand } from "./operator-migrate.ts";
import { addClientOptions, clientFrom, type GlobalOptions, readStdin } from "./shared.ts";

function positiveInteger(name: string) {
  return (value: string) => {
    // Decimal digits only: Number() would also read "0x3" or "3e0".
    const number = /^[0-9]{1,3}$/.test(value) ? Number(value) : Number.NaN;
    if (!Number.isInteger(number) || number < 1 || number > 255) {
      throw new Error(`${name} must be an integer from 1 to 255, got "${value}"`);
    }
    return number;
  };
}

/** Throws when a threshold exceeds its share count, naming the flags (`prefix` is `--key` or `--recovery`). */
function checkThreshold(prefix: string, shares: number, threshold: number): void {
  if (threshold > shares) {
    throw new Error(
      `${prefix}-threshold (${threshold}) must not exceed ${prefix}-shares (${shares}); pass ${prefix}-threshold ${shares} or fewer`,
    );
  }
}

/** Reads a share from the argument, or from standard input when the argument is absent or `-`. */
async function shareFrom(argument: string | undefined): Promise<string> {
  const share = argument === undefined || argument === "-" ? (await readStdin()).trim() : argument;
  if (share === "")
    throw new Error("no unseal key given; pass it as an argument or on standard input");
  return share;
}

function printShares(
  format: GlobalOptions["format"],
  body: Record<string, unknown>,
  threshold: number,
  action: "initialised" | "rekeyed" | "rekeyed pending verification",
) {
  if (format === "json") {
    print("json", body);
    return;
  }
  // A server with an HSM seal unseals itself and issues recovery shares instead.
  const recovery = Array.isArray(body.recovery_keys) && body.recovery_keys.length > 0;
  const keys = (recovery ? body.recovery_keys : (body.keys ?? [])) as string[];
  const label = recovery ? "Recovery Key" : "Unseal Key";
  const lines = keys.map((key, index) => `${label} ${index + 1}: ${key}`);
  if (typeof body.root_token === "string") lines.push("", `Initial Root Token: ${body.root_token}`);
  if (action === "rekeyed pending verification") {
    lines.push(
      "",
      `Keyward issued ${keys.length} new key shares with a key threshold of ${threshold}.`,
      "These shares are shown once and never stored: distribute them to separate operators now.",
      `They take effect once ${threshold} of them are verified; until then the current shares stay in force.`,
      `Verify with: keyward operator rekey --verify --nonce ${body.verification_nonce} <new share>`,
    );
  } else {
    lines.push(
      "",
      `Keyward is ${action} with ${keys.length} key shares and a key threshold of ${threshold}.`,
      "These shares are shown once and never stored: distribute them to separate operators now.",
    );
  }
  process.stdout.write(`${lines.join("\n")}\n`);
}

/**
 * Runs `operator rekey --verify`: shows or restarts the verification of a
 * rekey's new shares, or submits one new share.
 */
async function verifyRekey(
  client: ReturnType<typeof clientFrom>,
  key: string | undefined,
  options: GlobalOptions & { nonce?: string; status?: boolean; cancel?: boolean },
) {
  if (options.cancel) {
    const { body } = await client.request("DELETE", "/v1/sys/rekey/verify");
    print(options.format, body);
    return;
  }
  if (options.status) {
    print(options.format, (await client.request("GET", "/v1/sys/rekey/verify")).body);
    return;
  }
  if (!options.nonce)
    throw new Error(
      "--nonce is required to submit a new share; --verify --status shows the verification nonce",
    );
  const { body } = await client.request("PUT", "/v1/sys/rekey/verify", {
    key: await shareFrom(key),
    nonce: options.nonce,
  });
  const progress = body as Record<string, unknown>;
  if (progress.complete === true && options.format !== "json") {
    process.stdout.write(
      "Success! The new shares are verified and in force; the previous shares no longer work.\n",
    );
  } else print(options.format, progress);
}

export function registerOperatorCommands(program: Command) {
  const operator = program
    .command("operator")
    .description("initialise, unseal, seal, rotate, rekey and migrate storage");
  registerMigrateCommand(operator);

  addClientOptions(
    operator
      .command("init")
      .description("initialise a new server: prints the unseal key shares and the root token once")
      .option("--key-shares <n>", "number of unseal key shares", positiveInteger("--key-shares"), 5)
      .option(
        "--key-threshold <n>",
        "shares needed to unseal",
        positiveInteger("--key-threshold"),
        3,
      )
      .option(
        "--recovery-shares <n>",
        "with an HSM seal: number of recovery key shares",
        positiveInteger("--recovery-shares"),
        5,
      )
      .option(
        "--recovery-threshold <n>",
        "with an HSM seal: recovery shares needed for generate-root and rekey",
        positiveInteger("--recovery-threshold"),
        3,
      ),
  ).action(
    async (
      options: GlobalOptions & {
        keyShares: number;
        keyThreshold: number;
        recoveryShares: number;
        recoveryThreshold: number;
      },
    ) => {
      const client = clientFrom(options);
      const { body: status } = await client.request("GET", "/v1/sys/seal-status");
      const recovery = (status as Record<string, unknown>).recovery_seal === true;
      if (recovery) {
        checkThreshold("--recovery", options.recoveryShares, options.recoveryThreshold);
      } else {
        checkThreshold("--key", options.keyShares, options.keyThreshold);
      }
      const { body } = await client.request(
        "PUT",
        "/v1/sys/init",
        recovery
          ? {
              recovery_shares: options.recoveryShares,
              recovery_threshold: options.recoveryThreshold,
            }
          : { secret_shares: options.keyShares, secret_threshold: options.keyThreshold },
      );
      printShares(
        options.format,
        body as Record<string, unknown>,
        recovery ? options.recoveryThreshold : options.keyThreshold,
        "initialised",
      );
    },
  );

  addClientOptions(
    operator
      .command("unseal")
      .description("submit one unseal key share (from the argument or standard input)")
      .argument("[key]", "unseal key share, hex or base64; '-' or nothing reads standard input")
      .option("--reset", "discard the shares submitted so far"),
  ).action(async (key: string | undefined, options: GlobalOptions & { reset?: boolean }) => {
    const client = clientFrom(options);
    const body = options.reset ? { reset: true } : { key: await shareFrom(key) };
    const { body: status } = await client.request("PUT", "/v1/sys/unseal", body);
    const seal = status as Record<string, unknown>;
    if (options.format === "json") print("json", seal);
    else
      print("table", {
        Sealed: seal.sealed,
        "Unseal Progress": `${seal.progress}/${seal.t}`,
        "Unseal Nonce": seal.nonce === "" ? "n/a" : seal.nonce,
      });
  });

  addClientOptions(
    operator.command("seal").description("seal the server (needs a root token)"),
  ).action(async (options: GlobalOptions) => {
    await clientFrom(options).request("PUT", "/v1/sys/seal");
    process.stdout.write("Success! Keyward is sealed.\n");
  });

  addClientOptions(
    operator.command("rotate").description("add a new barrier key; older data stays readable"),
  ).action(async (options: GlobalOptions) => {
    const client = clientFrom(options);
    await client.request("PUT", "/v1/sys/rotate");
    const { body } = await client.request("GET", "/v1/sys/key-status");
    printResponse(options.format, body);
  });

  addClientOptions(
    operator
      .command("rekey")
      .description(
        "issue new unseal key shares: start with --init, then submit current shares with --nonce; with --verify, submit new shares to verify them",
      )
      .argument(
        "[key]",
        "a current unseal key share (a new one with --verify); '-' reads standard input",
      )
      .option("--init", "start a rekey")
      .option("--key-shares <n>", "number of new shares", positiveInteger("--key-shares"), 5)
      .option("--key-threshold <n>", "new threshold", positiveInteger("--key-threshold"), 3)
      .option(
        "--nonce <nonce>",
        "nonce of the rekey in progress (of its verification with --verify)",
      )
      .option("--status", "show the rekey progress (the verification progress with --verify)")
      .option(
        "--cancel",
        "cancel the rekey in progress (with --verify: restart the verification with a new nonce)",
      )
      .option(
        "--verify",
        "with --init: keep the current shares in force until the new ones are verified; otherwise submit, show or restart the verification of new shares",
      ),
  ).action(
    async (
      key: string | undefined,
      options: GlobalOptions & {
        init?: boolean;
        keyShares: number;
        keyThreshold: number;
        nonce?: string;
        status?: boolean;
        cancel?: boolean;
        verify?: boolean;
      },
    ) => {
      const client = clientFrom(options);
      if (options.verify && !options.init) {
        await verifyRekey(client, key, options);
        return;
      }
      if (options.cancel) {
        await client.request("DELETE", "/v1/sys/rekey/init");
        process.stdout.write("Success! The rekey was cancelled.\n");
        return;
      }
      if (options.status) {
        print(options.format, (await client.request("GET", "/v1/sys/rekey/init")).body);
        return;
      }
      if (options.init) {
        checkThreshold("--key", options.keyShares, options.keyThreshold);
        const { body } = await client.request("PUT", "/v1/sys/rekey/init", {
          secret_shares: options.keyShares,
          secret_threshold: options.keyThreshold,
          require_verification: options.verify === true,
        });
        print(options.format, body);
        return;
      }
      if (!options.nonce)
        throw new Error("--nonce is required to submit a share; start a rekey with --init");
      const { body } = await client.request("PUT", "/v1/sys/rekey/update", {
        key: await shareFrom(key),
        nonce: options.nonce,
      });
      const progress = body as Record<string, unknown>;
      // The new threshold comes from the server: it was set by the --init call.
      if (progress.complete === true) {
        const action =
          progress.verification_required === true ? "rekeyed pending verification" : "rekeyed";
        printShares(options.format, progress, Number(progress.t), action);
      } else print(options.format, progress);
    },
  );
}
