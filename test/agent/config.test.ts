import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parseAgentConfig, readAgentConfig } from "../../src/agent/config.ts";
import { isKeywardError } from "../../src/errors.ts";

const TOKEN = `kwb.${"A".repeat(43)}`;

/** Returns a valid config with one artifact of each kind. Each case changes one field of it. */
function validConfig(): Record<string, unknown> {
  return {
    server: "https://127.0.0.1:8200",
    ca_file: "/etc/keyward/server-ca.pem",
    device: "gw-1",
    bootstrap_token: TOKEN,
    state_dir: "/var/lib/keyward-agent",
    poll_wait: "30s",
    artifacts: [
      {
        kind: "wireguard",
        mount: "wireguard",
        network: "office",
        peer: "alpha",
        format: "wg-quick",
        path: "/etc/wireguard/wg0.conf",
        owner: "root",
        group: "root",
        mode: "0600",
        check: "wg-quick strip {path}",
        reload: "wg syncconf wg0 <(wg-quick strip wg0)",
      },
      { kind: "secret", name: "radius", path: "/etc/radius/secret", mode: "0640" },
    ],
  };
}

type Mutation = (config: Record<string, unknown>) => void;

const wireguard = (config: Record<string, unknown>) =>
  (config.artifacts as Record<string, unknown>[])[0] as Record<string, unknown>;
const secret = (config: Record<string, unknown>) =>
  (config.artifacts as Record<string, unknown>[])[1] as Record<string, unknown>;

interface BadCase {
  name: string;
  change: Mutation;
  code: string;
  field: string;
  /** Text the message must contain besides the field name. */
  says?: string;
}

