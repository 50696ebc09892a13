import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createSocket } from "node:dgram";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** Finds a free UDP port on 127.0.0.1 by binding port 0 and closing the socket again. */
export function freeUdpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = createSocket("udp4");
    socket.on("error", reject);
    socket.bind(0, "127.0.0.1", () => {
      const { port } = socket.address();
      socket.close(() => resolve(port));
    });
  });
}

/** Settings of a private FreeRADIUS server. */
export interface RadiusServerOptions {
  /** Folder for the configuration, logs and run files. The caller creates and removes it. */
  dir: string;
  /** The rendered `eap` module. */
  eapModule: string;
  port: number;
}

/**
 * Writes a FreeRADIUS 3.2 configuration into `dir` that loads only the
 * `eap` module, accepts one loopback client with a random shared secret,
 * and listens for authentication on 127.0.0.1:`port`. Returns the secret.
 */
export function writeRadiusConfig(options: RadiusServerOptions): string {
  const { dir } = options;
  const secret = randomBytes(16).toString("hex");
  for (const sub of ["mods-enabled", "log", "run"]) mkdirSync(join(dir, sub), { recursive: true });
  // radiusd reads the dictionaries in /usr/share/freeradius first, then this file.
  writeFileSync(join(dir, "dictionary"), "");
  writeFileSync(
    join(dir, "clients.conf"),
    ["client loopback {", "\tipaddr = 127.0.0.1", `\tsecret = ${secret}`, "}", ""].join("\n"),
  );
  writeFileSync(join(dir, "mods-enabled", "eap"), options.eapModule);
  writeFileSync(
    join(dir, "radiusd.conf"),
    [
      "prefix = /usr",
      "exec_prefix = /usr",
      "sysconfdir = /etc",
      "localstatedir = /var",
      "sbindir = /usr/sbin",
      `raddbdir = ${dir}`,
      `confdir = ${dir}`,
      `logdir = ${dir}/log`,
      `run_dir = ${dir}/run`,
      `db_dir = ${dir}`,
      "libdir = /usr/lib/freeradius",
      `pidfile = ${dir}/run/radiusd.pid`,
      "name = radiusd",
      "max_request_time = 30",
      "cleanup_delay = 5",
      "max_requests = 1024",
      "hostname_lookups = no",
      "log {",
      "\tdestination = stdout",
      "\tauth = yes",
      "}",
      "security {",
      "\tallow_core_dumps = no",
      "\tmax_attributes = 200",
      "\treject_delay = 0",
      "\tstatus_server = no",
      "}",
      "proxy_requests = no",
      "$INCLUDE clients.conf",
      "thread pool {",
      "\tstart_servers = 1",
      "\tmax_servers = 4",
      "\tmin_spare_servers = 1",
      "\tmax_spare_servers = 2",
      "\tmax_requests_per_server = 0",
      "}",
      "modules {",
      "\t$INCLUDE mods-enabled/",
      "}",
      "server default {",
      "\tlisten {",
      "\t\ttype = auth",
      "\t\tipaddr = 127.0.0.1",
      `\t\tport = ${options.port}`,
      "\t}",
      "\tauthorize {",
      "\t\teap {",
      "\t\t\tok = return",
      "\t\t}",
      "\t}",
      "\tauthenticate {",
      "\t\teap",
      "\t}",
      "}",
      "",
    ].join("\n"),
  );
  return secret;
}

/** A running FreeRADIUS process and its collected output. */
export interface RadiusServer {
  output(): string;
  /** Stops the process and waits for it to exit. Safe to call twice. */
  stop(): Promise<void>;
}

/**
 * Starts `freeradius -X -d dir` and resolves once it reports that it is
 * ready. Rejects with the output when it exits first or is not ready
 * within `readyTimeoutMs`.
 */
export function startRadius(dir: string, readyTimeoutMs = 30_000): Promise<RadiusServer> {
  const child: ChildProcess = spawn("freeradius", ["-X", "-d", dir], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  let exited = child.exitCode !== null;
  const exit = new Promise<void>((resolve) => {
    child.on("exit", () => {
      exited = true;
      resolve();
    });
  });
  const server: RadiusServer = {
    output: () => output,
    async stop() {
      if (exited) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exit;
      clearTimeout(timer);
    },
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      void server.stop().then(() => reject(new Error(`freeradius was not ready:\n${output}`)));
    }, readyTimeoutMs);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes("Ready to process requests")) {
        clearTimeout(timer);
        resolve(server);
      }
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    void exit.then(() => {
      clearTimeout(timer);
      reject(new Error(`freeradius exited before it was ready:\n${output}`));
    });
  });
}

/** A station's EAP-TLS credentials, as paths to PEM files. */
export interface Station {
  identity: string;
  caCert: string;
  clientCert: string;
  privateKey: string;
  /** Required suffix of the RADIUS server certificate's DNS name. */
  domainSuffixMatch?: string;
}

/**
 * Runs `eapol_test` as a station doing EAP-TLS against 127.0.0.1:`port`
 * and returns its exit status and output. The configuration file is
 * written to `configPath`.
 */
export function runEapolTest(
  station: Station,
  configPath: string,
  port: number,
  secret: string,
): Promise<{ status: number | null; output: string }> {
  const lines = [
    "network={",
    "\tkey_mgmt=WPA-EAP",
    "\teap=TLS",
    `\tidentity="${station.identity}"`,
    `\tca_cert="${station.caCert}"`,
    `\tclient_cert="${station.clientCert}"`,
    `\tprivate_key="${station.privateKey}"`,
    ...(station.domainSuffixMatch ? [`\tdomain_suffix_match="${station.domainSuffixMatch}"`] : []),
    "\teapol_flags=0",
    "}",
    "",
  ];
  writeFileSync(configPath, lines.join("\n"));
  return new Promise((resolve) => {
    const child = spawn(
      "eapol_test",
      ["-c", configPath, "-a", "127.0.0.1", "-p", String(port), "-s", secret, "-t", "15"],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.on("close", (status) => resolve({ status, output }));
  });
}
