import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Keyward } from "./keyward.ts";

/** File in the data directory that contains the dev server's single unseal share. */
export const DEV_UNSEAL_KEY_FILE = "dev-unseal-key";
/** File in the data directory that contains the dev server's root token. */
export const DEV_ROOT_TOKEN_FILE = "dev-root-token";

export interface DevModeResult {
  rootToken: string;
  /** True when this start initialised a new installation. */
  initialised: boolean;
  unsealKeyPath: string;
}

async function writeSecretFile(path: string, value: string) {
  await writeFile(path, `${value}\n`, { mode: 0o600 });
}

/**
 * Initialises (first start) and unseals a dev server. The single unseal
 * share and the root token are kept in the data directory so a restart
 * keeps every key; anyone who can read that directory can read every
 * secret, which is why dev mode is for development only.
 *
 * When `rootToken` is given it becomes a root token, as Vault's
 * `-dev-root-token-id` does; root tokens created earlier stay valid until
 * revoked.
 */
export async function startDevMode(
  keyward: Keyward,
  dataDir: string,
  rootToken: string | undefined,
): Promise<DevModeResult> {
  const unsealKeyPath = join(dataDir, DEV_UNSEAL_KEY_FILE);
  const rootTokenPath = join(dataDir, DEV_ROOT_TOKEN_FILE);
  const status = await keyward.seal.status();

  if (!status.initialized) {
    // An unseal key here belongs to the installation that was initialised
    // with it, perhaps in another store (`--storage`). Overwriting it would
    // leave that installation without a way to unseal.
    if (existsSync(unsealKeyPath)) {
      throw new Error(
        `cannot initialise empty storage in dev mode: ${unsealKeyPath} contains the unseal key of an installation initialised in dev mode earlier, perhaps with other --storage; use that storage, or another --data-dir for a new installation`,
      );
    }
    // With PostgreSQL storage nothing else creates the data directory.
    await mkdir(dataDir, { recursive: true, mode: 0o700 });
    const result = await keyward.init({ shares: 1, threshold: 1 }, rootToken);
    await writeSecretFile(unsealKeyPath, result.keysHex[0] ?? "");
    await writeSecretFile(rootTokenPath, result.rootToken);
    await keyward.seal.submitUnsealShare(result.keysHex[0] ?? "");
    return { rootToken: result.rootToken, initialised: true, unsealKeyPath };
  }

  if (!existsSync(unsealKeyPath)) {
    throw new Error(
      `the data directory ${dataDir} holds an installation that was not created in dev mode (no ${DEV_UNSEAL_KEY_FILE} file); start it without --dev and unseal it with its shares`,
    );
  }
  const share = (await readFile(unsealKeyPath, "utf8")).trim();
  if ((await keyward.seal.status()).sealed) await keyward.seal.submitUnsealShare(share);

  if (rootToken !== undefined) {
    await keyward.tokens.createRootToken(rootToken);
    await writeSecretFile(rootTokenPath, rootToken);
    return { rootToken, initialised: false, unsealKeyPath };
  }
  const stored = existsSync(rootTokenPath) ? (await readFile(rootTokenPath, "utf8")).trim() : "";
  if (stored !== "") return { rootToken: stored, initialised: false, unsealKeyPath };
  const generated = await keyward.tokens.createRootToken();
  await writeSecretFile(rootTokenPath, generated);
  return { rootToken: generated, initialised: false, unsealKeyPath };
}
