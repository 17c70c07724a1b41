// An artifact as an OCI image manifest in the CNCF ModelPack layout (github.com/modelpack/model-spec, docs/spec.md),
// and the checks a pulled manifest must pass before anything it names is fetched.
import {createHash} from 'node:crypto'

import {canonicalJson} from '../artifact/archive.js'
import type {ArtifactManifest} from '../artifact/types.js'
import {MlopsError} from '../errors.js'

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json'
export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json'
/** The ModelPack names, as the spec has them since it moved from vnd.cnai.* to vnd.cncf.*. */
export const MODEL_ARTIFACT_TYPE = 'application/vnd.cncf.model.manifest.v1+json'
export const MODEL_CONFIG = 'application/vnd.cncf.model.config.v1+json'
export const MODEL_WEIGHT_TAR = 'application/vnd.cncf.model.weight.v1.tar'
/** --as-image: what every registry takes, for those that refuse artifact types. */
export const IMAGE_CONFIG = 'application/vnd.oci.image.config.v1+json'
export const IMAGE_LAYER_TAR = 'application/vnd.oci.image.layer.v1.tar'
/** The artifact's own id on the manifest: the same digest as its layer, said in mlops' words. */
export const ARTIFACT_DIGEST_ANNOTATION = 'dev.mlops.artifact.digest'
/** What `mlops artifacts show` says about the artifact, readable with `skopeo inspect --raw` without fetching a blob. */
export const ARTIFACT_SUMMARY_ANNOTATION = 'dev.mlops.artifact.manifest'

export interface Descriptor {
  mediaType: string
  digest: string
  size: number
  annotations?: Record<string, string>
}

export interface ImageManifest {
  schemaVersion: 2
  mediaType: string
  artifactType?: string
  config: Descriptor
  layers: Descriptor[]
  annotations?: Record<string, string>
}

export interface Blob {
  descriptor: Descriptor
  /** The bytes, for small blobs built here; the archive is read from its file instead. */
  bytes?: Buffer
}

export interface BuiltManifest {
  manifest: ImageManifest
  bytes: Buffer
  digest: string
  config: Blob
  layer: Blob
}

const DIGEST = /^sha256:[0-9a-f]{64}$/

