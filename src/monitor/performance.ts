// `mlops monitor --performance`: predictions from the request log joined to the feedback that arrived, judged per version and window.
import {resolve} from 'node:path'

import {type LoadedConfig, loadConfig} from '../config/load.js'
import {readRecords} from '../data/records.js'
import {MlopsError, UsageError} from '../errors.js'
import {type Feedback, feedbackPath, readFeedback} from '../feedback/store.js'
import {shortPath, writeReports} from '../report/write.js'
import {DURATION_EXAMPLES, parseDuration} from '../system/duration.js'
import {DEFAULT_SINCE, type PerformanceConfig} from './config.js'
import {rotatedFiles} from './current.js'
import {type ClassPair, classificationMetrics, regressionMetrics} from './outcomes.js'
import {performanceHtml, performanceJunit} from './performance-report.js'
import type {Metrics, PerformanceGate, PerformanceResult, Task, VersionPerformance} from './performance-types.js'

export type {Metrics, PerformanceGate, PerformanceResult, Task, VersionPerformance} from './performance-types.js'

export interface PerformanceOptions {
  dir: string
  since?: string
  log?: string
  junit?: string
  html?: string
  now?: () => Date
}

/** One served prediction, as the request log has it. */
export interface LoggedPrediction {
  id: string
  time: number
  version: string
  digest?: string
  prediction: Record<string, unknown>
}

export interface PerformanceSettings {
  task?: Task
  prediction?: string
  score?: string
  positive?: string
  windowMs?: number
  minSamples: number
  gates: Record<string, number>
}

/** Gate name → the metric it reads and whether the metric must stay above (min) or below (max) it. */
export const PERFORMANCE_GATES: Record<string, {metric: string; min: boolean}> = {
  min_accuracy: {metric: 'accuracy', min: true},
  min_precision: {metric: 'precision', min: true},
  min_recall: {metric: 'recall', min: true},
  min_f1: {metric: 'f1', min: true},
  min_roc_auc: {metric: 'roc_auc', min: true},
  max_mae: {metric: 'mae', min: false},
  max_rmse: {metric: 'rmse', min: false},
  min_r2: {metric: 'r2', min: true},
}

export function performanceSettings(config: PerformanceConfig = {}): PerformanceSettings {
  const windowMs = config.window === undefined ? undefined : parseDuration(config.window)
  return {
    task: config.task,
    prediction: config.prediction,
    score: config.score,
    positive: config.positive === undefined ? undefined : String(config.positive),
    windowMs,
    minSamples: config.min_samples ?? 30,
    gates: config.gates ?? {},
  }
}

export async function runPerformance(options: PerformanceOptions): Promise<PerformanceResult> {
  const now = (options.now ?? (() => new Date()))()
  const loaded = await loadConfig(options.dir)
  const settings = performanceSettings(loaded.config.monitor?.performance)
  const since = options.since ?? loaded.config.monitor?.since ?? DEFAULT_SINCE
  const ms = parseDuration(since)
  if (ms === undefined)
    throw new UsageError('MONITOR_SINCE_INVALID', `--since ${since} is not a duration`, {
      hint: `Pass a number and a unit: ${DURATION_EXAMPLES}.`,
    })
  const from = new Date(now.getTime() - ms)
  const log = requestLogPath(options.log, loaded)
  const files = rotatedFiles(log)
  const predictions = await readPredictions(files, from.getTime(), now.getTime(), loaded.config.name)
  const truths = await readFeedback(feedbackPath(log))
  const task = settings.task ?? taskOf(truths)
  const versions = [...new Set(predictions.map((p) => p.version))].sort()
  const result: PerformanceResult = {
    verdict: 'not_enough_data',
    task,
    window: {since, from: from.toISOString(), to: now.toISOString()},
    files: files.map(shortPath),
    feedback: {file: shortPath(feedbackPath(log)), items: truths.size},
    versions: versions.map((version) => {
      const served = predictions.filter((p) => p.version === version)
      return versionPerformance(version, served, truths, task, settings, from.getTime(), now.getTime())
    }),
    failed: [],
    reports: {},
  }
  if (predictions.length === 0)
    throw new MlopsError(
      'MONITOR_NO_DATA',
      `no /v1/predict answers in ${result.files.join(', ') || log} over the last ${since}`,
      {
        hint: 'Widen the window (e.g. "--since 7d"), or serve with serving.request_log.path set.',
      },
    )
  const gates = result.versions.flatMap((v) => v.gates.map((g) => ({...g, version: v.version})))
  result.failed = gates.filter((g) => g.verdict === 'fail').map((g) => `${g.version}: ${g.gate}`)
  result.verdict =
    result.failed.length > 0 ? 'fail' : gates.some((g) => g.verdict === 'pass') ? 'ok' : 'not_enough_data'
  if (Object.keys(settings.gates).length === 0 && result.versions.some((v) => v.metrics)) result.verdict = 'ok'
  result.reports = await writeReports(options, {
    junit: () => performanceJunit(result, now),
    html: () => performanceHtml(result, now),
  })
  return result
}

