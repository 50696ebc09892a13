/**
 * Complete ACME issuance flows against Keyward and Pebble, in one run.
 *
 * Starts a Keyward dev server (from dist/, so run `npm run build` first)
 * with a PKI mount `pki`, an ECDSA P-256 root, a role `bench` and ACME
 * enabled. Beside it runs Pebble (Debian's package) with its own HTTPS
 * certificate, and with its artificial delays and nonce rejections
 * switched off (`PEBBLE_VA_NOSLEEP=1`, `PEBBLE_WFE_NONCEREJECT=0`). Both
 * validate http-01 against one responder on loopback.
 *
 * Each flow is what a new client does: create an account (new P-256
 * account key), order a certificate for the IP identifier 127.0.0.1,
 * publish the http-01 key authorization, respond to the challenge, poll the
 * authorization, finalize with a new P-256 CSR and download the chain.
 * `--concurrency` flows run at once for `--duration` seconds against each
 * server, with acme-client (npm) as the client and a 10 ms polling
 * backoff. The table shows completed flows per second and the ratio
 * Keyward / Pebble.
 *
 * Keyward stores every record behind its barrier and audits every request
 * with the dev server's audit settings; Pebble keeps everything in memory.
 *
 * Usage: npx tsx bench/acme.ts [--duration SECONDS] [--concurrency N]
 */
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer as createHttpServer } from "node:http";
import { Agent as HttpsAgent, get as httpsGet } from "node:https";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import acme from "acme-client";
import {
  exited,
  freePort,
  mountPkiWithRoot,
  post,
  ROOT_TOKEN,
  startDevServer,
} from "./dev-server.ts";

const { values } = parseArgs({
  options: {
    duration: { type: "string", default: "10" },
    concurrency: { type: "string", default: "8" },
  },
});
const duration = Number(values.duration);
const concurrency = Number(values.concurrency);

/** Polling backoff of acme-client, in milliseconds; its defaults (5 s and up) would measure sleeping. */
const BACKOFF = { backoffMin: 10, backoffMax: 100, backoffAttempts: 100 };

/** Serves http-01 key authorizations from `tokens` on loopback. */
async function startResponder(port: number, tokens: Map<string, string>) {
  const server = createHttpServer((request, response) => {
    const token = /^\/\.well-known\/acme-challenge\/([\w-]+)$/.exec(request.url ?? "")?.[1];
    const keyAuthorization = token === undefined ? undefined : tokens.get(token);
    if (keyAuthorization === undefined) response.writeHead(404).end();
    else response.writeHead(200, { "content-type": "text/plain" }).end(keyAuthorization);
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return server;
}

/** Starts Pebble with a self-signed certificate for 127.0.0.1 and resolves with its directory URL. */
async function startPebble(dir: string, httpPort: number) {
  const certPath = join(dir, "pebble-cert.pem");
  const keyPath = join(dir, "pebble-key.pem");
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-subj",
      "/CN=pebble",
      "-addext",
      "subjectAltName=IP:127.0.0.1,DNS:localhost",
      "-days",
      "2",
      "-keyout",
      keyPath,
      "-out",
      certPath,
    ],
    { stdio: "ignore" },
  );
  const port = await freePort();
  const configPath = join(dir, "pebble.json");
  writeFileSync(
    configPath,
    JSON.stringify({
      pebble: {
        listenAddress: `127.0.0.1:${port}`,
        managementListenAddress: `127.0.0.1:${await freePort()}`,
        certificate: certPath,
        privateKey: keyPath,
        httpPort,
        tlsPort: await freePort(),
        ocspResponderURL: "",
        externalAccountBindingRequired: false,
      },
    }),
  );
  const child = spawn("pebble", ["-config", configPath], {
    env: { ...process.env, PEBBLE_VA_NOSLEEP: "1", PEBBLE_WFE_NONCEREJECT: "0" },
    stdio: ["ignore", "ignore", "inherit"],
  });
  const directoryUrl = `https://127.0.0.1:${port}/dir`;
  const agent = new HttpsAgent({ ca: readFileSync(certPath) });
  for (let attempt = 0; attempt < 100; attempt += 1) {
    if (child.exitCode !== null) throw new Error(`pebble exited with ${child.exitCode}`);
    const ready = await new Promise<boolean>((resolve) => {
      httpsGet(directoryUrl, { agent }, (response) => {
        response.resume();
        resolve(response.statusCode === 200);
      }).on("error", () => resolve(false));
    });
    if (ready) return { child, directoryUrl, certificate: readFileSync(certPath) };
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  child.kill("SIGTERM");
  throw new Error(
    `pebble did not respond on ${directoryUrl} within 10 s; run it by hand to see why`,
  );
}

/** Runs one complete issuance flow against `directoryUrl`. */
async function flow(directoryUrl: string, tokens: Map<string, string>): Promise<void> {
  const client = new acme.Client({
    directoryUrl,
    accountKey: await acme.crypto.createPrivateEcdsaKey(),
    ...BACKOFF,
  });
  await client.createAccount({ termsOfServiceAgreed: true });
  const order = await client.createOrder({ identifiers: [{ type: "ip", value: "127.0.0.1" }] });
  const [authorization] = await client.getAuthorizations(order);
  const challenge = authorization!.challenges.find((candidate) => candidate.type === "http-01");
  if (!challenge) throw new Error("no http-01 challenge offered");
  tokens.set(challenge.token, await client.getChallengeKeyAuthorization(challenge));
  try {
    await client.completeChallenge(challenge);
    await client.waitForValidStatus(authorization!);
  } finally {
    tokens.delete(challenge.token);
  }
  const [, csr] = await acme.crypto.createCsr(
    { altNames: ["127.0.0.1"] },
    await acme.crypto.createPrivateEcdsaKey(),
  );
  const finalized = await client.finalizeOrder(order, csr);
  const chain = await client.getCertificate(await client.waitForValidStatus(finalized));
  if (!chain.includes("BEGIN CERTIFICATE")) throw new Error("the download has no certificate");
}

/** Runs flows `concurrency` at a time for `seconds` and returns completed flows per second and the error count. */
async function measure(directoryUrl: string, tokens: Map<string, string>, seconds: number) {
  const deadline = Date.now() + seconds * 1000;
  let completed = 0;
  let errors = 0;
  let firstError: unknown;
  const started = Date.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (Date.now() < deadline) {
        try {
          await flow(directoryUrl, tokens);
          completed += 1;
        } catch (error) {
          errors += 1;
          firstError ??= error;
        }
      }
    }),
  );
  if (firstError) console.error("first error:", firstError);
  return { flowsPerSecond: completed / ((Date.now() - started) / 1000), completed, errors };
}

