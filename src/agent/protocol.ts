/**
 * The device API's JSON shapes as the agent receives them, with checks that
 * turn a malformed response into an error instead of a crash later on.
 */

/** One state of an artifact, the content the agent installs at one version. */
export interface ArtifactContent {
  version: number;
  /** Fields that contain no secret. */
  fields: Record<string, unknown>;
  /** Secret fields, each a JWE compact serialisation encrypted to the device's encryption key. */
  secrets: Record<string, string>;
}

/** An artifact in the device's state, where `next` is content announced for `activate_at`. */
export interface Artifact extends ArtifactContent {
  id: string;
  kind: string;
  next: (ArtifactContent & { activate_at: string }) | null;
}

/** Response body of `GET /v1/devices/self/state`. */
export interface DeviceState {
  device: string;
  device_id: string;
  etag: string;
  artifacts: Artifact[];
}

/** Response body of enrolment and renewal. */
export interface CertificateResponse {
  device: string;
  device_id: string;
  certificate: string;
  ca_chain: string[];
  serial_number: string;
  /** Unix seconds. */
  expiration: number;
  /** Unix seconds: when the agent should renew, two thirds into the lifetime. */
  renew_after: number;
}

/** Response body of `POST /v1/devices/self/wireguard/key`. */
export interface WireguardKeyResponse {
  key_version: number;
  activate_at: string;
}

/** A response body that does not have the shape the contract defines. */
export class ProtocolError extends Error {
  override readonly name = "ProtocolError";
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function expect(condition: boolean, what: string): asserts condition {
  if (!condition) throw new ProtocolError(`the server sent an invalid response: ${what}`);
}

function isStringRecord(value: unknown): value is Record<string, string> {
  return isObject(value) && Object.values(value).every((item) => typeof item === "string");
}

function checkContent(value: unknown, where: string): ArtifactContent {
  expect(isObject(value), `${where} is not an object`);
  expect(
    Number.isSafeInteger(value.version) && (value.version as number) >= 0,
    `${where}.version is not a non-negative integer`,
  );
  expect(isObject(value.fields), `${where}.fields is not an object`);
  expect(isStringRecord(value.secrets ?? {}), `${where}.secrets is not an object of strings`);
  return {
    version: value.version as number,
    fields: value.fields,
    secrets: (value.secrets ?? {}) as Record<string, string>,
  };
}

function checkArtifact(value: unknown, index: number): Artifact {
  const where = `artifacts[${index}]`;
  expect(isObject(value), `${where} is not an object`);
  expect(typeof value.id === "string" && value.id !== "", `${where}.id is not a string`);
  expect(typeof value.kind === "string", `${where}.kind is not a string`);
  const content = checkContent(value, where);
  let next: Artifact["next"] = null;
  if (value.next !== null && value.next !== undefined) {
    const nextContent = checkContent(value.next, `${where}.next`);
    const activateAt = (value.next as Record<string, unknown>).activate_at;
    expect(
      typeof activateAt === "string" && !Number.isNaN(Date.parse(activateAt)),
      `${where}.next.activate_at is not an RFC 3339 time`,
    );
    next = { ...nextContent, activate_at: activateAt };
  }
  return { id: value.id, kind: value.kind, ...content, next };
}

/** Checks the body of a 200 response to the state request. */
export function parseDeviceState(body: unknown): DeviceState {
  expect(isObject(body), "the state is not an object");
  expect(typeof body.etag === "string" && body.etag !== "", "etag is not a string");
  expect(typeof body.device === "string", "device is not a string");
  expect(Array.isArray(body.artifacts), "artifacts is not a list");
  return {
    device: body.device,
    device_id: typeof body.device_id === "string" ? body.device_id : "",
    etag: body.etag,
    artifacts: body.artifacts.map(checkArtifact),
  };
}

/** Checks the body of an enrolment or renewal response. */
export function parseCertificateResponse(body: unknown): CertificateResponse {
  expect(isObject(body), "the response is not an object");
  expect(typeof body.certificate === "string", "certificate is not a string");
  expect(
    Array.isArray(body.ca_chain) && body.ca_chain.every((item) => typeof item === "string"),
    "ca_chain is not a list of strings",
  );
  expect(typeof body.serial_number === "string", "serial_number is not a string");
  expect(Number.isFinite(body.expiration), "expiration is not a number");
  expect(Number.isFinite(body.renew_after), "renew_after is not a number");
  return {
    device: typeof body.device === "string" ? body.device : "",
    device_id: typeof body.device_id === "string" ? body.device_id : "",
    certificate: body.certificate,
    ca_chain: body.ca_chain as string[],
    serial_number: body.serial_number,
    expiration: body.expiration as number,
    renew_after: body.renew_after as number,
  };
}

/** Checks the body of the WireGuard key registration response. */
export function parseWireguardKeyResponse(body: unknown): WireguardKeyResponse {
  expect(isObject(body), "the response is not an object");
  expect(Number.isSafeInteger(body.key_version), "key_version is not an integer");
  expect(typeof body.activate_at === "string", "activate_at is not a string");
  return { key_version: body.key_version as number, activate_at: body.activate_at };
}

/**
 * Returns the content the agent should install at `now`: `next` once its
 * activation time has passed, the current content before. Choosing by time
 * alone keeps an agent whose clock runs slightly ahead of the server's from
 * switching back and forth around the activation.
 */
export function contentAt(artifact: Artifact, now: number): ArtifactContent {
  if (artifact.next !== null && Date.parse(artifact.next.activate_at) <= now) return artifact.next;
  return artifact;
}
