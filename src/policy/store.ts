import { KeywardError } from "../errors.ts";
import type { Barrier } from "../seal/types.ts";
import { KeyedLock } from "../util/keyed-lock.ts";
import { Acl } from "./acl.ts";
import {
  DEFAULT_POLICY,
  DEFAULT_POLICY_TEXT,
  normalisePolicyName,
  ROOT_POLICY,
} from "./builtin.ts";
import { parsePolicy } from "./parse.ts";
import type { Policy } from "./types.ts";

/** Barrier prefix of stored policies; each is at `sys/policies/acl/<name>`. */
export const POLICY_PREFIX = "sys/policies/acl/";

/** Compiled ACLs kept in memory; past this, the oldest entry is dropped. */
const MAX_CACHED_ACLS = 1024;

/** A stored policy: its name and text. The text is parsed again when loaded. */
interface PolicyRecord {
  name: string;
  raw: string;
}

const ROOT = Object.freeze({ name: ROOT_POLICY, rules: Object.freeze([]), raw: "" }) as Policy;

function decodeRecord(name: string, bytes: Uint8Array): Policy {
  let record: PolicyRecord;
  try {
    record = JSON.parse(Buffer.from(bytes).toString("utf8")) as PolicyRecord;
  } catch (cause) {
    throw new KeywardError("storage_failure", "a stored policy is corrupted", {
      cause,
      details: { policy: name },
    });
  }
  if (typeof record?.raw !== "string") {
    throw new KeywardError("storage_failure", "a stored policy is corrupted", {
      details: { policy: name },
    });
  }
  try {
    return parsePolicy(name, record.raw);
  } catch (cause) {
    throw new KeywardError("storage_failure", "a stored policy could not be parsed", {
      cause,
      details: { policy: name },
    });
  }
}

/**
 * Stores ACL policies through the barrier and keeps them, parsed, in memory.
 *
 * `root` is built in and never stored: it cannot be written or deleted.
 * `default` reads as Vault's default policy until it is written; it can be
 * replaced but not deleted. Policy names are lowercased.
 *
 * Parsed policies and compiled ACLs are cached, and every `put` and
 * `delete` empties the caches. NOTE: the caches are per process, and
 * cross-node invalidation is not built yet. With several nodes on one
 * storage, a change made on another node takes effect here only after
 * `clearCache`.
 */
export class PolicyStore {
  readonly #barrier: Barrier;
  /** Writes to one name run one at a time, so the cache ends with the value stored last. */
  readonly #writes = new KeyedLock();
  readonly #policies = new Map<string, Policy>();
  readonly #acls = new Map<string, Acl>();
  /**
   * Bumped on every change. A load that started before a change does not
   * fill the caches when it ends, so it cannot put back a stale policy.
   */
  #generation = 0;

  constructor(barrier: Barrier) {
    this.#barrier = barrier;
  }

  /** Returns a policy, or undefined when none has this name. Throws `invalid_field` for an invalid name. */
  async get(name: string): Promise<Policy | undefined> {
    return this.#load(normalisePolicyName(name));
  }

  /** Lists every policy name, sorted, including `default` and `root`. */
  async list(): Promise<string[]> {
    const children = await this.#barrier.list(POLICY_PREFIX);
    const names = new Set(children.filter((child) => !child.endsWith("/")));
    names.add(DEFAULT_POLICY);
    names.add(ROOT_POLICY);
    return [...names].sort();
  }

  /**
   * Parses and stores a policy, replacing any of the same name. Throws
   * `invalid_policy` for text that does not parse, and `invalid_request` for
   * `root`.
   */
  async put(name: string, text: string): Promise<Policy> {
    const normalised = normalisePolicyName(name);
    if (normalised === ROOT_POLICY) {
      throw new KeywardError(
        "invalid_request",
        "the root policy is built in and cannot be modified",
      );
    }
    const policy = parsePolicy(normalised, text);
    const record: PolicyRecord = { name: normalised, raw: text };
    return this.#writes.run(normalised, async () => {
      await this.#barrier.put(
        POLICY_PREFIX + normalised,
        Buffer.from(JSON.stringify(record), "utf8"),
      );
      this.#invalidate();
      this.#policies.set(normalised, policy);
      return policy;
    });
  }

  /** Deletes a policy; deleting one that does not exist is not an error. `root` and `default` cannot be deleted. */
  async delete(name: string): Promise<void> {
    const normalised = normalisePolicyName(name);
    if (normalised === ROOT_POLICY || normalised === DEFAULT_POLICY) {
      throw new KeywardError(
        "invalid_request",
        `the ${normalised} policy is built in and cannot be deleted`,
      );
    }
    await this.#writes.run(normalised, async () => {
      await this.#barrier.delete(POLICY_PREFIX + normalised);
      this.#invalidate();
    });
  }

  /**
   * Returns the ACL compiled from the named policies, from the cache when it
   * can. Names that are invalid or have no policy are skipped, as Vault
   * skips them, so they grant nothing.
   */
  async acl(names: readonly string[]): Promise<Acl> {
    // Invalid names are dropped before the cache key is built. Because a
    // valid name has no newline, no two sets of names share a key.
    const valid = new Set<string>();
    for (const name of names) {
      try {
        valid.add(normalisePolicyName(name));
      } catch {
        // An invalid name cannot name a stored policy, so it grants nothing.
      }
    }
    const sortedNames = [...valid].sort();
    const key = sortedNames.join("\n");
    const cached = this.#acls.get(key);
    if (cached !== undefined) return cached;

    const generation = this.#generation;
    const policies: Policy[] = [];
    for (const name of sortedNames) {
      const policy = await this.#load(name);
      if (policy !== undefined) policies.push(policy);
    }
    const acl = Acl.compile(policies);
    if (generation === this.#generation) {
      if (this.#acls.size >= MAX_CACHED_ACLS) {
        const oldest = this.#acls.keys().next();
        if (oldest.done !== true) this.#acls.delete(oldest.value);
      }
      this.#acls.set(key, acl);
    }
    return acl;
  }

  /** Forgets every cached policy and ACL, so the next call reads the barrier (for example at seal). */
  clearCache(): void {
    this.#invalidate();
  }

  #invalidate(): void {
    this.#generation += 1;
    this.#policies.clear();
    this.#acls.clear();
  }

  async #load(name: string): Promise<Policy | undefined> {
    if (name === ROOT_POLICY) return ROOT;
    const cached = this.#policies.get(name);
    if (cached !== undefined) return cached;

    const generation = this.#generation;
    const bytes = await this.#barrier.get(POLICY_PREFIX + name);
    let policy: Policy | undefined;
    if (bytes !== undefined) policy = decodeRecord(name, bytes);
    else if (name === DEFAULT_POLICY) policy = parsePolicy(DEFAULT_POLICY, DEFAULT_POLICY_TEXT);
    // Only found policies are cached, so lookups of many unknown names cannot grow the cache.
    if (policy !== undefined && generation === this.#generation) this.#policies.set(name, policy);
    return policy;
  }
}
