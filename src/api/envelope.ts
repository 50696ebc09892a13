import { randomUUID } from "node:crypto";

/**
 * Vault's response envelope. Existing Vault clients read `data`, `auth` and
 * `warnings` from this shape, so every successful JSON response uses it.
 */
export interface VaultResponse<T> {
  request_id: string;
  lease_id: string;
  renewable: boolean;
  lease_duration: number;
  data: T | null;
  wrap_info: null;
  warnings: string[] | null;
  auth: unknown;
  mount_type?: string;
}

export interface EnvelopeOptions {
  requestId?: string;
  warnings?: string[];
  auth?: unknown;
  mountType?: string;
}

/** Wraps response data in Vault's envelope. */
export function envelope<T>(data: T | null, options: EnvelopeOptions = {}): VaultResponse<T> {
  const response: VaultResponse<T> = {
    request_id: options.requestId ?? randomUUID(),
    lease_id: "",
    renewable: false,
    lease_duration: 0,
    data,
    wrap_info: null,
    warnings: options.warnings && options.warnings.length > 0 ? options.warnings : null,
    auth: options.auth ?? null,
  };
  if (options.mountType !== undefined) response.mount_type = options.mountType;
  return response;
}