const BAD: BadCase[] = [
  { name: "config not an object", change: () => undefined, code: "invalid_field", field: "config" },
  {
    name: "unknown top-level field",
    change: (c) => {
      c.poll_interval = "5s";
    },
    code: "unknown_field",
    field: "poll_interval",
  },
  {
    name: "missing server",
    change: (c) => {
      delete c.server;
    },
    code: "missing_field",
    field: "server",
  },
  {
    name: "server not a URL",
    change: (c) => {
      c.server = "keyward:8200 ";
    },
    code: "invalid_field",
    field: "server",
  },
  {
    name: "server over plain http",
    change: (c) => {
      c.server = "http://127.0.0.1:8200";
    },
    code: "invalid_field",
    field: "server",
    says: "mutual TLS",
  },
  {
    name: "server with credentials",
    change: (c) => {
      c.server = "https://user:pw@127.0.0.1:8200";
    },
    code: "invalid_field",
    field: "server",
  },
  {
    name: "ca_file empty",
    change: (c) => {
      c.ca_file = "";
    },
    code: "invalid_field",
    field: "ca_file",
  },
  {
    name: "missing device",
    change: (c) => {
      delete c.device;
    },
    code: "missing_field",
    field: "device",
  },
  {
    name: "device with a slash",
    change: (c) => {
      c.device = "gw/1";
    },
    code: "invalid_field",
    field: "device",
  },
  {
    name: "device too long",
    change: (c) => {
      c.device = "a".repeat(64);
    },
    code: "invalid_field",
    field: "device",
  },
  {
    name: "bootstrap_token malformed",
    change: (c) => {
      c.bootstrap_token = "kwb.short";
    },
    code: "invalid_field",
    field: "bootstrap_token",
  },
  {
    name: "both token and token file",
    change: (c) => {
      c.bootstrap_token_file = "/etc/keyward/token";
    },
    code: "invalid_field",
    field: "bootstrap_token_file",
  },
  {
    name: "missing state_dir",
    change: (c) => {
      delete c.state_dir;
    },
    code: "missing_field",
    field: "state_dir",
  },
  {
    name: "poll_wait above 60 s",
    change: (c) => {
      c.poll_wait = "2m";
    },
    code: "invalid_field",
    field: "poll_wait",
    says: "between 1 and 60 seconds",
  },
  {
    name: "poll_wait zero",
    change: (c) => {
      c.poll_wait = "0s";
    },
    code: "invalid_field",
    field: "poll_wait",
  },
  {
    name: "poll_wait not a duration",
    change: (c) => {
      c.poll_wait = "soon";
    },
    code: "invalid_field",
    field: "poll_wait",
  },
  {
    name: "log_level unknown",
    change: (c) => {
      c.log_level = "verbose";
    },
    code: "invalid_field",
    field: "log_level",
  },
  {
    name: "artifacts not a list",
    change: (c) => {
      c.artifacts = {};
    },
    code: "invalid_field",
    field: "artifacts",
  },
  {
    name: "artifact not an object",
    change: (c) => {
      c.artifacts = ["wg0"];
    },
    code: "invalid_field",
    field: "artifacts[0]",
  },
  {
    name: "artifact kind unknown",
    change: (c) => {
      wireguard(c).kind = "ssh";
    },
    code: "invalid_field",
    field: "artifacts[0].kind",
  },
  {
    name: "artifact kind missing",
    change: (c) => {
      delete secret(c).kind;
    },
    code: "missing_field",
    field: "artifacts[1].kind",
  },
  {
    name: "wireguard unknown field",
    change: (c) => {
      wireguard(c).name = "radius";
    },
    code: "unknown_field",
    field: "artifacts[0].name",
  },
  {
    name: "wireguard mount missing",
    change: (c) => {
      delete wireguard(c).mount;
    },
    code: "missing_field",
    field: "artifacts[0].mount",
  },
  {
    name: "wireguard mount with colon",
    change: (c) => {
      wireguard(c).mount = "wire:guard";
    },
    code: "invalid_field",
    field: "artifacts[0].mount",
  },
  {
    name: "wireguard network invalid",
    change: (c) => {
      wireguard(c).network = "-office";
    },
    code: "invalid_field",
    field: "artifacts[0].network",
  },
  {
    name: "wireguard peer missing",
    change: (c) => {
      delete wireguard(c).peer;
    },
    code: "missing_field",
    field: "artifacts[0].peer",
  },
  {
    name: "wireguard format unknown",
    change: (c) => {
      wireguard(c).format = "netdev";
    },
    code: "invalid_field",
    field: "artifacts[0].format",
  },
  {
    name: "path missing",
    change: (c) => {
      delete wireguard(c).path;
    },
    code: "missing_field",
    field: "artifacts[0].path",
  },
  {
    name: "path names a directory",
    change: (c) => {
      wireguard(c).path = "/etc/wireguard/";
    },
    code: "invalid_field",
    field: "artifacts[0].path",
  },
  {
    name: "path used twice",
    change: (c) => {
      secret(c).path = "/etc/wireguard/wg0.conf";
    },
    code: "invalid_field",
    field: "artifacts[1].path",
    says: "artifacts[0].path",
  },
  {
    name: "mode as a JSON number",
    change: (c) => {
      wireguard(c).mode = 600;
    },
    code: "invalid_field",
    field: "artifacts[0].mode",
  },
  {
    name: "mode with a non-octal digit",
    change: (c) => {
      wireguard(c).mode = "0680";
    },
    code: "invalid_field",
    field: "artifacts[0].mode",
  },
  {
    name: "mode with setuid",
    change: (c) => {
      wireguard(c).mode = "4755";
    },
    code: "invalid_field",
    field: "artifacts[0].mode",
  },
  {
    name: "owner that does not exist",
    change: (c) => {
      wireguard(c).owner = "no-such-user-kw";
    },
    code: "invalid_field",
    field: "artifacts[0].owner",
    says: "no user named",
  },
  {
    name: "owner id out of range",
    change: (c) => {
      wireguard(c).owner = 4_294_967_295;
    },
    code: "invalid_field",
    field: "artifacts[0].owner",
  },
  {
    name: "owner negative",
    change: (c) => {
      wireguard(c).owner = -1;
    },
    code: "invalid_field",
    field: "artifacts[0].owner",
  },
  {
    name: "group that does not exist",
    change: (c) => {
      wireguard(c).group = "no-such-group-kw";
    },
    code: "invalid_field",
    field: "artifacts[0].group",
    says: "no group named",
  },
  {
    name: "group as an object",
    change: (c) => {
      wireguard(c).group = { name: "root" };
    },
    code: "invalid_field",
    field: "artifacts[0].group",
  },
  {
    name: "check without {path}",
    change: (c) => {
      wireguard(c).check = "wg-quick strip wg0";
    },
    code: "invalid_field",
    field: "artifacts[0].check",
    says: "{path}",
  },
  {
    name: "reload empty",
    change: (c) => {
      wireguard(c).reload = "";
    },
    code: "invalid_field",
    field: "artifacts[0].reload",
  },
  {
    name: "command_timeout too long",
    change: (c) => {
      wireguard(c).command_timeout = "2h";
    },
    code: "invalid_field",
    field: "artifacts[0].command_timeout",
  },
  {
    name: "secret name missing",
    change: (c) => {
      delete secret(c).name;
    },
    code: "missing_field",
    field: "artifacts[1].name",
  },
  {
    name: "secret name with a colon",
    change: (c) => {
      secret(c).name = "a:b";
    },
    code: "invalid_field",
    field: "artifacts[1].name",
  },
  {
    name: "secret trailing_newline not boolean",
    change: (c) => {
      secret(c).trailing_newline = "yes";
    },
    code: "invalid_field",
    field: "artifacts[1].trailing_newline",
  },
  {
    name: "secret with a wireguard field",
    change: (c) => {
      secret(c).format = "wg";
    },
    code: "unknown_field",
    field: "artifacts[1].format",
  },
];