async function main(): Promise<void> {
  for (const command of ["openssl", "pebble"]) {
    try {
      execFileSync("sh", ["-c", `command -v ${command}`], { stdio: "ignore" });
    } catch {
      console.error(
        `${command} is not on PATH; install it (Debian: apt-get install ${command}) and run again`,
      );
      process.exit(1);
    }
  }
  const dir = mkdtempSync(join(tmpdir(), "keyward-bench-acme-"));
  const tokens = new Map<string, string>();
  const httpPort = await freePort();
  const responder = await startResponder(httpPort, tokens);
  const server = await startDevServer();
  const pebble = await startPebble(dir, httpPort);
  // acme-client sends every request through its own axios instance.
  const axios = (acme as unknown as { axios: { defaults: { httpsAgent?: unknown } } }).axios;
  axios.defaults.httpsAgent = new HttpsAgent({ ca: pebble.certificate, keepAlive: true });
  try {
    const pki = await mountPkiWithRoot(server);
    await post(
      `${pki}/roles/bench`,
      { allow_ip_sans: true, key_type: "ec", key_bits: 256, ttl: "168h" },
      ROOT_TOKEN,
    );
    await post(
      `${pki}/config/acme`,
      {
        enabled: true,
        default_directory_policy: "role:bench",
        allowed_networks: ["127.0.0.0/8"],
        http_port: httpPort,
      },
      ROOT_TOKEN,
    );

    console.log(
      `machine: ${cpus().length} x ${cpus()[0]?.model ?? "unknown CPU"}, Node ${process.version}`,
    );
    console.log(
      `load: acme-client, ${concurrency} concurrent flows, ${duration} s per server; account, order (IP 127.0.0.1), http-01, finalize (P-256 CSR), download\n`,
    );
    const ours = await measure(`${pki}/acme/directory`, tokens, duration);
    const theirs = await measure(pebble.directoryUrl, tokens, duration);
    console.log("| server | flows/s | flows | errors |");
    console.log("| --- | ---: | ---: | ---: |");
    console.log(
      `| Keyward | ${ours.flowsPerSecond.toFixed(1)} | ${ours.completed} | ${ours.errors} |`,
    );
    console.log(
      `| Pebble | ${theirs.flowsPerSecond.toFixed(1)} | ${theirs.completed} | ${theirs.errors} |`,
    );
    console.log(
      `\nratio Keyward / Pebble: ${(ours.flowsPerSecond / theirs.flowsPerSecond).toFixed(2)}`,
    );
  } finally {
    pebble.child.kill("SIGTERM");
    await exited(pebble.child);
    await server.stop();
    responder.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
