import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestContext } from "node:test";
import { IN_CI } from "../helpers/peers.ts";

/** strongSwan's IKE daemon, as the Debian package strongswan-charon installs it. */
export const CHARON = "/usr/lib/ipsec/charon";

/** The plugin that runs ESP in user space through a TUN device (package libcharon-extra-plugins). */
export const LIBIPSEC_PLUGIN = "/usr/lib/ipsec/plugins/libstrongswan-kernel-libipsec.so";

/**
 * Plugins charon loads. Debian's libstrongswan ships no openssl plugin
 * unless libstrongswan-standard-plugins is installed, so this list supports
 * RSA certificates (gmp), MODP groups and AES-CBC with HMAC-SHA2 only.
 * `kdf` provides the IKEv2 key derivation (prf+) since strongSwan 5.9.8.
 */
const CHARON_PLUGINS = [
  "random",
  "nonce",
  "aes",
  "sha1",
  "sha2",
  "hmac",
  "kdf",
  "gmp",
  "pem",
  "pkcs1",
  "pkcs8",
  "x509",
  "pubkey",
  "constraints",
  "kernel-libipsec",
  "kernel-netlink",
  "socket-default",
  "vici",
];

/** Plugins swanctl needs to parse the PEM certificates and keys it sends to charon. */
const SWANCTL_PLUGINS = [
  "random",
  "sha1",
  "sha2",
  "gmp",
  "pem",
  "pkcs1",
  "pkcs8",
  "x509",
  "pubkey",
];

/** IKE and ESP proposal that the plugin list above supports. */
const PROPOSAL = "aes256-sha256-modp3072";

/** Timeout of one swanctl or ip call, because swanctl --initiate waits for the whole exchange. */
const COMMAND_TIMEOUT_MS = 30_000;

/** One gateway: its namespace, IKE identity and addresses. */
export interface Gateway {
  namespace: string;
  /** IKE identity, which must be a DNS name in the gateway certificate's subjectAltName. */
  id: string;
  /** Address on the veth link, where IKE and ESP packets travel. */
  underlay: string;
  /** Address behind the gateway, reachable from the other side only through the tunnel. */
  tunnelAddress: string;
}

/** Result of a command: its exit status and combined output. */
export interface CommandResult {
  status: number | null;
  output: string;
}

/**
 * Returns why strongSwan with user-space ESP cannot run here, or undefined
 * when charon and the kernel-libipsec plugin are installed.
 */
export function strongswanMissing(): string | undefined {
  if (!existsSync(CHARON)) return `${CHARON} is missing (package strongswan-charon)`;
  if (!existsSync(LIBIPSEC_PLUGIN)) {
    return `${LIBIPSEC_PLUGIN} is missing (package libcharon-extra-plugins)`;
  }
  return undefined;
}

/** Skips the test when strongSwan is missing, and fails it in CI. Returns true when it is installed. */
export function requireStrongswan(t: TestContext): boolean {
  const missing = strongswanMissing();
  if (missing === undefined) return true;
  if (IN_CI) throw new Error(missing);
  console.log(`# skipped: ${t.name}: ${missing}`);
  t.skip(missing);
  return false;
}

/** Runs a command, returning its status and combined output without throwing. */
export function runCommand(
  command: string,
  args: string[],
  env?: NodeJS.ProcessEnv,
): CommandResult {
  const result = spawnSync(command, args, {
    encoding: "utf8",
    timeout: COMMAND_TIMEOUT_MS,
    env: env === undefined ? process.env : { ...process.env, ...env },
  });
  return { status: result.status, output: `${result.stdout ?? ""}${result.stderr ?? ""}` };
}

/** Runs a command and returns its standard output, throwing with its output when it fails. */
function mustRun(command: string, args: string[], env?: NodeJS.ProcessEnv): string {
  const result = spawnSync(command, args, {
    encoding: "utf8",
    timeout: COMMAND_TIMEOUT_MS,
    env: env === undefined ? process.env : { ...process.env, ...env },
  });
  if (result.status !== 0) {
    throw new Error(
      `${command} ${args.join(" ")} failed (${result.status}): ${result.stdout}${result.stderr}`,
    );
  }
  return result.stdout;
}