describe("agent config", () => {
  it("valid config parses", () => {
    const config = parseAgentConfig(validConfig(), "/etc/keyward");
    assert.equal(config.server.origin, "https://127.0.0.1:8200");
    assert.equal(config.device, "gw-1");
    assert.equal(config.pollWaitSeconds, 30);
    assert.equal(config.artifacts.length, 2);
    const [wg, radius] = config.artifacts;
    assert.equal(wg?.id, "wireguard:wireguard:office:alpha");
    assert.equal(wg?.mode, 0o600);
    assert.equal(wg?.uid, 0);
    assert.equal(wg?.gid, 0);
    assert.equal(wg?.commandTimeoutMs, 30_000);
    assert.equal(radius?.id, "secret:radius");
    assert.equal(radius?.mode, 0o640);
    assert.equal(radius?.uid, undefined);
    assert.equal(radius?.kind === "secret" && radius.trailingNewline, false);
  });

  it("defaults and numeric ids", () => {
    const raw = validConfig();
    delete raw.poll_wait;
    delete raw.bootstrap_token;
    Object.assign(wireguard(raw), { owner: 1234, group: "5678", mode: undefined });
    delete wireguard(raw).format;
    const config = parseAgentConfig(raw, "/etc/keyward");
    assert.equal(config.pollWaitSeconds, 30);
    assert.equal(config.bootstrapToken, undefined);
    const wg = config.artifacts[0];
    assert.equal(wg?.uid, 1234);
    assert.equal(wg?.gid, 5678);
    assert.equal(wg?.mode, 0o600);
    assert.equal(wg?.kind === "wireguard" && wg.format, "wg-quick");
  });

  it("relative paths resolve against the config directory", () => {
    const raw = validConfig();
    raw.state_dir = "state";
    raw.ca_file = "ca.pem";
    delete raw.bootstrap_token;
    raw.bootstrap_token_file = "token";
    secret(raw).path = "out/radius";
    const config = parseAgentConfig(raw, "/etc/keyward");
    assert.equal(config.stateDir, "/etc/keyward/state");
    assert.equal(config.caFile, "/etc/keyward/ca.pem");
    assert.equal(config.bootstrapTokenFile, "/etc/keyward/token");
    assert.equal(config.artifacts[1]?.path, "/etc/keyward/out/radius");
  });

  for (const bad of BAD) {
    it(`rejects ${bad.name}`, () => {
      const raw = validConfig();
      bad.change(raw);
      const input = bad.name === "config not an object" ? [raw] : raw;
      assert.throws(
        () => parseAgentConfig(input, "/etc/keyward"),
        (error: unknown) => {
          assert.ok(isKeywardError(error), String(error));
          assert.equal(error.code, bad.code);
          assert.equal(error.field, bad.field);
          assert.ok(error.message.includes(bad.field), error.message);
          if (bad.says) assert.ok(error.message.includes(bad.says), error.message);
          return true;
        },
      );
    });
  }

  it("token never in messages", () => {
    const raw = validConfig();
    raw.bootstrap_token = `kwb.${"B".repeat(40)}`;
    assert.throws(
      () => parseAgentConfig(raw, "/"),
      (error: Error) => !error.message.includes("BBBB"),
    );
  });

  it("invalid JSON file keeps the token out", () => {
    const dir = mkdtempSync(join(tmpdir(), "keyward-agent-config-"));
    const file = join(dir, "agent.json");
    writeFileSync(file, `{"bootstrap_token": "${TOKEN}" "device": 1}`);
    assert.throws(
      () => readAgentConfig(file),
      (error: unknown) => {
        assert.ok(isKeywardError(error));
        assert.equal(error.code, "invalid_json");
        assert.ok(!error.message.includes(TOKEN.slice(4)), error.message);
        assert.match(error.message, /not valid JSON \(error at character \d+\)/);
        return true;
      },
    );
  });

  it("missing file names the path", () => {
    assert.throws(() => readAgentConfig("/nonexistent/agent.json"), /\/nonexistent\/agent\.json/);
  });
});

