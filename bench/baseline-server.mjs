// The baseline for bench/transit.ts: a bare Node HTTP server that performs
// the same operations as Keyward's transit engine (AES-256-GCM encrypt and
// decrypt, Ed25519 sign) on a JSON body, with no authentication, no
// storage, no validation and no logging. It prints its port on stdout.
import {
  createCipheriv,
  createDecipheriv,
  generateKeyPairSync,
  randomBytes,
  sign,
} from "node:crypto";
import { createServer } from "node:http";

const key = randomBytes(32);
const { privateKey } = generateKeyPairSync("ed25519");

function encrypt(plaintext) {
  const nonce = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", key, nonce);
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return `bench:v1:${Buffer.concat([nonce, body, cipher.getAuthTag()]).toString("base64")}`;
}

function decrypt(ciphertext) {
  const raw = Buffer.from(ciphertext.slice("bench:v1:".length), "base64");
  const decipher = createDecipheriv("aes-256-gcm", key, raw.subarray(0, 12));
  decipher.setAuthTag(raw.subarray(raw.length - 16));
  return Buffer.concat([decipher.update(raw.subarray(12, raw.length - 16)), decipher.final()]);
}

const handlers = {
  "/encrypt": (body) => ({ ciphertext: encrypt(Buffer.from(body.plaintext, "base64")) }),
  "/decrypt": (body) => ({ plaintext: decrypt(body.ciphertext).toString("base64") }),
  "/sign": (body) => ({
    signature: `bench:v1:${sign(null, Buffer.from(body.input, "base64"), privateKey).toString("base64")}`,
  }),
};

const server = createServer((request, response) => {
  const chunks = [];
  request.on("data", (chunk) => chunks.push(chunk));
  request.on("end", () => {
    const handler = handlers[request.url];
    if (!handler) {
      response.writeHead(404).end();
      return;
    }
    const data = handler(JSON.parse(Buffer.concat(chunks).toString("utf8")));
    response.writeHead(200, { "content-type": "application/json" });
    response.end(JSON.stringify({ data }));
  });
});

server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`${server.address().port}\n`);
});
