import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import { createServer } from "node:net";
import { userInfo } from "node:os";
import { join } from "node:path";
import { run, type tempFiles } from "./fixtures.ts";

/** Keyward's SSH routes (`/v1/ssh`) on loopback, with helpers that fail on any error status. */
export class KeywardClient {
  constructor(readonly baseUrl: string) {}

  // biome-ignore lint/suspicious/noExplicitAny: response data of any shape
  async write(path: string, body: object = {}): Promise<Record<string, any>> {
    const response = await fetch(`${this.baseUrl}/v1/ssh/${path}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    const text = await response.text();
    assert.ok(response.ok, `POST ${path}: ${response.status} ${text}`);
    return text === "" ? {} : JSON.parse(text).data;
  }

  // biome-ignore lint/suspicious/noExplicitAny: response data of any shape
  async read(path: string): Promise<Record<string, any>> {
    const response = await fetch(`${this.baseUrl}/v1/ssh/${path}`);
    const text = await response.text();
    assert.equal(response.status, 200, `GET ${path}: ${text}`);
    return JSON.parse(text).data;
  }

  async download(path: string): Promise<Buffer> {
    const response = await fetch(`${this.baseUrl}/v1/ssh/${path}`);
    assert.equal(response.status, 200, `GET ${path}`);
    return Buffer.from(await response.arrayBuffer());
  }
}

/** Returns a TCP port on 127.0.0.1 that was free a moment ago. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === "string") throw new Error("no port assigned");
  return address.port;
}

/** Paths of the files the private sshd reads; tests rewrite them between logins. */
export interface SshdFiles {
  trustedUserCaKeys: string;
  revokedKeys: string;
  principals: string;
}

/**
 * A private sshd on a high loopback port, configured from files in a test
 * folder: certificates only (AuthorizedKeysFile none), TrustedUserCAKeys,
 * AuthorizedPrincipalsFile and RevokedKeys, which sshd reads again for
 * every connection. It lets in only the current user, which is root in the
 * test sandbox. It never touches the system's sshd or /etc/ssh.
 */
export class PrivateSshd {
  readonly port: number;
  readonly files: SshdFiles;
  readonly user = userInfo().username;
  readonly #process: ChildProcess;
  readonly #folder: ReturnType<typeof tempFiles>;
  #log = "";

  private constructor(
    port: number,
    files: SshdFiles,
    child: ChildProcess,
    folder: ReturnType<typeof tempFiles>,
  ) {
    this.port = port;
    this.files = files;
    this.#process = child;
    this.#folder = folder;
    child.stderr?.on("data", (chunk: Buffer) => {
      this.#log += chunk.toString();
    });
  }

  /** sshd's log so far, for failure messages. */
  get log(): string {
    return this.#log;
  }

  static async start(
    folder: ReturnType<typeof tempFiles>,
    hostKey: { privateKey: string; certificate: string },
  ): Promise<PrivateSshd> {
    // sshd's privilege separation needs this folder; it is created empty when missing.
    mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });
    const port = await freePort();
    const hostKeyPath = writeHostKey(folder, hostKey);
    const files: SshdFiles = {
      trustedUserCaKeys: folder.write("trusted_user_ca_keys", ""),
      revokedKeys: folder.write("revoked_keys.krl", ""),
      principals: folder.write("principals", ""),
    };
    const config = folder.write(
      "sshd_config",
      [
        `Port ${port}`,
        "ListenAddress 127.0.0.1",
        `HostKey ${hostKeyPath}`,
        `HostCertificate ${hostKeyPath}-cert.pub`,
        `PidFile ${join(folder.dir, "sshd.pid")}`,
        "UsePAM no",
        "StrictModes no",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "AuthorizedKeysFile none",
        `TrustedUserCAKeys ${files.trustedUserCaKeys}`,
        `AuthorizedPrincipalsFile ${files.principals}`,
        `RevokedKeys ${files.revokedKeys}`,
        "PermitRootLogin prohibit-password",
        `AllowUsers ${userInfo().username}`,
        "LogLevel VERBOSE",
        "",
      ].join("\n"),
    );
    const check = run("/usr/sbin/sshd", ["-t", "-f", config]);
    if (check.status !== 0) throw new Error(`sshd rejected its config: ${check.output}`);
    const child = spawn("/usr/sbin/sshd", ["-D", "-e", "-f", config], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    const sshd = new PrivateSshd(port, files, child, folder);
    await sshd.#waitForListening(0);
    return sshd;
  }

  /**
   * Installs a new host key and certificate and sends sshd SIGHUP, as an
   * operator reloads sshd after re-issuing its host certificate. sshd
   * executes itself again and loads the new files before it listens again.
   */
  async replaceHostKey(hostKey: { privateKey: string; certificate: string }): Promise<void> {
    writeHostKey(this.#folder, hostKey);
    const since = this.#log.length;
    this.#process.kill("SIGHUP");
    await this.#waitForListening(since);
  }

  async #waitForListening(since: number): Promise<void> {
    const deadline = Date.now() + 10_000;
    const listening = `Server listening on 127.0.0.1 port ${this.port}`;
    while (!this.#log.slice(since).includes(listening)) {
      if (this.#process.exitCode !== null || Date.now() > deadline) {
        throw new Error(`sshd is not listening after its start or reload: ${this.#log}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /**
   * Waits until sshd's log after offset `since` matches `pattern`, because
   * sshd may write a connection's log lines after the client has exited.
   * Returns the log text after `since`.
   */
  async waitForLog(pattern: RegExp, since: number): Promise<string> {
    const deadline = Date.now() + 5_000;
    while (!pattern.test(this.#log.slice(since)) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return this.#log.slice(since);
  }

  async stop(): Promise<void> {
    if (this.#process.exitCode !== null) return;
    const exited = new Promise((resolve) => this.#process.once("exit", resolve));
    this.#process.kill("SIGTERM");
    await exited;
  }
}

/** Writes sshd's host key and its certificate (`<key>-cert.pub`) and returns the key's path. */
function writeHostKey(
  folder: ReturnType<typeof tempFiles>,
  hostKey: { privateKey: string; certificate: string },
): string {
  const path = folder.write("host_key", hostKey.privateKey, 0o600);
  folder.write("host_key-cert.pub", hostKey.certificate);
  return path;
}

/**
 * Runs `ssh ... true` against the private sshd with a key and certificate,
 * checking the host against `knownHosts` strictly under `hostAlias`.
 * Returns ssh's exit status and output.
 */
export function sshLogin(
  sshd: PrivateSshd,
  folder: ReturnType<typeof tempFiles>,
  login: {
    name: string;
    privateKey: string;
    certificate: string;
    knownHosts: string;
    hostAlias: string;
    /** Extra `-o` options for ssh, such as `RevokedHostKeys=<krl>`. */
    options?: string[];
  },
) {
  const keyPath = folder.write(`${login.name}`, login.privateKey, 0o600);
  const certificatePath = folder.write(`${login.name}-cert.pub`, login.certificate);
  const knownHostsPath = folder.write(`${login.name}-known_hosts`, login.knownHosts);
  return run("ssh", [
    "-F",
    "/dev/null",
    "-i",
    keyPath,
    "-o",
    `CertificateFile=${certificatePath}`,
    "-o",
    "IdentitiesOnly=yes",
    "-o",
    "BatchMode=yes",
    "-o",
    "StrictHostKeyChecking=yes",
    "-o",
    `UserKnownHostsFile=${knownHostsPath}`,
    "-o",
    "GlobalKnownHostsFile=/dev/null",
    "-o",
    "UpdateHostKeys=no",
    "-o",
    `HostKeyAlias=${login.hostAlias}`,
    "-o",
    "ConnectTimeout=10",
    ...(login.options ?? []).flatMap((option) => ["-o", option]),
    "-p",
    String(sshd.port),
    `${sshd.user}@127.0.0.1`,
    "true",
  ]);
}
