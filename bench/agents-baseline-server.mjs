// The baseline for bench/agents.ts: a bare Node HTTPS server that fans one
// change out to long-polling clients, with the same TLS setup as Keyward
// (client certificates requested) and nothing else: no authentication
// check, no storage, no rendering, no encryption. GET /state?since=V waits
// until the version differs from V (or 30 s pass). POST /bump makes a new
// version with a fresh payload of the size of a sealed configuration and
// responds to every waiting client. POST /applied reads the body and
// returns 204. It prints its port on stdout.
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer } from "node:https";

let version = 1;
let payload = randomBytes(900).toString("base64url");
const waiting = new Set();

function answer(response) {
  const body = JSON.stringify({ etag: String(version), artifacts: [{ version, payload }] });
  response.writeHead(200, { "content-type": "application/json" });
  response.end(body);
}

const server = createServer(
  {
    cert: readFileSync(process.env.BASELINE_CERT_FILE),
    key: readFileSync(process.env.BASELINE_KEY_FILE),
    requestCert: true,
    rejectUnauthorized: false,
  },
  (request, response) => {
    const url = new URL(request.url, "https://baseline");
    if (request.method === "GET" && url.pathname === "/state") {
      if (url.searchParams.get("since") !== String(version)) return answer(response);
      const entry = { response };
      entry.timer = setTimeout(() => {
        waiting.delete(entry);
        response.writeHead(304).end();
      }, 30_000);
      waiting.add(entry);
      response.on("close", () => {
        clearTimeout(entry.timer);
        waiting.delete(entry);
      });
      return;
    }
    request.resume();
    request.on("end", () => {
      if (url.pathname === "/bump") {
        version += 1;
        payload = randomBytes(900).toString("base64url");
        for (const entry of waiting) {
          clearTimeout(entry.timer);
          answer(entry.response);
        }
        waiting.clear();
        response.writeHead(200, { "content-type": "application/json" });
        response.end(JSON.stringify({ version }));
        return;
      }
      response.writeHead(204).end();
    });
  },
);
server.keepAliveTimeout = 120_000;
server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`listening on ${server.address().port}\n`);
});
