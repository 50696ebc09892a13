import { createHash } from "node:crypto";
import { KeywardError } from "../errors.ts";
import type {
  ArtifactContent,
  DeviceArtifact,
  DeviceArtifactSource,
  DeviceRef,
} from "./artifacts.ts";
import { canonicalJson } from "./canonical-json.ts";
import { sealSecret } from "./sealed.ts";
import type { EncryptionJwk } from "./types.ts";

/** One content of an artifact as the device API sends it, secrets sealed. */
export interface ContentView {
  version: number;
  fields: Record<string, unknown>;
  secrets: Record<string, string>;
}

/** An artifact as `GET /v1/devices/self/state` sends it. */
export interface ArtifactView extends ContentView {
  id: string;
  kind: string;
  next: (ContentView & { activate_at: string }) | null;
}

/** Orders artifacts by id in UTF-16 code units, the same on every server. */
function compareIds(a: DeviceArtifact, b: DeviceArtifact): number {
  if (a.id === b.id) return 0;
  return a.id < b.id ? -1 : 1;
}

/**
 * Returns the artifacts `device` must hold, from every source, in order of
 * id. Throws `internal` when two sources return the same id.
 */
export async function collectArtifacts(
  sources: readonly DeviceArtifactSource[],
  device: DeviceRef,
): Promise<DeviceArtifact[]> {
  const artifacts: DeviceArtifact[] = [];
  for (const source of sources) artifacts.push(...(await source.artifactsFor(device)));
  artifacts.sort(compareIds);
  for (let index = 1; index < artifacts.length; index++) {
    if (artifacts[index]!.id === artifacts[index - 1]!.id) {
      throw new KeywardError("internal", "internal error", {
        details: { reason: "two artifact sources returned the same id", id: artifacts[index]!.id },
      });
    }
  }
  return artifacts;
}

/**
 * Returns the state's etag: the hex SHA-256 of the canonical JSON of the
 * artifacts without their secrets. Sealing is randomised, so the secrets
 * are left out and the versions decide: a source raises the version
 * whenever a secret changes.
 */
export function stateEtag(artifacts: readonly DeviceArtifact[]): string {
  const withoutSecrets = artifacts.map((artifact) => ({
    id: artifact.id,
    kind: artifact.kind,
    version: artifact.version,
    fields: artifact.fields,
    next: artifact.next
      ? {
          version: artifact.next.version,
          activate_at: artifact.next.activateAt,
          fields: artifact.next.fields,
        }
      : null,
  }));
  return createHash("sha256").update(canonicalJson(withoutSecrets), "utf8").digest("hex");
}

async function sealContent(
  artifactId: string,
  content: ArtifactContent,
  key: EncryptionJwk,
): Promise<ContentView> {
  const secrets: Record<string, string> = {};
  for (const [field, plaintext] of Object.entries(content.secrets)) {
    const sealed = await sealSecret(
      key,
      { artifact: artifactId, version: content.version, field },
      plaintext,
    );
    Object.defineProperty(secrets, field, { value: sealed, enumerable: true, writable: true });
  }
  return { version: content.version, fields: content.fields, secrets };
}

/** Returns the artifacts as the device API sends them, each secret sealed to `key`. */
export async function sealArtifacts(
  artifacts: readonly DeviceArtifact[],
  key: EncryptionJwk,
): Promise<ArtifactView[]> {
  const views: ArtifactView[] = [];
  for (const artifact of artifacts) {
    const current = await sealContent(artifact.id, artifact, key);
    const next = artifact.next
      ? {
          ...(await sealContent(artifact.id, artifact.next, key)),
          activate_at: artifact.next.activateAt,
        }
      : null;
    views.push({ id: artifact.id, kind: artifact.kind, ...current, next });
  }
  return views;
}
