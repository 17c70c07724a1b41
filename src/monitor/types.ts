// The shapes of a `mlops monitor` run, apart from the run itself: what it is asked (MonitorOptions) and what it reports
// (MonitorResult, which the reports render and schemas/results/monitor.schema.json describes).
import type {ReferenceProfile} from '../artifact/types.js'
import type {DriftSettings} from './config.js'
import type {ColumnDrift, DriftVerdict} from './drift.js'

export interface MonitorOptions {
  /** Project directory (mlops.yaml); optional when `baseline` is given. */
  dir: string
  /** Artifact ref (version, name@version, digest, .tar path); default the newest version. */
  ref?: string
  /** A baseline profile, or the path of one as JSON: instead of the artifact's. */
  baseline?: ReferenceProfile | string
  /** A CSV or JSONL batch of records; without it, the request log over `since`. */
  input?: string
  /** A duration such as 24h: how far back the request log is read. Default monitor.since, else 24h. */
  since?: string
  /** The request log; default serving.request_log.path. */
  log?: string
  junit?: string
  html?: string
  /** Refuse (leave unscored) records of --input with columns the model does not read, rather than score them without. */
  strict?: boolean
  now?: () => Date
}

export interface MonitorResult {
  verdict: DriftVerdict
  drifted: string[]
  artifact?: {name: string; version: string; digest: string}
  baseline: {source: string; rows: number}
  current: {
    source: 'input' | 'request_log'
    files: string[]
    records: number
    window?: {since: string; from: string; to: string}
    skipped: Record<string, number>
    /** Columns of --input the model does not read, left out of the records it scored (not with strict). */
    ignoredColumns?: string[]
  }
  settings: Pick<DriftSettings, 'minSamples' | 'largeSample' | 'thresholds'>
  features: ColumnDrift[]
  predictions: ColumnDrift[]
  reports: {junit?: string; html?: string}
}
