import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";

/** A server certificate and key for 127.0.0.1, as PEM files. */
export interface LoopbackCertificate {
  certFile: string;
  keyFile: string;
}

/**
 * Makes a self-signed ECDSA P-256 certificate for IP address 127.0.0.1
 * with `openssl req`, valid for one day, in `dir` (`server.crt` and
 * `server.key`). The caller checks for openssl with `requirePeer`.
 */
export function makeLoopbackCertificate(dir: string): LoopbackCertificate {
  const certFile = join(dir, "server.crt");
  const keyFile = join(dir, "server.key");
  const generated = spawnSync("openssl", [
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-keyout",
    keyFile,
    "-out",
    certFile,
    "-days",
    "1",
    "-subj",
    "/CN=127.0.0.1",
    "-addext",
    "subjectAltName=IP:127.0.0.1",
  ]);
  assert.equal(generated.status, 0, generated.stderr.toString());
  return { certFile, keyFile };
}
