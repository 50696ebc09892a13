import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, rmSync } from "node:fs";
import { run, succeeds } from "../engines/wireguard/namespaces.ts";

/** Folder where wireguard-go puts each interface's control socket, which namespaces do not separate. */
const SOCKET_FOLDER = "/var/run/wireguard";

/** One endpoint of the lab: its namespace, WireGuard interface and the addresses it uses. */
export interface LabEndpoint {
  namespace: string;
  wgInterface: string;
  /** Address on the link between the endpoints, where WireGuard packets travel. */
  underlay: string;
  /** Address of the server as this endpoint reaches it. */
  serverAddress: string;
}

/**
 * Three network namespaces for the agent tests, all made from addresses in
 * 198.18.0.0/15 (RFC 2544's benchmarking range):
 *
 * - `s` contains the Keyward server, which listens on every address of that
 *   namespace and nothing else.
 * - `a` and `b` are two endpoints, each running an agent and wireguard-go,
 *   joined to each other by a veth pair (the underlay their tunnel uses)
 *   and each joined to `s` by its own veth pair (the control plane).
 * - One more veth pair joins `s` to the test's own namespace, so the test
 *   reaches the server's admin API.
 *
 * No packet is forwarded: every link is point to point.
 */
export class AgentLab {
  readonly server: string;
  readonly endpoints: [LabEndpoint, LabEndpoint];
  /** The server's address as seen from the test's namespace. */
  readonly serverAddressFromHost = "198.18.3.2";
  readonly #prefix: string;
  readonly #hostVeth: string;
  readonly #daemons: ChildProcess[] = [];

  constructor(prefix: string) {
    this.#prefix = prefix;
    this.server = `${prefix}s`;
    this.#hostVeth = `${prefix}h0`;
    this.endpoints = [
      {
        namespace: `${prefix}a`,
        wgInterface: `${prefix}wa`,
        underlay: "198.18.0.1",
        serverAddress: "198.18.1.1",
      },
      {
        namespace: `${prefix}b`,
        wgInterface: `${prefix}wb`,
        underlay: "198.18.0.2",
        serverAddress: "198.18.2.1",
      },
    ];
  }

  /** Every address the server has, for its certificate's subjectAltName. */
  get serverAddresses(): string[] {
    return [
      this.serverAddressFromHost,
      ...this.endpoints.map((endpoint) => endpoint.serverAddress),
    ];
  }

  /** Creates the namespaces, links and addresses, and starts wireguard-go in each endpoint. */
  async create(): Promise<void> {
    this.destroy();
    const [a, b] = this.endpoints;
    for (const namespace of [this.server, a.namespace, b.namespace]) {
      run("ip", ["netns", "add", namespace]);
      run("ip", ["-n", namespace, "link", "set", "lo", "up"]);
    }
    // Underlay between the endpoints.
    this.#link(
      [a.namespace, `${this.#prefix}u0`, `${a.underlay}/30`],
      [b.namespace, `${this.#prefix}u1`, `${b.underlay}/30`],
    );
    // Control plane: each endpoint to the server.
    this.#link(
      [this.server, `${this.#prefix}c0`, "198.18.1.1/30"],
      [a.namespace, `${this.#prefix}c1`, "198.18.1.2/30"],
    );
    this.#link(
      [this.server, `${this.#prefix}d0`, "198.18.2.1/30"],
      [b.namespace, `${this.#prefix}d1`, "198.18.2.2/30"],
    );
    // The test's namespace to the server.
    this.#link(
      [undefined, this.#hostVeth, "198.18.3.1/30"],
      [this.server, `${this.#prefix}h1`, `${this.serverAddressFromHost}/30`],
    );
    for (const endpoint of this.endpoints) {
      await this.#startWireguard(endpoint);
    }
  }

  /** Makes a veth pair between two namespaces (undefined: the test's own) and addresses both ends. */
  #link(
    [leftNamespace, leftName, leftAddress]: [string | undefined, string, string],
    [rightNamespace, rightName, rightAddress]: [string | undefined, string, string],
  ): void {
    run("ip", ["link", "add", leftName, "type", "veth", "peer", "name", rightName]);
    for (const [namespace, name, address] of [
      [leftNamespace, leftName, leftAddress],
      [rightNamespace, rightName, rightAddress],
    ] as const) {
      if (namespace !== undefined) run("ip", ["link", "set", name, "netns", namespace]);
      const scope = namespace === undefined ? [] : ["-n", namespace];
      run("ip", [...scope, "address", "add", address, "dev", name]);
      run("ip", [...scope, "link", "set", name, "up"]);
    }
  }

  async #startWireguard(endpoint: LabEndpoint): Promise<void> {
    const daemon = spawn(
      "ip",
      ["netns", "exec", endpoint.namespace, "wireguard-go", "-f", endpoint.wgInterface],
      { stdio: "ignore" },
    );
    this.#daemons.push(daemon);
    for (let attempt = 0; attempt < 100; attempt += 1) {
      if (succeeds("ip", ["netns", "exec", endpoint.namespace, "wg", "show", endpoint.wgInterface]))
        return;
      if (daemon.exitCode !== null) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`wireguard-go did not bring up ${endpoint.wgInterface}`);
  }

  /** Gives endpoint `index`'s WireGuard interface its tunnel addresses and brings it up. */
  addressTunnel(index: 0 | 1, addresses: readonly string[]): void {
    const { namespace, wgInterface } = this.endpoints[index];
    for (const address of addresses) {
      run("ip", ["-n", namespace, "address", "add", address, "dev", wgInterface]);
    }
    run("ip", ["-n", namespace, "link", "set", wgInterface, "up"]);
  }

  /** Returns the public key of endpoint `index`'s interface as wg reports it ("(none)" before a key). */
  publicKey(index: 0 | 1): string {
    const { namespace, wgInterface } = this.endpoints[index];
    return run("ip", ["netns", "exec", namespace, "wg", "show", wgInterface, "public-key"]).trim();
  }

  /** Returns the public keys of the peers that endpoint `index` lists. */
  peerKeys(index: 0 | 1): string[] {
    const { namespace, wgInterface } = this.endpoints[index];
    const text = run("ip", ["netns", "exec", namespace, "wg", "show", wgInterface, "peers"]);
    return text.split("\n").filter((line) => line !== "");
  }

  /** True when a ping from endpoint `from` to `address` gets a reply; tries `attempts` times. */
  ping(from: 0 | 1, address: string, attempts = 3): boolean {
    const { namespace } = this.endpoints[from];
    for (let attempt = 0; attempt < attempts; attempt += 1) {
      if (succeeds("ip", ["netns", "exec", namespace, "ping", "-c", "1", "-W", "2", address])) {
        return true;
      }
    }
    return false;
  }

  /** Stops the daemons and removes every namespace and link; safe to call at any point, twice. */
  destroy(): void {
    for (const daemon of this.#daemons.splice(0)) {
      if (daemon.exitCode === null && daemon.pid !== undefined) daemon.kill("SIGTERM");
    }
    for (const namespace of [
      this.server,
      ...this.endpoints.map((endpoint) => endpoint.namespace),
    ]) {
      spawnSync("ip", ["netns", "delete", namespace], { stdio: "ignore" });
    }
    // Deleting a namespace deletes the veth ends inside it and with them their peers.
    spawnSync("ip", ["link", "delete", this.#hostVeth], { stdio: "ignore" });
    for (const endpoint of this.endpoints) {
      const socket = `${SOCKET_FOLDER}/${endpoint.wgInterface}.sock`;
      if (existsSync(socket)) rmSync(socket, { force: true });
    }
  }
}
