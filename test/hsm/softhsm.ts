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
 * A private SoftHSM2 installation: a config file whose token folder is a
 * new temporary folder. `env` points SoftHSM at it; tokens made here never
 * touch the system's token folder.
 */
export class SoftHsm {
  readonly dir: string;
  readonly configFile: string;

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

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