function taskOf(truths: Map<string, Feedback>): Task {
  for (const truth of truths.values()) return truth.value !== undefined ? 'regression' : 'classification'
  return 'classification'
}

/** The request log: the one given, else serving.request_log.path; `reader` names who needs it when neither is set. */
export function requestLogPath(
  explicit: string | undefined,
  loaded: LoadedConfig,
  reader = 'monitor --performance',
): string {
  if (explicit) return resolve(explicit)
  const configured = loaded.config.serving?.request_log?.path
  if (!configured)
    throw new UsageError(
      'NO_REQUEST_LOG',
      `${reader} reads the request log, and serving.request_log.path is not set in mlops.yaml`,
      {
        hint: 'Set serving.request_log.path in mlops.yaml and serve with it (or pass --log PATH where the command has it).',
      },
    )
  return resolve(loaded.dir, configured)
}

interface LoggedEntry {
  id?: unknown
  time?: unknown
  route?: unknown
  status?: unknown
  fallback?: unknown
  model?: {name?: unknown; version?: unknown; digest?: unknown}
  outputs?: {predictions?: unknown}
}

/** Answered /v1/predict requests in [from, to]: the first prediction of each (feedback is per request). */
export async function readPredictions(
  files: string[],
  from: number,
  to: number,
  model?: string,
): Promise<LoggedPrediction[]> {
  const out: LoggedPrediction[] = []
  for (const file of files)
    for await (const {record} of readRecords(file, {format: 'jsonl', onBadRow: () => undefined})) {
      const entry = record as LoggedEntry
      const time = typeof entry.time === 'string' ? Date.parse(entry.time) : Number.NaN
      if (!(time >= from && time <= to) || entry.route !== '/v1/predict' || entry.status !== 200 || entry.fallback)
        continue
      if (model !== undefined && entry.model?.name !== model) continue
      const first = Array.isArray(entry.outputs?.predictions) ? (entry.outputs.predictions[0] as unknown) : undefined
      if (typeof entry.id !== 'string' || first === null || typeof first !== 'object') continue
      out.push({
        id: entry.id,
        time,
        version: String(entry.model?.version ?? 'unknown'),
        ...(typeof entry.model?.digest === 'string' ? {digest: entry.model.digest} : {}),
        prediction: first as Record<string, unknown>,
      })
    }
  return out
}

/** A number from a field that may hold it wrapped in one-element arrays (a raw model output such as [[0.7]]). */
export function scalar(value: unknown): unknown {
  let v = value
  while (Array.isArray(v) && v.length === 1) v = v[0] as unknown
  return v
}

export function firstNumericField(prediction: Record<string, unknown>): string | undefined {
  return Object.keys(prediction).find((k) => typeof scalar(prediction[k]) === 'number')
}

