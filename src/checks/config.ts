// The `checks` section of mlops.yaml (typed by schemas/config/checks.schema.json) and the settings `mlops test` runs with.
import {type ConfigIssue, UsageError} from '../errors.js'
import {DURATION_EXAMPLES, parseDuration} from '../system/duration.js'
import type {Tolerance} from './golden.types.js'

export type LoadMode = 'open' | 'closed'
export type RequestSource = 'auto' | 'golden' | 'reference' | 'generated'
export type CheckName = 'regression' | 'load' | 'latency' | 'robustness'
/** The order checks run in: robustness last, since a crash it finds ends the server. */
export const CHECK_NAMES: readonly CheckName[] = ['regression', 'load', 'latency', 'robustness']

export interface ChecksConfig {
  load?: {
    /** open: requests sent at a constant rate whether or not earlier ones returned; closed: `concurrency` users in a loop. */
    mode?: LoadMode
    /** Requests per second (open model). */
    rate?: number
    /** Users (closed model), or the most connections (open model). */
    concurrency?: number
    duration?: string
    warmup?: string
    timeout_ms?: number
    requests?: RequestSource
    /** Records per request. */
    batch?: number
    max_error_rate?: number
    /** Open model: the throughput reached over the rate asked for. */
    min_throughput_ratio?: number
    /** Fewer measured requests than this make the load gates inconclusive. */
    min_requests?: number
    find_max?: {step_duration?: string; max_steps?: number; max_rate?: number; min_rate?: number}
  }
  latency?: {
    /** e.g. "p99 <= 50ms", "p50 <= 5ms at 200 rps". */
    gates?: string[]
    /** A percentile needs this many samples at or above it; fewer make its gate inconclusive. */
    min_tail_samples?: number
  }
  robustness?: {seed?: number; cases?: number; timeout_ms?: number}
  regression?: {
    tolerance?: Tolerance
    /** Per prediction field (or model output). */
    tolerances?: Record<string, Tolerance>
    /** Examples compared against a baseline. */
    examples?: number
    min_examples?: number
    gates?: {min_agreement?: number; max_flip_rate?: number; max_abs_diff?: number; max_mean_abs_diff?: number}
  }
}

export type Percentile = 'p50' | 'p90' | 'p95' | 'p99' | 'p99.9' | 'max'

export interface LatencyGate {
  /** As written, for reports. */
  text: string
  percentile: Percentile
  maxMs: number
  /** Requests per second the gate holds at; the load rate when not given. */
  rate?: number
}

export interface CheckSettings {
  load: {
    mode: LoadMode
    rate: number
    concurrency: number
    durationMs: number
    warmupMs: number
    timeoutMs: number
    requests: RequestSource
    batch: number
    maxErrorRate: number
    minThroughputRatio: number
    minRequests: number
    findMax: {stepMs: number; maxSteps: number; maxRate: number; minRate?: number}
  }
  latency: {gates: LatencyGate[]; minTailSamples: number}
  robustness: {seed: number; cases: number; timeoutMs: number}
  regression: {
    tolerance: Tolerance
    tolerances: Record<string, Tolerance>
    examples: number
    minExamples: number
    gates: {minAgreement: number; maxFlipRate: number; maxAbsDiff: number; maxMeanAbsDiff: number}
  }
}

/** Flags that override the config for one run. */
export interface CheckOverrides {
  mode?: LoadMode
  rate?: number
  concurrency?: number
  duration?: string
  seed?: number
}

// Defaults sized for a laptop or a 2-core CI runner serving a small model: they pass on a healthy server there.
const DEFAULT_LATENCY_GATES = ['p50 <= 25ms', 'p99 <= 100ms']

