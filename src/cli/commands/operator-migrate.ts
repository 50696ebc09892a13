import { existsSync } from "node:fs";
import { type Command, Option } from "commander";
import { assertSourceHasEntries, copyStorage } from "../../storage/copy.ts";
import {
  describeStorageLocation,
  openStorage,
  parseStorageLocation,
  type Storage,
} from "../../storage/index.ts";

interface MigrateOptions {
  from: string;
  to: string;
  force?: boolean;
  storageCa?: string;
}

/**
 * Opens the source, which must already exist: opening a missing SQLite file
 * would create an empty one, and copying nothing is never what was meant.
 */
async function openSource(location: string, caFile: string | undefined): Promise<Storage> {
  const parsed = parseStorageLocation(location);
  if (parsed.kind === "sqlite" && !existsSync(parsed.path)) {
    throw new Error(`the source ${parsed.path} does not exist; check --from`);
  }
  return openStorage(location, caFile === undefined ? {} : { caFile });
}

/** Adds `keyward operator migrate`, which copies every storage entry from one location to another. */
export function registerMigrateCommand(operator: Command): void {
  operator
    .command("migrate")
    .description(
      "copy every stored entry, still encrypted, from one storage to another (SQLite or PostgreSQL) and verify the copy; stop every server that uses either storage first",
    )
    .requiredOption(
      "--from <location>",
      "source storage: a data directory, sqlite:PATH or a postgres:// URL",
    )
    .requiredOption(
      "--to <location>",
      "destination storage: a data directory, sqlite:PATH or a postgres:// URL; it must be empty unless --force",
    )
    .option("--force", "delete every entry of a non-empty destination before copying")
    .addOption(
      new Option(
        "--storage-ca <file>",
        "PEM file of CA certificates for TLS to PostgreSQL, on either side",
      ).env("KEYWARD_STORAGE_CA"),
    )
    .action(async (options: MigrateOptions) => {
      const from = describeStorageLocation(options.from);
      const to = describeStorageLocation(options.to);
      if (from === to) throw new Error("--from and --to name the same storage");

      const source = await openSource(options.from, options.storageCa);
      try {
        // Checked before the destination is opened, which may create it.
        await assertSourceHasEntries(source);
        const destination = await openStorage(
          options.to,
          options.storageCa === undefined ? {} : { caFile: options.storageCa },
        );
        try {
          const result = await copyStorage(source, destination, { force: options.force === true });
          const lines = [
            ...(result.deleted > 0
              ? [`Deleted ${result.deleted} entries that were in ${to}.`]
              : []),
            `Copied ${result.copied} entries from ${from} to ${to}.`,
            `Verified ${result.verified} entries: same keys and byte-identical values in both storages.`,
          ];
          process.stdout.write(`${lines.join("\n")}\n`);
        } finally {
          await destination.close();
        }
      } finally {
        await source.close();
      }
    });
}