/** Lowercase hex of a certificate serial without separators or leading zeros. */
export function normaliseSerial(serial: string): string {
  return serial
    .replaceAll(":", "")
    .toLowerCase()
    .replace(/^0+(?=.)/, "");
}

/** Quotes `text` as one word for a POSIX shell. */
function shellQuote(text: string): string {
  return `'${text.replaceAll("'", "'\\''")}'`;
}

/** Returns a CSR for DNS name `name` whose private key is discarded. */
export function throwawayCsr(name: string): string {
  return mustRun("openssl", [
    "req",
    "-new",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    "/dev/null",
    "-subj",
    `/CN=${name}`,
    "-addext",
    `subjectAltName=DNS:${name}`,
  ]);
}

/**
 * Two network namespaces joined by a veth pair, each with a charon that
 * runs ESP in user space (kernel-libipsec, an `ipsec0` TUN device). Each
 * gateway has a temporary folder with strongswan.conf, the vici socket,
 * the charon log and a swanctl folder (swanctl.conf, x509/, x509ca/,
 * private/).
 *
 * Addresses come from 198.18.0.0/15 (RFC 2544's benchmarking range): the
 * veth link is 198.18.0.0/30 and each gateway has a /32 tunnel address on
 * its loopback, 198.19.1.1 and 198.19.2.1, with no route to the other one
 * until charon installs the tunnel's.
 *
 * charon 5.9 writes its PID file to the fixed path /run/charon.pid and
 * does not start while another charon's file is there, so each charon
 * runs with a private folder bind-mounted over /run. `ip netns exec` gives
 * each command its own mount namespace, so the bind mount does not reach
 * the host.
 */
export class StrongswanPair {
  readonly gateways: [Gateway, Gateway];
  readonly #veths: [string, string];
  readonly #daemons: (ChildProcess | undefined)[] = [undefined, undefined];
  readonly #exits: Promise<void>[] = [];
  #folder = "";

  constructor(prefix: string, ids: [string, string]) {
    this.gateways = [
      {
        namespace: `${prefix}a`,
        id: ids[0],
        underlay: "198.18.0.1",
        tunnelAddress: "198.19.1.1",
      },
      {
        namespace: `${prefix}b`,
        id: ids[1],
        underlay: "198.18.0.2",
        tunnelAddress: "198.19.2.1",
      },
    ];
    this.#veths = [`${prefix}va`, `${prefix}vb`];
  }

