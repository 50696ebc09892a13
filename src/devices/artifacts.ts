/**
 * The contract between the device registry and the engines whose
 * credentials reach devices. An engine implements `DeviceArtifactSource`,
 * and the registry requests from every source for a device's artifacts, encrypts their
 * secret fields to the device's own key and serves them to its agent.
 */

/** The identity of an enrolled device, as sources see it. */
export interface DeviceRef {
  /** The device's name, unique per installation. Engines bind credentials to it (`device_id`). */
  name: string;
  /** Random identifier fixed at creation, which survives re-enrolment. */
  id: string;
  groups: readonly string[];
  tags: Readonly<Record<string, string>>;
}

/** One state of an artifact: what the agent installs at one version. */
export interface ArtifactContent {
  /** Number that rises whenever the content changes. The agent reports the version it applied. */
  version: number;
  /** Fields sent as they are. They must contain no secret. */
  fields: Record<string, unknown>;
  /** Secret fields: each value is encrypted to the device's key before it leaves the server. */
  secrets: Record<string, string>;
}

/**
 * A credential the agent keeps installed. `id` is stable for the life of
 * the credential, such as `wireguard:<mount>:<network>:<peer>` or
 * `secret:<name>`. `next`, when present, is content the agent installs at
 * `activateAt` and not before: a rotation announced ahead of time.
 */
export interface DeviceArtifact extends ArtifactContent {
  id: string;
  kind: string;
  next?: ArtifactContent & { activateAt: string };
}

/** An engine that delivers credentials to devices. */
export interface DeviceArtifactSource {
  /** The artifact kind this source produces, such as `wireguard`. */
  readonly kind: string;
  /** Returns the artifacts `device` must have now. */
  artifactsFor(device: DeviceRef): Promise<DeviceArtifact[]>;
  /**
   * Called when `device` is revoked: the source removes it from every
   * credential it shares with others and rotates what it held, so that the
   * revoked device can no longer use any of it.
   */
  deviceRevoked(device: DeviceRef): Promise<void>;
}

/** Notifier that wakes agents waiting for changes. Sources call it after every change to the artifacts of devices. */
export interface DeviceChangeNotifier {
  /** Reports that the named devices' artifacts may have changed. */
  changed(deviceNames: readonly string[]): void;
}

/** Report of what an agent applied. The registry records it, and engines read it for rollout status. */
export interface AppliedVersion {
  version: number;
  appliedAt: string;
}

/** Reader of applied versions, which the registry implements. */
export interface AppliedVersionReader {
  appliedVersion(deviceName: string, artifactId: string): Promise<AppliedVersion | undefined>;
}
