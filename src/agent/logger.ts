import pino, { type DestinationStream, type Logger } from "pino";
import type { LogLevel } from "../config.ts";

/**
 * Creates the agent's logger: one JSON line per event on stderr (or on
 * `destination`). The agent never passes a secret to it. The redaction
 * list is a second guard for field names that would carry one.
 */
export function createAgentLogger(level: LogLevel, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: "keyward-agent" },
      redact: {
        paths: [
          "bootstrap_token",
          "private_key",
          "plaintext",
          "secret",
          "*.bootstrap_token",
          "*.private_key",
          "*.plaintext",
          "*.secret",
        ],
        censor: "[redacted]",
      },
    },
    destination ?? pino.destination({ fd: 2, sync: true }),
  );
}
