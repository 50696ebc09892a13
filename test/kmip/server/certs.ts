import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface TestPki {
  dir: string;
  caPath: string;
  serverCertPath: string;
  serverKeyPath: string;
  clientCertPath: string;
  clientKeyPath: string;
  ca: Buffer;
  serverCert: Buffer;
  serverKey: Buffer;
  clientCert: Buffer;
  clientKey: Buffer;
}

function openssl(dir: string, args: string[]): void {
  execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
}

/**
 * Makes a throwaway CA with openssl, a server certificate for 127.0.0.1 (IP
 * SAN, serverAuth) and a client certificate with the given CN (clientAuth).
 */
export function makeTestPki(clientCn = "kmip-client"): TestPki {
  const dir = mkdtempSync(join(tmpdir(), "keyward-kmip-pki-"));
  openssl(dir, [
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    "ca.key",
    "-out",
    "ca.pem",
    "-days",
    "1",
    "-subj",
    "/CN=Keyward KMIP test CA",
  ]);
  writeFileSync(
    join(dir, "server.ext"),
    "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
  );
  writeFileSync(join(dir, "client.ext"), "extendedKeyUsage=clientAuth\n");
  for (const [name, cn] of [
    ["server", "127.0.0.1"],
    ["client", clientCn],
  ] as const) {
    openssl(dir, [
      "req",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      `${name}.key`,
      "-out",
      `${name}.csr`,
      "-subj",
      `/CN=${cn}`,
    ]);
    openssl(dir, [
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      "ca.pem",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-out",
      `${name}.pem`,
      "-days",
      "1",
      "-extfile",
      `${name}.ext`,
    ]);
  }
  const path = (name: string) => join(dir, name);
  return {
    dir,
    caPath: path("ca.pem"),
    serverCertPath: path("server.pem"),
    serverKeyPath: path("server.key"),
    clientCertPath: path("client.pem"),
    clientKeyPath: path("client.key"),
    ca: readFileSync(path("ca.pem")),
    serverCert: readFileSync(path("server.pem")),
    serverKey: readFileSync(path("server.key")),
    clientCert: readFileSync(path("client.pem")),
    clientKey: readFileSync(path("client.key")),
  };
}
