import type { HsmToken } from "../../hsm/token.ts";
import type { KmipItem, StructureItem } from "../item.ts";
import type { KmipPeerCertificate } from "./identity.ts";
import type { KmipTransaction } from "./object-store.ts";

/** The KMIP protocol version of a request; responses carry the same one. */
export interface ProtocolVersion {
  readonly major: number;
  readonly minor: number;
}

/** The client a request message came from, for authentication and the audit log. */
export interface KmipClient {
  /** The client certificate's subject CN; absent in process. */
  readonly identity?: string | undefined;
  /** The client's IP address; absent in process. */
  readonly remoteAddress?: string | undefined;
  /** The client certificate, which a dispatcher with an identity resolver maps to a role. */
  readonly certificate?: KmipPeerCertificate | undefined;
}

/** The request state an operation uses besides its payload. */
export interface OperationContext {
  readonly version: ProtocolVersion;
  /** The request message's reads and staged writes of KMIP objects. */
  readonly store: KmipTransaction;
  /**
   * The key that distinguishes clients: the SHA-256 fingerprint of the client
   * certificate, or the identity the caller gave without one (undefined
   * in process).
   */
  readonly identity: string | undefined;
  /** The request's time, in seconds since the Unix epoch. */
  readonly now: bigint;
  /** The token that non-extractable keys are generated in; absent when the server has none. */
  readonly hsm?: HsmToken | undefined;
  /**
   * Throws Permission Denied unless the client's policies allow
   * `operation` on the object `uid`, for an operation that uses a second
   * object (such as the wrapping key of a Get). Absent when no policies
   * apply.
   */
  readonly authorize?: ((operation: string, uid: string | undefined) => void) | undefined;
  /**
   * Returns whether the client's policies allow `operation` on the object
   * `uid`, without logging a denial: Locate uses it to leave out the
   * objects the client may not read. Absent when no policies apply.
   */
  readonly permits?: ((operation: string, uid: string | undefined) => boolean) | undefined;
  /**
   * The ID Placeholder of the batch: the Unique Identifier the previous
   * batch item returned, used when an operation omits its own.
   */
  idPlaceholder: string | undefined;
}

/** One operation: reads its request payload and returns the response payload's items. */
export type OperationHandler = (
  payload: StructureItem,
  context: OperationContext,
) => Promise<readonly KmipItem[]>;

/** True when the version is at least major.minor. */
export function atLeast(version: ProtocolVersion, major: number, minor: number): boolean {
  return version.major > major || (version.major === major && version.minor >= minor);
}

/** The protocol versions the server speaks, newest first (the Discover Versions order). */
export const SUPPORTED_VERSIONS: readonly ProtocolVersion[] = [
  { major: 2, minor: 1 },
  { major: 2, minor: 0 },
  { major: 1, minor: 4 },
  { major: 1, minor: 3 },
  { major: 1, minor: 2 },
  { major: 1, minor: 1 },
  { major: 1, minor: 0 },
];