  /** Creates the namespaces, link, addresses and configuration, and starts both charons. */
  async start(): Promise<void> {
    await this.destroy();
    this.#folder = mkdtempSync(join(tmpdir(), "keyward-ipsec-"));
    for (const gateway of this.gateways) {
      mustRun("ip", ["netns", "add", gateway.namespace]);
      mustRun("ip", ["-n", gateway.namespace, "link", "set", "lo", "up"]);
      mustRun("ip", [
        "-n",
        gateway.namespace,
        "address",
        "add",
        `${gateway.tunnelAddress}/32`,
        "dev",
        "lo",
      ]);
    }
    mustRun("ip", ["link", "add", this.#veths[0], "type", "veth", "peer", "name", this.#veths[1]]);
    for (const index of [0, 1] as const) {
      const { namespace, underlay } = this.gateways[index];
      const veth = this.#veths[index];
      mustRun("ip", ["link", "set", veth, "netns", namespace]);
      mustRun("ip", ["-n", namespace, "address", "add", `${underlay}/30`, "dev", veth]);
      mustRun("ip", ["-n", namespace, "link", "set", veth, "up"]);
    }
    for (const index of [0, 1] as const) {
      this.#writeConfiguration(index);
      await this.#startCharon(index);
    }
  }

  /** Folder of gateway `index`'s files. */
  folder(index: 0 | 1): string {
    return join(this.#folder, this.gateways[index].namespace);
  }

  /** Gateway `index`'s swanctl folder, the parent of x509/, x509ca/ and private/. */
  swanctlFolder(index: 0 | 1): string {
    return join(this.folder(index), "swanctl");
  }

  /** Path of gateway `index`'s private key inside its swanctl folder. */
  keyPath(index: 0 | 1): string {
    return join(this.swanctlFolder(index), "private", "gateway.pem");
  }

  /** Path of gateway `index`'s certificate inside its swanctl folder. */
  certificatePath(index: 0 | 1): string {
    return join(this.swanctlFolder(index), "x509", "gateway.pem");
  }

  /** Path of the CA certificate that gateway `index` trusts, inside its swanctl folder. */
  caPath(index: 0 | 1): string {
    return join(this.swanctlFolder(index), "x509ca", "keyward-ca.pem");
  }

  /**
   * Shell command that replaces gateway `index`'s loaded credentials with
   * the files in its swanctl folder: `swanctl --load-creds --clear
   * --noprompt`, pointed at this gateway's strongswan.conf, swanctl.conf
   * and vici socket.
   */
  reloadCommand(index: 0 | 1): string {
    const folder = this.folder(index);
    return [
      `STRONGSWAN_CONF=${shellQuote(join(folder, "strongswan.conf"))}`,
      "swanctl --load-creds --clear --noprompt",
      `--file ${shellQuote(this.#swanctlConf(index))}`,
      `--uri ${shellQuote(`unix://${join(folder, "charon.vici")}`)}`,
    ].join(" ");
  }

  /** Runs swanctl against gateway `index`'s charon. `args` must not contain --uri. */
  swanctl(index: 0 | 1, args: string[]): CommandResult {
    const folder = this.folder(index);
    return runCommand("swanctl", [...args, "--uri", `unix://${join(folder, "charon.vici")}`], {
      STRONGSWAN_CONF: join(folder, "strongswan.conf"),
    });
  }

  /** Runs swanctl and throws with its output unless it succeeds. */
  mustSwanctl(index: 0 | 1, args: string[]): string {
    const result = this.swanctl(index, args);
    if (result.status !== 0) {
      throw new Error(
        `swanctl ${args.join(" ")} on ${this.gateways[index].namespace} failed:\n${result.output}\n${this.log(index)}`,
      );
    }
    return result.output;
  }

  /** Loads gateway `index`'s connections from its swanctl.conf. Credentials come from `reloadCommand`. */
  loadConnections(index: 0 | 1): string {
    return this.mustSwanctl(index, ["--load-conns", "--file", this.#swanctlConf(index)]);
  }

  /** `swanctl --list-sas` output of gateway `index`. */
  listSas(index: 0 | 1): string {
    return this.mustSwanctl(index, ["--list-sas"]);
  }

  /**
   * Serials of the end-entity certificates for `subject` (a DN or a
   * subjectAltName) that gateway `index`'s charon has in memory: those loaded from
   * its swanctl folder and those peers presented, which charon caches.
   */
  endEntitySerials(index: 0 | 1, subject: string): string[] {
    const output = this.mustSwanctl(index, [
      "--list-certs",
      "--type",
      "x509",
      "--flag",
      "none",
      "--subject",
      subject,
    ]);
    return [...output.matchAll(/^\s*serial:\s+([0-9a-f:]+)\s*$/gm)].map((match) =>
      normaliseSerial(match[1]!),
    );
  }

  /** Returns true when one ping between the tunnel addresses, from gateway `from`, gets a reply. Tries `attempts` times. */
  ping(from: 0 | 1, attempts = 3): boolean {
    const source = this.gateways[from];
    const target = this.gateways[from === 0 ? 1 : 0];
    for (let attempt = 0; attempt < attempts; attempt += 1) {
      const result = runCommand("ip", [
        "netns",
        "exec",
        source.namespace,
        "ping",
        "-c",
        "1",
        "-W",
        "2",
        "-I",
        source.tunnelAddress,
        target.tunnelAddress,
      ]);
      if (result.status === 0) return true;
    }
    return false;
  }

  /** Returns the last lines of gateway `index`'s charon log, for failure messages. */
  log(index: 0 | 1, lines = 60): string {
    const path = join(this.folder(index), "charon.log");
    if (!existsSync(path)) return "(no charon log)";
    const text = readFileSync(path, "utf8").split("\n");
    return `charon log of ${this.gateways[index].namespace}:\n${text.slice(-lines).join("\n")}`;
  }

  /** Stops both charons and removes the namespaces and files. Safe to call at any point, and twice. */
  async destroy(): Promise<void> {
    for (const daemon of this.#daemons) {
      if (daemon !== undefined && daemon.exitCode === null && daemon.signalCode === null) {
        daemon.kill("SIGTERM");
      }
    }
    await Promise.all(this.#exits.splice(0));
    this.#daemons.fill(undefined);
    for (const gateway of this.gateways) {
      spawnSync("ip", ["netns", "delete", gateway.namespace], { stdio: "ignore" });
    }
    // Deleting a namespace deletes the veth end inside it and with it the peer end.
    spawnSync("ip", ["link", "delete", this.#veths[0]], { stdio: "ignore" });
    if (this.#folder !== "") rmSync(this.#folder, { recursive: true, force: true });
    this.#folder = "";
  }

  #swanctlConf(index: 0 | 1): string {
    return join(this.swanctlFolder(index), "swanctl.conf");
  }

  #writeConfiguration(index: 0 | 1): void {
    const folder = this.folder(index);
    const swanctl = this.swanctlFolder(index);
    for (const sub of ["run", "swanctl/x509", "swanctl/x509ca", "swanctl/private"]) {
      mkdirSync(join(folder, sub), { recursive: true });
    }
    chmodSync(join(swanctl, "private"), 0o700);
    writeFileSync(
      join(folder, "strongswan.conf"),
      `charon {
  load = ${CHARON_PLUGINS.join(" ")}
  plugins {
    vici {
      socket = unix://${join(folder, "charon.vici")}
    }
  }
  filelog {
    gateway {
      path = ${join(folder, "charon.log")}
      default = 1
      ike = 2
      cfg = 2
    }
  }
}
swanctl {
  load = ${SWANCTL_PLUGINS.join(" ")}
}
`,
    );
    const local = this.gateways[index];
    const remote = this.gateways[index === 0 ? 1 : 0];
    // No `certs` line: charon picks the loaded certificate whose subjectAltName
    // matches `local.id`, so a renewed certificate needs only --load-creds.
    writeFileSync(
      this.#swanctlConf(index),
      `connections {
  gateway {
    version = 2
    local_addrs = ${local.underlay}
    remote_addrs = ${remote.underlay}
    proposals = ${PROPOSAL}
    local {
      auth = pubkey
      id = ${local.id}
    }
    remote {
      auth = pubkey
      id = ${remote.id}
    }
    children {
      tunnel {
        local_ts = ${local.tunnelAddress}/32
        remote_ts = ${remote.tunnelAddress}/32
        esp_proposals = ${PROPOSAL}
      }
    }
  }
}
`,
    );
  }

  async #startCharon(index: 0 | 1): Promise<void> {
    const folder = this.folder(index);
    const { namespace } = this.gateways[index];
    const daemon = spawn(
      "ip",
      [
        "netns",
        "exec",
        namespace,
        "sh",
        "-c",
        'mount --bind "$0" /run && exec env STRONGSWAN_CONF="$1" "$2"',
        join(folder, "run"),
        join(folder, "strongswan.conf"),
        CHARON,
      ],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    let stderr = "";
    daemon.stderr?.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    this.#daemons[index] = daemon;
    this.#exits.push(new Promise((resolve) => daemon.on("exit", () => resolve())));
    // charon creates the vici socket once its plugins are loaded.
    for (let attempt = 0; attempt < 200; attempt += 1) {
      if (
        existsSync(join(folder, "charon.vici")) &&
        this.swanctl(index, ["--stats"]).status === 0
      ) {
        return;
      }
      if (daemon.exitCode !== null) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`charon did not start in ${namespace}: ${stderr}\n${this.log(index)}`);
  }
}