export function sha256Digest(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`
}

/**
 * The manifest, config and layer descriptors for an archive. Only the artifact's own content goes in (no clock, no
 * host), and JSON keys are sorted, so the same artifact always gives the same manifest digest.
 */
export function buildManifest(
  artifact: ArtifactManifest,
  archive: {digest: string; size: number},
  asImage = false,
): BuiltManifest {
  const configBytes = Buffer.from(
    canonicalJson(asImage ? imageConfig(archive.digest) : modelConfig(artifact, archive.digest)),
  )
  const file = `${artifact.name}-${artifact.version}.tar`
  const layer: Descriptor = {
    mediaType: asImage ? IMAGE_LAYER_TAR : MODEL_WEIGHT_TAR,
    digest: archive.digest,
    size: archive.size,
    annotations: {'org.cncf.model.filepath': file, 'org.opencontainers.image.title': file},
  }
  const config: Descriptor = {
    mediaType: asImage ? IMAGE_CONFIG : MODEL_CONFIG,
    digest: sha256Digest(configBytes),
    size: configBytes.length,
  }
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    ...(asImage ? {} : {artifactType: MODEL_ARTIFACT_TYPE}),
    config,
    layers: [layer],
    annotations: annotations(artifact, archive.digest),
  }
  const bytes = Buffer.from(canonicalJson(manifest))
  return {
    manifest,
    bytes,
    digest: sha256Digest(bytes),
    config: {descriptor: config, bytes: configBytes},
    layer: {descriptor: layer},
  }
}

function annotations(artifact: ArtifactManifest, digest: string): Record<string, string> {
  const revision = artifact.git?.commit
  return {
    'org.opencontainers.image.title': artifact.name,
    'org.opencontainers.image.version': artifact.version,
    ...(revision ? {'org.opencontainers.image.revision': revision} : {}),
    ...(artifact.description ? {'org.opencontainers.image.description': artifact.description} : {}),
    [ARTIFACT_DIGEST_ANNOTATION]: digest,
    // Sorted keys on one line: the same artifact, however its manifest was read, gives the same annotation.
    [ARTIFACT_SUMMARY_ANNOTATION]: JSON.stringify(JSON.parse(canonicalJson(summary(artifact)))),
  }
}

/** The mlops manifest without the file list and the reference profile: who it is, what it takes, how it was made. */
export function summary(artifact: ArtifactManifest): Record<string, unknown> {
  const pipeline = artifact.pipeline
    ? artifact.files.find((f) => f.path === artifact.pipeline?.path)?.sha256
    : undefined
  const git = artifact.git ? {...artifact.git, remote: withoutUserinfo(artifact.git.remote)} : undefined
  return {
    name: artifact.name,
    version: artifact.version,
    model: {path: artifact.model.path, sha256: artifact.model.sha256, size: artifact.model.size},
    signature: artifact.model.signature,
    ...(pipeline ? {pipeline: {sha256: pipeline}} : {}),
    ...(git ? {git} : {}),
    tool: artifact.tool,
    runtime: artifact.runtime,
  }
}

/** A remote such as https://user:token@host/repo.git must not reach a registry: keep the host and path. */
function withoutUserinfo(remote: string | undefined): string | undefined {
  if (!remote) return undefined
  try {
    const url = new URL(remote)
    url.username = ''
    url.password = ''
    return url.toString()
  } catch {
    return remote.replace(/^[^@/]+@/, '')
  }
}

/** The ModelPack config (docs/config.md): its schema takes no other keys, so mlops' own go in the annotations. */
function modelConfig(artifact: ArtifactManifest, digest: string): Record<string, unknown> {
  return {
    descriptor: {
      name: artifact.name,
      version: artifact.version,
      ...(artifact.description ? {description: artifact.description} : {}),
      ...(artifact.git?.commit ? {revision: artifact.git.commit} : {}),
    },
    config: {format: 'onnx'},
    modelfs: {type: 'layers', diffIds: [digest]},
  }
}

/** The least image config registries accept: no clock, no platform claims beyond what the layer is. */
function imageConfig(digest: string): Record<string, unknown> {
  return {architecture: 'amd64', os: 'linux', rootfs: {type: 'layers', diff_ids: [digest]}, config: {}}
}

export interface PulledManifest {
  manifest: ImageManifest
  layer: Descriptor
  config: Descriptor
}

/** Checks a manifest's bytes are one of ours before any blob is fetched; the error names what it is instead. */
export function readManifest(bytes: Buffer, where: string, maxLayerBytes: number): PulledManifest {
  let value: unknown
  try {
    value = JSON.parse(bytes.toString('utf8'))
  } catch {
    throw notOurs(where, 'its manifest is not JSON')
  }
  const m = value as Partial<ImageManifest> & {manifests?: unknown}
  if (m === null || typeof m !== 'object') throw notOurs(where, 'its manifest is not a JSON object')
  if (m.mediaType === OCI_INDEX || Array.isArray(m.manifests))
    throw notOurs(where, 'it is an image index (several manifests), not one artifact')
  if (
    m.schemaVersion !== 2 ||
    (m.mediaType !== undefined && m.mediaType !== OCI_MANIFEST && m.mediaType !== DOCKER_MANIFEST)
  )
    throw notOurs(where, `its manifest is ${String(m.mediaType ?? `schema version ${String(m.schemaVersion)}`)}`)
  const config = descriptor(m.config, where, 'config', 1024 * 1024)
  if (!Array.isArray(m.layers)) throw notOurs(where, 'its manifest has no layers')
  const layers = m.layers.map((l, i) => descriptor(l, where, `layers[${i}]`, maxLayerBytes))
  const ours = layers.filter((l) => l.mediaType === MODEL_WEIGHT_TAR || l.mediaType === IMAGE_LAYER_TAR)
  if (ours.length !== 1 || layers.length !== 1)
    throw notOurs(
      where,
      `it has ${layers.length} layer(s) of ${[...new Set(layers.map((l) => l.mediaType))].join(', ') || 'no type'}; an mlops artifact is one uncompressed tar layer`,
    )
  const said = m.annotations?.[ARTIFACT_DIGEST_ANNOTATION]
  if (said !== undefined && said !== ours[0].digest)
    throw new MlopsError(
      'REGISTRY_DIGEST_MISMATCH',
      `${where}: the manifest names artifact ${said} but its layer is ${ours[0].digest}`,
      {
        hint: 'Push the artifact again with "mlops artifacts push"; this manifest was not written by it.',
      },
    )
  return {manifest: m as ImageManifest, layer: ours[0], config}
}

function descriptor(value: unknown, where: string, field: string, max: number): Descriptor {
  const d = value as Partial<Descriptor> | null
  if (d === null || typeof d !== 'object' || typeof d.mediaType !== 'string' || typeof d.digest !== 'string')
    throw notOurs(where, `${field} is not a descriptor (mediaType, digest, size)`)
  if (!DIGEST.test(d.digest)) throw notOurs(where, `${field}.digest is not a sha256 digest`)
  if (typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0)
    throw notOurs(where, `${field}.size is not a byte count`)
  if (d.size > max)
    throw new MlopsError(
      'REGISTRY_RESPONSE_TOO_LARGE',
      `${where}: ${field} is ${d.size} bytes, more than the ${max} allowed`,
      {
        hint: 'Raise MLOPS_REGISTRY_MAX_BYTES if this artifact really is that large.',
      },
    )
  return {
    mediaType: d.mediaType,
    digest: d.digest,
    size: d.size,
    ...(d.annotations ? {annotations: d.annotations} : {}),
  }
}

function notOurs(where: string, why: string): MlopsError {
  return new MlopsError('REGISTRY_NOT_AN_ARTIFACT', `${where} is not an mlops artifact: ${why}`, {
    hint: 'Pull a reference that "mlops artifacts push" wrote (its manifest has one ModelPack weight tar layer).',
  })
}