describe("agent config paths", () => {
  const dir = mkdtempSync(join(tmpdir(), "keyward-agent-paths-"));
  const caFile = join(dir, "ca.pem");
  writeFileSync(caFile, "-----BEGIN CERTIFICATE-----\nMA==\n-----END CERTIFICATE-----\n");
  const notPem = join(dir, "not-pem.txt");
  writeFileSync(notPem, "hello\n");

  /** A config whose paths all exist under the temporary folder. */
  function local(): Record<string, unknown> {
    const config = validConfig();
    config.ca_file = caFile;
    config.state_dir = join(dir, "state");
    config.artifacts = [
      { kind: "secret", name: "radius", path: join(dir, "secret"), mode: "0600" },
    ];
    return config;
  }

  /** Writes `config` to a file and reads it back through readAgentConfig. */
  function read(config: Record<string, unknown>) {
    const file = join(dir, "agent.json");
    writeFileSync(file, JSON.stringify(config));
    return readAgentConfig(file);
  }

  it("accepts existing paths", () => {
    assert.equal(read(local()).caFile, caFile);
  });

  const cases: { name: string; change: Mutation; field: string }[] = [
    {
      name: "missing CA file",
      change: (c) => (c.ca_file = join(dir, "none.pem")),
      field: "ca_file",
    },
    { name: "CA file without PEM", change: (c) => (c.ca_file = notPem), field: "ca_file" },
    { name: "state dir is a file", change: (c) => (c.state_dir = notPem), field: "state_dir" },
    { name: "missing shell", change: (c) => (c.shell = "/no/such/shell"), field: "shell" },
    {
      name: "artifact path is a folder",
      change: (c) => (c.artifacts = [{ kind: "secret", name: "radius", path: dir }]),
      field: "artifacts[0].path",
    },
    {
      name: "artifact folder missing",
      change: (c) =>
        (c.artifacts = [{ kind: "secret", name: "radius", path: join(dir, "none", "secret") }]),
      field: "artifacts[0].path",
    },
  ];
  for (const { name, change, field } of cases) {
    it(`rejects ${name}`, () => {
      const config = local();
      change(config);
      assert.throws(
        () => read(config),
        (error: unknown) => isKeywardError(error) && error.field === field,
      );
    });
  }
});
