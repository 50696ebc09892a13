import { KeywardError } from "../../../errors.ts";
import type { PkiStore } from "../store.ts";

/** The EST operations (RFC 7030 section 3.2.2), which are also the last path segment of each endpoint. */
export const EST_OPERATIONS = [
  "cacerts",
  "simpleenroll",
  "simplereenroll",
  "serverkeygen",
  "csrattrs",
] as const;
export type EstOperation = (typeof EST_OPERATIONS)[number];

/** Path segment under `<mount>/est/` where the enrolment secrets are managed; no label may use it. */
export const ENROLLMENT_SECRETS_SEGMENT = "enrollment-secrets";

/** Label syntax: one path segment of letters, digits, `_` and `-`. */
const LABEL = /^[A-Za-z0-9_-]{1,64}$/;
const ROLE_NAME = /^[\w.-]{1,128}$/;
const ROLE_PREFIX = "role:";

/** A mount's EST settings, at `<mount>/config/est`, with Vault's field names. */
export interface EstConfig {
  enabled: boolean;
  /** Serve this mount at `/.well-known/est/`. At most one mount may set it. */
  default_mount: boolean;
  /** The path policy of requests without a label: `role:<name>` or a role name. */
  default_path_policy: string;
  /** Path policies of labelled requests (`/.well-known/est/<label>/…`), by label. */
  label_to_path_policy: Record<string, string>;
  /**
   * Serve EST over plain HTTP too. Off by default, because enrolment
   * secrets and server-generated keys would cross the network in clear text.
   */
  allow_insecure_http: boolean;
  /** When the configuration was last written, RFC 3339; empty before the first write. */
  last_updated: string;
}

export type EstConfigInput = Partial<Omit<EstConfig, "last_updated">>;

export const EST_CONFIG_DEFAULTS: Readonly<EstConfig> = Object.freeze({
  enabled: false,
  default_mount: false,
  default_path_policy: "",
  label_to_path_policy: {},
  allow_insecure_http: false,
  last_updated: "",
});

const CONFIG_PATH = "config/est";

/**
 * Returns the role a path policy names. Vault writes `role:<name>`; a bare
 * role name is accepted too. Vault's `sign-verbatim` policy is rejected
 * because it would let any device choose any name.
 */
export function roleOfPathPolicy(policy: string, field: string): string {
  const name = policy.startsWith(ROLE_PREFIX) ? policy.slice(ROLE_PREFIX.length) : policy;
  if (policy === "sign-verbatim") {
    throw new KeywardError(
      "invalid_field",
      `"${field}" cannot be sign-verbatim; name a role as role:<name>`,
      { field },
    );
  }
  if (!ROLE_NAME.test(name) || name === "." || name === "..") {
    throw new KeywardError(
      "invalid_field",
      `"${field}" must be role:<name> with a role name of 1-128 letters, digits, "_", "." or "-"`,
      { field },
    );
  }
  return name;
}

/** Checks a label's syntax; `field` names the request field in the error. */
export function validateLabel(label: string, field = "label_to_path_policy"): void {
  const reserved =
    (EST_OPERATIONS as readonly string[]).includes(label) || label === ENROLLMENT_SECRETS_SEGMENT;
  if (!LABEL.test(label) || reserved) {
    throw new KeywardError(
      "invalid_field",
      `EST label "${label}" is invalid: use 1-64 letters, digits, "_" or "-", and not an EST operation name or "${ENROLLMENT_SECRETS_SEGMENT}"`,
      { field },
    );
  }
}

/** Reads and writes a mount's EST configuration. */
export class EstConfigStore {
  readonly #store: PkiStore;
  readonly #clock: () => Date;

  constructor(store: PkiStore, clock: () => Date) {
    this.#store = store;
    this.#clock = clock;
  }

  async read(): Promise<EstConfig> {
    return { ...EST_CONFIG_DEFAULTS, ...(await this.#store.get<Partial<EstConfig>>(CONFIG_PATH)) };
  }

  /**
   * Merges `changes` into the stored configuration, as a Vault POST does:
   * absent fields keep their value and `label_to_path_policy`, when given,
   * replaces the whole map. Throws `invalid_field` for a malformed label or
   * path policy. Whether another mount is the default is checked by the caller.
   */
  async write(changes: EstConfigInput): Promise<EstConfig> {
    if (changes.default_path_policy !== undefined && changes.default_path_policy !== "") {
      roleOfPathPolicy(changes.default_path_policy, "default_path_policy");
    }
    for (const [label, policy] of Object.entries(changes.label_to_path_policy ?? {})) {
      validateLabel(label);
      roleOfPathPolicy(policy, `label_to_path_policy.${label}`);
    }
    return this.#store.withLock(CONFIG_PATH, async () => {
      const defined = Object.fromEntries(
        Object.entries(changes).filter(([, value]) => value !== undefined),
      );
      const updated: EstConfig = {
        ...(await this.read()),
        ...defined,
        last_updated: this.#clock().toISOString(),
      };
      await this.#store.put(CONFIG_PATH, updated);
      return updated;
    });
  }
}

/**
 * Returns the role that serves a request with `label` (undefined for the
 * unlabelled endpoints). Throws `not_found` when EST is disabled, the label
 * is unknown, or no default path policy is set.
 */
export function roleForLabel(config: EstConfig, mount: string, label: string | undefined): string {
  if (!config.enabled) {
    throw new KeywardError("not_found", `EST is not enabled on mount "${mount}"`);
  }
  if (label === undefined) {
    if (config.default_path_policy === "") {
      throw new KeywardError(
        "not_found",
        `EST on mount "${mount}" has no default_path_policy; use a configured label`,
      );
    }
    return roleOfPathPolicy(config.default_path_policy, "default_path_policy");
  }
  const policy = Object.hasOwn(config.label_to_path_policy, label)
    ? config.label_to_path_policy[label]
    : undefined;
  if (policy === undefined) {
    throw new KeywardError("not_found", `EST label ${JSON.stringify(label)} is not configured`);
  }
  return roleOfPathPolicy(policy, `label_to_path_policy.${label}`);
}
