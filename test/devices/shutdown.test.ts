import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { request as httpsRequest } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { makeLoopbackCertificate } from "../helpers/loopback-certificate.ts";
import { requirePeer } from "../helpers/peers.ts";
import { type ServerProcess, startDevServer } from "../helpers/server-process.ts";
import { deviceRequest, makeDeviceKeys, type TlsServer } from "./fixtures.ts";

// A stopping server ends the agents' long polls of their state at once,
// instead of waiting for each poll's `wait` to run out (up to 60 s),
// which would also exceed the server's shutdown limit.

/** The long poll's wait, far beyond the time the shutdown may take. */
const POLL_WAIT_SECONDS = 60;

/** Sends an API request with the root token over TLS and returns the `data` of a 2xx reply. */
function admin(server: ServerProcess, caPem: string, method: string, path: string, body?: object) {
  return new Promise<Record<string, unknown>>((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const request = httpsRequest(
      `${server.address}/v1/${path}`,
      {
        method,
        ca: caPem,
        agent: false,
        headers: {
          "x-vault-token": server.rootToken,
          ...(payload === undefined ? {} : { "content-type": "application/json" }),
        },
      },
      (response) => {
        let text = "";
        response.setEncoding("utf8");
        response.on("data", (chunk: string) => {
          text += chunk;
        });
        response.on("end", () => {
          const status = response.statusCode ?? 0;
          if (status < 200 || status > 299) {
            reject(new Error(`${method} ${path}: ${status} ${text}`));
            return;
          }
          resolve(text === "" ? {} : (JSON.parse(text).data ?? {}));
        });
      },
    );
    request.on("error", reject);
    request.end(payload);
  });
}

describe("server shutdown with waiting agents", () => {
  it("ends the long polls and exits", async (t) => {
    if (!requirePeer(t, "openssl")) return;
    const dir = mkdtempSync(join(tmpdir(), "keyward-shutdown-"));
    const { certFile, keyFile } = makeLoopbackCertificate(dir);
    const caPem = readFileSync(certFile, "utf8");

    const keyward = await startDevServer({
      dataDir: join(dir, "data"),
      args: ["--tls-cert-file", certFile, "--tls-key-file", keyFile],
    });
    try {
      const call = (method: string, path: string, body?: object) =>
        admin(keyward, caPem, method, path, body);
      await call("POST", "sys/mounts/pki", { type: "pki", config: { max_lease_ttl: "87600h" } });
      await call("POST", "pki/root/generate/internal", {
        common_name: "Shutdown Root",
        key_type: "ec",
        ttl: "87600h",
      });
      await call("POST", "pki/roles/devices", {
        allow_any_name: true,
        enforce_hostnames: false,
        key_type: "any",
        server_flag: false,
        client_flag: true,
        ttl: "720h",
      });
      await call("POST", "devices/config", { pki_mount: "pki", pki_role: "devices" });
      await call("POST", "devices/registry/poller", {});
      const token = await call("POST", "devices/registry/poller/bootstrap-token", {});

      const server: TlsServer = { url: keyward.address, caPem } as TlsServer;
      const keys = await makeDeviceKeys("poller");
      const enrolled = await deviceRequest(server, {
        method: "POST",
        path: "/v1/devices/enroll",
        body: {
          bootstrap_token: token.bootstrap_token,
          csr: keys.csr,
          encryption_key: keys.encryptionKey,
        },
      });
      assert.equal(enrolled.status, 200, enrolled.body);
      const device = { certificatePem: enrolled.json().data.certificate as string, keys };

      const current = await deviceRequest(server, {
        method: "GET",
        path: "/v1/devices/self/state",
        device,
      });
      assert.equal(current.status, 200, current.body);
      const etag = current.json().data.etag as string;

      const poll = deviceRequest(server, {
        method: "GET",
        path: `/v1/devices/self/state?since=${encodeURIComponent(etag)}&wait=${POLL_WAIT_SECONDS}`,
        device,
      });
      // Give the poll time to reach its wait; a poll still on its way ends the same.
      await new Promise((resolve) => setTimeout(resolve, 500));

      const exitCode = await keyward.stop("SIGTERM");
      assert.equal(exitCode, 0, keyward.output());
      const ended = await poll;
      assert.equal(ended.status, 304, ended.body);
    } finally {
      await keyward.stop("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
