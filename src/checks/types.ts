// The shapes of a `mlops test` run, apart from the run itself: what it is asked (TestOptions) and what it reports
// (TestResult, which the reports render and schemas/results/test.schema.json describes).
import type {CheckName, CheckOverrides, CheckSettings} from './config.js'
import type {Gate, GateVerdict} from './gates.js'
import type {FindMaxResult} from './load/find-max.js'
import type {LoadPhase} from './load/run.js'
import type {RegressionResult} from './regression.js'
import type {CaseResult} from './robustness/run.js'

export interface TestOptions {
  dir: string
  /** The artifact under test (version, name@version, digest or .tar); default the newest. */
  ref?: string
  /** Checks to run; default all. */
  only?: CheckName[]
  /** A server already running the artifact; without it the run starts `mlops serve` itself. */
  url?: string
  /** The version in production, served the same way, for regression against it. */
  baseline?: string
  baselineUrl?: string
  findMax?: boolean
  overrides?: CheckOverrides
  junit?: string
  html?: string
  /** Environment of servers this run starts (fault injection in tests). */
  serverEnv?: Record<string, string>
  onProgress?: (line: string) => void
  now?: () => Date
}

export interface LabelledPhase extends LoadPhase {
  /** `load`, or the latency gate rate it was run for, e.g. `200 rps`. */
  label: string
}

export interface RobustnessSummary {
  seed: number
  cases: number
  run: number
  passed: number
  failed: number
  /** 5xx answers that did not come back on the same request: listed, not failed (see load's error rate). */
  intermittent: number
  notRun: number
  crashed: boolean
  healthyAfter: boolean
  byKind: Record<string, {total: number; failed: number}>
  failures: CaseResult[]
}

export interface TestResult {
  verdict: GateVerdict
  /** True when every gate passed; the exit code is 0 only then. */
  passed: boolean
  artifact: {name: string; version: string; digest: string}
  server: {url: string; started: boolean}
  baseline?: {url: string; started: boolean; version?: string}
  checks: CheckName[]
  settings: CheckSettings
  gates: Gate[]
  load?: {requests: string; phases: LabelledPhase[]; findMax?: FindMaxResult}
  robustness?: RobustnessSummary
  regression?: RegressionResult
  reports: {junit?: string; html?: string}
  startedAt: string
  durationS: number
}
