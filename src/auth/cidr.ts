import { BlockList, isIP } from "node:net";
import { invalidField } from "../errors.ts";

/** The most CIDR blocks one list may hold. */
export const MAX_CIDR_BLOCKS = 64;

interface CidrBlock {
  address: string;
  prefix: number;
  family: "ipv4" | "ipv6";
}

function parseBlock(text: string, field: string): CidrBlock {
  const invalid = () =>
    invalidField(
      field,
      `"${field}" contains ${JSON.stringify(text.slice(0, 64))}, which is not an IP address or a CIDR block such as 10.0.0.0/8`,
    );
  const [address = "", prefixText, extra] = text.split("/");
  const version = isIP(address);
  if (version === 0 || extra !== undefined) throw invalid();
  const bits = version === 4 ? 32 : 128;
  let prefix = bits;
  if (prefixText !== undefined) {
    if (!/^\d{1,3}$/.test(prefixText)) throw invalid();
    prefix = Number(prefixText);
    if (prefix > bits) throw invalid();
  }
  return { address, prefix, family: version === 4 ? "ipv4" : "ipv6" };
}

/**
 * Parses a list of CIDR blocks as Vault accepts it: an array, a
 * comma-separated string, or an array of comma-separated strings. A bare
 * address is a single-address block. Host bits below the prefix are
 * allowed and ignored, as Go's `net.ParseCIDR` does. Returns the blocks as
 * written, trimmed and without duplicates. Throws `invalid_field` on `field`.
 */
export function parseCidrList(
  value: string | readonly string[] | undefined,
  field: string,
): string[] {
  if (value === undefined) return [];
  const items = (typeof value === "string" ? [value] : value)
    .flatMap((item) => item.split(","))
    .map((item) => item.trim())
    .filter((item) => item !== "");
  const unique = [...new Set(items)];
  if (unique.length > MAX_CIDR_BLOCKS) {
    throw invalidField(field, `"${field}" may list at most ${MAX_CIDR_BLOCKS} CIDR blocks`);
  }
  for (const item of unique) parseBlock(item, field);
  return unique;
}

/**
 * Reports whether `address` lies in one of `cidrs` (already validated by
 * `parseCidrList`). Node's BlockList matches an IPv4 address against an
 * IPv4-mapped IPv6 block and the reverse, so `::ffff:10.0.0.1` from a
 * dual-stack socket matches `10.0.0.0/8`. An address that is not an IP
 * address matches nothing.
 */
export function addressInCidrs(address: string, cidrs: readonly string[]): boolean {
  const version = isIP(address);
  if (version === 0) return false;
  const list = new BlockList();
  for (const cidr of cidrs) {
    const block = parseBlock(cidr, "cidr");
    list.addSubnet(block.address, block.prefix, block.family);
  }
  return list.check(address, version === 4 ? "ipv4" : "ipv6");
}

/**
 * Reports whether every block of `inner` lies inside one block of `outer`,
 * as Vault requires of a secret ID's CIDR list against its role's.
 */
export function cidrsWithin(inner: readonly string[], outer: readonly string[]): boolean {
  const outerBlocks = outer.map((cidr) => parseBlock(cidr, "cidr"));
  return inner.every((cidr) => {
    const block = parseBlock(cidr, "cidr");
    return outerBlocks.some((candidate) => {
      if (candidate.family !== block.family || candidate.prefix > block.prefix) return false;
      const list = new BlockList();
      list.addSubnet(candidate.address, candidate.prefix, candidate.family);
      // The inner block shares its first `block.prefix` bits with its own
      // address, and the outer prefix is no longer, so checking that
      // address decides containment.
      return list.check(block.address, block.family);
    });
  });
}
