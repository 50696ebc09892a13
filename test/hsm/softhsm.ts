import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestContext } from "node:test";
import { hasProgram, IN_CI, requirePeer } from "../helpers/peers.ts";

/** Debian's path of the SoftHSM2 PKCS#11 library (package softhsm2). */
export const SOFTHSM_LIBRARY = "/usr/lib/softhsm/libsofthsm2.so";

/** True when softhsm2-util and the library are installed, so `createSoftHsm` can be called. */
export function softHsmInstalled(): boolean {
  return hasProgram("softhsm2-util") && existsSync(SOFTHSM_LIBRARY);
}

/**
 * Skips the test when SoftHSM2 is missing (and fails it in CI), as
 * `requirePeer` does for programs. Returns true when SoftHSM2 is ready.
 */
export function requireSoftHsm(t: TestContext): boolean {
  if (!requirePeer(t, "softhsm2-util")) return false;
  if (existsSync(SOFTHSM_LIBRARY)) return true;
  const message = `the SoftHSM2 library ${SOFTHSM_LIBRARY} is missing (scripts/install-peers.sh installs softhsm2)`;
  if (IN_CI) throw new Error(message);
  t.skip(message);
  return false;
}

/**
 * Writes the user PIN and a wrong PIN to `pin` and `wrong-pin` in `folder`,
 * each readable by its owner only, as a server's PIN file must be.
 */
export function writePinFiles(
  folder: string,
  pin: string,
  wrongPin: string,
): { pinFile: string; wrongPinFile: string } {
  const pinFile = join(folder, "pin");
  const wrongPinFile = join(folder, "wrong-pin");
  writeFileSync(pinFile, `${pin}\n`, { mode: 0o600 });
  writeFileSync(wrongPinFile, `${wrongPin}\n`, { mode: 0o600 });
  return { pinFile, wrongPinFile };
}

/**
 * A private SoftHSM2 installation: a config file whose token folder is a
 * new temporary folder. `env` points SoftHSM at it; tokens made here never
 * touch the system's token folder.
 */
export class SoftHsm {
  readonly dir: string;
  readonly configFile: string;
  /** Restores SOFTHSM2_CONF after `useInProcess`. `remove` calls it. */
  #restoreEnvironment: (() => void) | undefined;

  private constructor(dir: string) {
    this.dir = dir;
    this.configFile = join(dir, "softhsm2.conf");
    const tokens = join(dir, "tokens");
    mkdirSync(tokens);
    writeFileSync(
      this.configFile,
      [
        `directories.tokendir = ${tokens}`,
        "objectstore.backend = file",
        "log.level = ERROR",
        "slots.removable = false",
        "",
      ].join("\n"),
    );
  }

  static create(): SoftHsm {
    return new SoftHsm(mkdtempSync(join(tmpdir(), "keyward-softhsm-")));
  }

  /** Creates an installation with a token for each label, all with the user PIN `pin`. */
  static withTokens(labels: string[], pin: string): SoftHsm {
    const hsm = SoftHsm.create();
    for (const label of labels) hsm.initToken(label, pin);
    return hsm;
  }

  /** The environment that makes the SoftHSM library and tools use this installation. */
  get env(): { SOFTHSM2_CONF: string } {
    return { SOFTHSM2_CONF: this.configFile };
  }

  /** Initialises a new token in the first free slot, with a user PIN and a security officer PIN. */
  initToken(label: string, pin: string, soPin = "so-pin-0000"): void {
    execFileSync(
      "softhsm2-util",
      ["--init-token", "--free", "--label", label, "--so-pin", soPin, "--pin", pin],
      { env: { ...process.env, ...this.env }, stdio: "pipe" },
    );
  }

  /**
   * Points this process's SOFTHSM2_CONF at this installation, for the
   * PKCS#11 library loaded in the test process, because SoftHSM reads the
   * variable when the library initialises. `remove` restores the old value.
   */
  useInProcess(): void {
    const previous = process.env.SOFTHSM2_CONF;
    process.env.SOFTHSM2_CONF = this.configFile;
    this.#restoreEnvironment ??= () => {
      if (previous === undefined) delete process.env.SOFTHSM2_CONF;
      else process.env.SOFTHSM2_CONF = previous;
    };
  }

  /** Runs pkcs11-tool against this installation and returns its output. */
  pkcs11Tool(args: string[]): { status: number | null; output: string } {
    try {
      const output = execFileSync("pkcs11-tool", ["--module", SOFTHSM_LIBRARY, ...args], {
        env: { ...process.env, ...this.env },
        stdio: "pipe",
      });
      return { status: 0, output: output.toString() };
    } catch (error) {
      const failed = error as { status: number | null; stdout?: Buffer; stderr?: Buffer };
      return {
        status: failed.status,
        output: `${failed.stdout?.toString() ?? ""}${failed.stderr?.toString() ?? ""}`,
      };
    }
  }

  /** Lists the objects of the token `tokenLabel` with pkcs11-tool, logged in with `pin`, and with `args` appended. */
  listObjects(
    tokenLabel: string,
    pin: string,
    args: string[] = [],
  ): { status: number | null; output: string } {
    return this.pkcs11Tool([
      "--token-label",
      tokenLabel,
      "--login",
      "--pin",
      pin,
      "--list-objects",
      ...args,
    ]);
  }

  /** Removes the installation, and restores SOFTHSM2_CONF when `useInProcess` set it. */
  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
    this.#restoreEnvironment?.();
    this.#restoreEnvironment = undefined;
  }
}
