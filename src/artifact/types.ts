// What an artifact is: a deterministic tar whose sha256 is its id, with a manifest listing every file's digest.
import type {ModelSignature} from '../model/signature.js'
import type {ResolvedPipeline} from '../pipeline/spec.js'
import type {GitInfo} from '../system/git.js'

export const MANIFEST_FILE = 'manifest.json'

export interface ManifestFile {
  /** Path inside the artifact, POSIX separators, no leading slash, no `..`. */
  path: string
  sha256: string
  size: number
}

/** Drift baseline computed from the reference data (see src/monitor/profile.ts). */
export interface ReferenceProfile {
  rows: number
  source: string
  features: Record<string, FeatureProfile>
  predictions?: Record<string, FeatureProfile>
}

export interface NumericProfile {
  kind: 'numeric'
  count: number
  missing: number
  missingRate: number
  mean: number
  std: number
  min: number
  max: number
  /** Quantiles at 0, 0.1, …, 1: also the bin edges for PSI. */
  quantiles: number[]
  /** Histogram over `edges` (equal-width between min and max). */
  histogram: {edges: number[]; counts: number[]}
  /** A bounded sample of values, sorted, for KS tests against live data. */
  sample: number[]
}

export interface CategoricalProfile {
  kind: 'categorical'
  count: number
  missing: number
  missingRate: number
  /** Frequency of each category; rare ones fold into `__other__`. */
  frequencies: Record<string, number>
}

export type FeatureProfile = NumericProfile | CategoricalProfile

export interface ArtifactManifest {
  schemaVersion: 1
  name: string
  version: string
  description?: string
  model: {
    path: string
    sha256: string
    size: number
    signature: ModelSignature
    /** Tensor outputs fetched from onnxruntime-node (non-tensor outputs left out). */
    fetches: string[]
    warnings: string[]
  }
  pipeline?: {path: string; spec: ResolvedPipeline; module?: string}
  golden?: {path: string; count: number}
  profile?: ReferenceProfile
  git?: GitInfo
  tool: {name: 'mlops'; version: string}
  runtime: {onnxruntime: string; node: string}
  files: ManifestFile[]
}

/** One artifact in the store. */
export interface ArtifactRecord {
  name: string
  version: string
  /** `sha256:<hex>` of the tar archive: the artifact id. */
  digest: string
  size: number
  /** When it entered this store (not part of the archive, so not part of the digest). */
  storedAt: string
  path: string
  git?: GitInfo
}

/** An artifact unpacked into a folder, every file checked against the manifest. */
export interface OpenedArtifact {
  record: ArtifactRecord
  manifest: ArtifactManifest
  dir: string
  modelPath: string
}