/** The metrics of predictions joined to their truth; undefined when none of them has truth yet. */
export function outcomeMetrics(
  served: LoggedPrediction[],
  truths: Map<string, Feedback>,
  task: Task,
  settings: Pick<PerformanceSettings, 'prediction' | 'score' | 'positive'>,
): Metrics | undefined {
  const joined = served.flatMap((p) => {
    const truth = truths.get(p.id)
    return truth ? [{p, truth}] : []
  })
  if (joined.length === 0) return undefined
  if (task === 'regression') {
    const field = settings.prediction ?? firstNumericField(joined[0].p.prediction)
    const pairs = joined.flatMap(({p, truth}) => {
      const predicted = field === undefined ? undefined : scalar(p.prediction[field])
      return typeof predicted === 'number' && typeof truth.value === 'number' ? [[truth.value, predicted]] : []
    })
    if (pairs.length === 0) return undefined
    return regressionMetrics(
      pairs.map((x) => x[0]),
      pairs.map((x) => x[1]),
    )
  }
  const field = settings.prediction ?? 'label'
  const pairs: ClassPair[] = joined.flatMap(({p, truth}) => {
    const predicted = scalar(p.prediction[field])
    if (predicted === undefined || predicted === null || truth.label === undefined) return []
    const scoreField = settings.score ?? (typeof p.prediction.probability === 'number' ? 'probability' : undefined)
    const score = scoreField === undefined ? undefined : scalar(p.prediction[scoreField])
    return [{truth: String(truth.label), predicted: String(predicted), ...(typeof score === 'number' ? {score} : {})}]
  })
  if (pairs.length === 0) return undefined
  return classificationMetrics(pairs, settings.positive ?? positiveOf(pairs))
}

/** With two classes: the one the score is the probability of (its predictions score higher), else the last in order. */
function positiveOf(pairs: ClassPair[]): string | undefined {
  const classes = [...new Set(pairs.flatMap((p) => [p.truth, p.predicted]))].sort()
  if (classes.length > 2) return undefined
  const scored = pairs.filter((p) => p.score !== undefined)
  const mean = (c: string) => {
    const of = scored.filter((p) => p.predicted === c)
    return of.length === 0 ? Number.NaN : of.reduce((s, p) => s + p.score!, 0) / of.length
  }
  if (classes.length === 2 && scored.length > 0 && mean(classes[0]) > mean(classes[1])) return classes[0]
  return classes.at(-1)
}

function versionPerformance(
  version: string,
  served: LoggedPrediction[],
  truths: Map<string, Feedback>,
  task: Task,
  settings: PerformanceSettings,
  from: number,
  to: number,
): VersionPerformance {
  const labeled = served.filter((p) => truths.has(p.id)).length
  const metrics = outcomeMetrics(served, truths, task, settings)
  const step = settings.windowMs ?? to - from
  const windows: VersionPerformance['windows'] = []
  for (let start = from; start < to && step > 0; start += step) {
    const end = Math.min(to, start + step)
    const inside = served.filter((p) => p.time >= start && p.time < end)
    if (inside.length === 0) continue
    windows.push({
      from: new Date(start).toISOString(),
      to: new Date(end).toISOString(),
      predictions: inside.length,
      labeled: inside.filter((p) => truths.has(p.id)).length,
      metrics: outcomeMetrics(inside, truths, task, settings),
    })
  }
  const gates = Object.entries(settings.gates).map(([gate, threshold]): PerformanceGate => {
    const {metric, min} = PERFORMANCE_GATES[gate]
    const estimate = (metrics as unknown as Record<string, {value: number} | undefined> | undefined)?.[metric]
    const count = metrics?.count ?? 0
    if (!estimate || count < settings.minSamples)
      return {
        gate,
        metric,
        verdict: 'not_enough_data',
        threshold,
        message: `${metric}: ${count} of ${settings.minSamples} labeled predictions needed`,
      }
    const failed = min ? estimate.value < threshold : estimate.value > threshold
    return {
      gate,
      metric,
      verdict: failed ? 'fail' : 'pass',
      observed: estimate.value,
      threshold,
      message: `${metric} ${estimate.value.toFixed(4)} on ${count} labeled predictions (${min ? 'at least' : 'at most'} ${threshold})`,
    }
  })
  return {
    version,
    predictions: served.length,
    labeled,
    coverage: served.length ? labeled / served.length : 0,
    metrics,
    windows,
    gates,
  }
}