export function checkSettings(config: ChecksConfig = {}, overrides: CheckOverrides = {}): CheckSettings {
  const load = config.load ?? {}
  const regression = config.regression ?? {}
  const gates = regression.gates ?? {}
  return {
    load: {
      mode: overrides.mode ?? load.mode ?? 'open',
      rate: overrides.rate ?? load.rate ?? 50,
      concurrency: overrides.concurrency ?? load.concurrency ?? 16,
      durationMs: parseTime(overrides.duration ?? load.duration ?? '10s', 'duration'),
      warmupMs: parseTime(load.warmup ?? '2s', 'warmup', {zero: true}),
      timeoutMs: load.timeout_ms ?? 10_000,
      requests: load.requests ?? 'auto',
      batch: load.batch ?? 1,
      maxErrorRate: load.max_error_rate ?? 0.01,
      minThroughputRatio: load.min_throughput_ratio ?? 0.95,
      minRequests: load.min_requests ?? 100,
      findMax: {
        stepMs: parseTime(load.find_max?.step_duration ?? '3s', 'find_max.step_duration'),
        maxSteps: load.find_max?.max_steps ?? 8,
        maxRate: load.find_max?.max_rate ?? 20_000,
        minRate: load.find_max?.min_rate,
      },
    },
    latency: {
      gates: (config.latency?.gates ?? DEFAULT_LATENCY_GATES).map((g) => parseLatencyGate(g)!),
      minTailSamples: config.latency?.min_tail_samples ?? 5,
    },
    robustness: {
      seed: overrides.seed ?? config.robustness?.seed ?? 1,
      cases: config.robustness?.cases ?? 120,
      timeoutMs: config.robustness?.timeout_ms ?? 5000,
    },
    regression: {
      tolerance: regression.tolerance ?? {},
      tolerances: regression.tolerances ?? {},
      examples: regression.examples ?? 200,
      minExamples: regression.min_examples ?? 20,
      gates: {
        minAgreement: gates.min_agreement ?? 0.99,
        maxFlipRate: gates.max_flip_rate ?? 0.01,
        maxAbsDiff: gates.max_abs_diff ?? 0.05,
        maxMeanAbsDiff: gates.max_mean_abs_diff ?? 0.01,
      },
    },
  }
}

const GATE = /^(p50|p90|p95|p99|p99\.9|max)\s*<=\s*(\d+(?:\.\d+)?)\s*(us|ms|s)(?:\s+at\s+(\d+(?:\.\d+)?)\s*rps)?$/
const UNIT_MS: Record<string, number> = {us: 0.001, ms: 1, s: 1000}

/** `p99 <= 50ms at 200 rps` → the gate; undefined when it does not parse. */
export function parseLatencyGate(text: string): LatencyGate | undefined {
  const m = GATE.exec(text.trim())
  if (!m) return undefined
  return {
    text: text.trim(),
    percentile: m[1] as Percentile,
    maxMs: Number(m[2]) * UNIT_MS[m[3]],
    ...(m[4] === undefined ? {} : {rate: Number(m[4])}),
  }
}

/** `zero`: may be no time at all (a warmup may; a measured phase of no time has no rate to report). */
function parseTime(text: string, field: string, {zero = false} = {}): number {
  const ms = parseDuration(text)
  // The schema and checkChecksConfig refuse bad durations in mlops.yaml; a flag gets here unchecked.
  if (ms === undefined)
    throw new UsageError('CHECKS_DURATION_INVALID', `${field} "${text}" is not a duration`, {
      hint: `Write a number and a unit: ${DURATION_EXAMPLES}.`,
    })
  if (ms === 0 && !zero)
    throw new UsageError('CHECKS_DURATION_INVALID', `${field} "${text}" is no time at all: nothing would be measured`, {
      hint: 'Give it a length, e.g. 10s.',
    })
  return ms
}

/** What the schema cannot say: gates that parse, durations, and a warmup shorter than the run. */
export function checkChecksConfig(config: {checks?: ChecksConfig}): ConfigIssue[] {
  const checks = config.checks
  if (!checks) return []
  const issues: ConfigIssue[] = []
  ;(checks.latency?.gates ?? []).forEach((gate, i) => {
    if (!parseLatencyGate(gate))
      issues.push({
        path: `checks.latency.gates[${i}]`,
        message: `"${gate}" is not a latency gate; write it as "p99 <= 50ms" or "p99 <= 50ms at 200 rps" (p50, p90, p95, p99, p99.9 or max; us, ms or s)`,
      })
  })
  const durations: [string, string | undefined, boolean][] = [
    ['checks.load.duration', checks.load?.duration, false],
    ['checks.load.warmup', checks.load?.warmup, true],
    ['checks.load.find_max.step_duration', checks.load?.find_max?.step_duration, false],
  ]
  for (const [path, value, zero] of durations) {
    if (value === undefined) continue
    const ms = parseDuration(value)
    if (ms === undefined) issues.push({path, message: `"${value}" is not a duration such as ${DURATION_EXAMPLES}`})
    else if (ms === 0 && !zero)
      issues.push({
        path,
        message: `"${value}" is no time at all: nothing would be measured; give it a length, e.g. 10s`,
      })
  }
  if (
    checks.load?.find_max?.max_rate !== undefined &&
    checks.load.rate !== undefined &&
    checks.load.find_max.max_rate < checks.load.rate
  ) {
    issues.push({
      path: 'checks.load.find_max.max_rate',
      message: `must be at least checks.load.rate (${checks.load.rate})`,
    })
  }
  return issues
}
