import { lookup } from "node:dns/promises";
import { BlockList, isIP } from "node:net";
import type { AcmeConfig } from "../config.ts";
import { parseCidr } from "../config.ts";
import { ValidationFailure } from "./failure.ts";
import { createResolver } from "./resolver.ts";

/**
 * Address ranges that are not public unicast (RFC 6890 and the IANA
 * special-purpose registries): loopback, private, link-local, shared,
 * documentation, benchmarking, multicast and reserved ranges. Without
 * `allowed_networks`, the validator connects to none of them.
 */
const NON_PUBLIC_RANGES = [
  "0.0.0.0/8",
  "10.0.0.0/8",
  "100.64.0.0/10",
  "127.0.0.0/8",
  "169.254.0.0/16",
  "172.16.0.0/12",
  "192.0.0.0/24",
  "192.0.2.0/24",
  "192.168.0.0/16",
  "198.18.0.0/15",
  "198.51.100.0/24",
  "203.0.113.0/24",
  "224.0.0.0/4",
  "240.0.0.0/4",
  "::/128",
  "::1/128",
  "64:ff9b::/96",
  "100::/64",
  "2001::/23",
  "2001:db8::/32",
  "fc00::/7",
  "fe80::/10",
  "ff00::/8",
];

function blockListOf(cidrs: readonly string[]): BlockList {
  const list = new BlockList();
  for (const cidr of cidrs) {
    const parsed = parseCidr(cidr);
    if (parsed) list.addSubnet(parsed.address, parsed.prefix, parsed.family);
  }
  return list;
}

const nonPublic = blockListOf(NON_PUBLIC_RANGES);

/** Returns the IPv4 address inside an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`), or the address itself. */
function unmapped(address: string): string {
  const match = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return match ? match[1]! : address;
}

/**
 * Decides which addresses the validator may connect to: those inside
 * `allowed_networks` when it is set, otherwise only public unicast
 * addresses.
 */
export class AddressPolicy {
  readonly #allowed: BlockList | undefined;

  constructor(config: AcmeConfig) {
    this.#allowed =
      config.allowed_networks.length > 0 ? blockListOf(config.allowed_networks) : undefined;
  }

  allows(address: string): boolean {
    const plain = unmapped(address);
    const family = isIP(plain) === 4 ? "ipv4" : "ipv6";
    if (this.#allowed) return this.#allowed.check(plain, family);
    return !nonPublic.check(plain, family);
  }
}

/** Returns the address the `hosts` setting maps a name to: an exact entry, else the closest `*.<domain>` entry. */
export function hostsEntry(hosts: Record<string, string>, name: string): string | undefined {
  const exact = hosts[name];
  if (exact !== undefined) return exact;
  const labels = name.split(".");
  for (let index = 1; index < labels.length; index++) {
    const entry = hosts[`*.${labels.slice(index).join(".")}`];
    if (entry !== undefined) return entry;
  }
  return undefined;
}

/**
 * Resolves the host of a validation request to the addresses the
 * validator may connect to: an IP literal as it is, a name through the
 * `hosts` setting, else through DNS (`dns_resolver`, or the system's
 * resolver with its hosts file). Throws a `dns` failure when the name
 * does not resolve and a `connection` failure when no address is allowed.
 */
export async function resolveAllowed(
  host: string,
  config: AcmeConfig,
  timeoutMs: number,
): Promise<string[]> {
  let addresses: string[];
  if (isIP(host) !== 0) addresses = [host];
  else {
    const mapped = hostsEntry(config.hosts, host);
    if (mapped !== undefined) addresses = [mapped];
    else addresses = await resolveName(host, config, timeoutMs);
  }
  const policy = new AddressPolicy(config);
  const allowed = addresses.filter((address) => policy.allows(address));
  if (allowed.length === 0) {
    throw new ValidationFailure(
      "connection",
      `${host} resolves only to addresses outside the validator's allowed networks`,
    );
  }
  return allowed;
}

async function resolveName(host: string, config: AcmeConfig, timeoutMs: number): Promise<string[]> {
  try {
    if (config.dns_resolver === "") {
      return (await lookup(host, { all: true, verbatim: true })).map((entry) => entry.address);
    }
    const resolver = createResolver(config, timeoutMs);
    const results = await Promise.allSettled([resolver.resolve4(host), resolver.resolve6(host)]);
    const addresses = results.flatMap((result) =>
      result.status === "fulfilled" ? result.value : [],
    );
    if (addresses.length === 0) throw new Error("no A or AAAA records");
    return addresses;
  } catch (error) {
    throw new ValidationFailure("dns", `DNS lookup of ${host} failed`, error);
  }
}
