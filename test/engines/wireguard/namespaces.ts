import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Folder where wireguard-go puts each interface's control socket; it is shared by all namespaces. */
const SOCKET_FOLDER = "/var/run/wireguard";

/** Runs a command and returns its output, throwing with its stderr when it exits non-zero. */
export function run(command: string, args: string[], input?: string): string {
  const result = spawnSync(command, args, { encoding: "utf8", input, timeout: 15_000 });
  if (result.status !== 0) {
    throw new Error(`${command} ${args.join(" ")} failed (${result.status}): ${result.stderr}`);
  }
  return result.stdout;
}

/** Runs a command and returns whether it exited with status 0. */
export function succeeds(command: string, args: string[]): boolean {
  return spawnSync(command, args, { stdio: "ignore", timeout: 15_000 }).status === 0;
}

/** Runs a command inside network namespace `namespace`. */
export function inNamespace(namespace: string, command: string, args: string[], input?: string) {
  return run("ip", ["netns", "exec", namespace, command, ...args], input);
}

/**
 * Two network namespaces joined by a veth pair, each with a wireguard-go
 * interface. Interface names are unique across both namespaces, because
 * wireguard-go names its control socket after the interface in a folder
 * that namespaces do not separate.
 */
export class NamespacePair {
  readonly names: [string, string];
  readonly wgInterfaces: [string, string];
  readonly #veths: [string, string];
  readonly #daemons: ChildProcess[] = [];
  /** Folder for configuration files; `wg setconf` cannot read a piped stdin through /dev/stdin. */
  #folder = "";

  constructor(prefix: string) {
    this.names = [`${prefix}a`, `${prefix}b`];
    this.#veths = [`${prefix}va`, `${prefix}vb`];
    this.wgInterfaces = [`${prefix}wa`, `${prefix}wb`];
  }

  /** Creates the namespaces, the veth pair with `underlay` addresses, and a WireGuard interface in each. */
  async create(underlay: [string, string]): Promise<void> {
    this.destroy();
    this.#folder = mkdtempSync(join(tmpdir(), "keyward-wg-"));
    for (const name of this.names) {
      run("ip", ["netns", "add", name]);
      run("ip", ["-n", name, "link", "set", "lo", "up"]);
    }
    run("ip", ["link", "add", this.#veths[0], "type", "veth", "peer", "name", this.#veths[1]]);
    for (const index of [0, 1] as const) {
      const [namespace, veth] = [this.names[index], this.#veths[index]];
      run("ip", ["link", "set", veth, "netns", namespace]);
      run("ip", ["-n", namespace, "address", "add", underlay[index], "dev", veth]);
      run("ip", ["-n", namespace, "link", "set", veth, "up"]);
      await this.#startWireguard(namespace, this.wgInterfaces[index]);
    }
  }

  async #startWireguard(namespace: string, wgInterface: string): Promise<void> {
    const daemon = spawn("ip", ["netns", "exec", namespace, "wireguard-go", "-f", wgInterface], {
      stdio: "ignore",
    });
    this.#daemons.push(daemon);
    // wireguard-go creates the interface and its socket shortly after it starts.
    for (let attempt = 0; attempt < 100; attempt += 1) {
      if (succeeds("ip", ["netns", "exec", namespace, "wg", "show", wgInterface])) return;
      if (daemon.exitCode !== null) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`wireguard-go did not bring up ${wgInterface} in ${namespace}`);
  }

  /** Loads a `wg setconf` configuration and sets the tunnel address of side `index`. */
  configure(index: 0 | 1, config: string, addresses: string[]): void {
    const [namespace, wgInterface] = [this.names[index], this.wgInterfaces[index]];
    const file = join(this.#folder, `${wgInterface}.conf`);
    writeFileSync(file, config, { mode: 0o600 });
    inNamespace(namespace, "wg", ["setconf", wgInterface, file]);
    run("ip", ["-n", namespace, "address", "flush", "dev", wgInterface]);
    for (const address of addresses) {
      run("ip", ["-n", namespace, "address", "add", address, "dev", wgInterface]);
    }
    run("ip", ["-n", namespace, "link", "set", wgInterface, "up"]);
  }

  /** Returns the public key that side `index`'s interface runs with, as wg reports it. */
  publicKey(index: 0 | 1): string {
    return inNamespace(this.names[index], "wg", [
      "show",
      this.wgInterfaces[index],
      "public-key",
    ]).trim();
  }

  /** True when one ping from side `from` to `address` gets a reply; tries `attempts` times. */
  ping(from: 0 | 1, address: string, attempts = 3): boolean {
    for (let attempt = 0; attempt < attempts; attempt += 1) {
      if (
        succeeds("ip", ["netns", "exec", this.names[from], "ping", "-c", "1", "-W", "2", address])
      ) {
        return true;
      }
    }
    return false;
  }

  /** Stops the wireguard-go daemons and deletes the namespaces; safe to call at any point, twice. */
  destroy(): void {
    for (const daemon of this.#daemons.splice(0)) {
      if (daemon.exitCode === null && daemon.pid !== undefined) daemon.kill("SIGTERM");
    }
    for (const name of this.names) {
      spawnSync("ip", ["netns", "delete", name], { stdio: "ignore" });
    }
    // Deleting a namespace removes the veth end inside it and with it the peer end.
    spawnSync("ip", ["link", "delete", this.#veths[0]], { stdio: "ignore" });
    if (this.#folder !== "") rmSync(this.#folder, { recursive: true, force: true });
    for (const wgInterface of this.wgInterfaces) {
      const socket = `${SOCKET_FOLDER}/${wgInterface}.sock`;
      if (existsSync(socket)) rmSync(socket, { force: true });
    }
  }
}
