// Drift evaluation: each feature and prediction field of current data against its baseline profile, a verdict per column and overall.
import type {CategoricalProfile, FeatureProfile, NumericProfile, ReferenceProfile} from '../artifact/types.js'
import {UsageError} from '../errors.js'
import {type DriftMethod, type DriftSettings, TEST_METHODS, driftSettings} from './config.js'
import {isMissing, quantile, QUANTILE_POINTS, toNumber} from './profile.js'
import {binCounts, categoryCells, chiSquareTest, jensenShannon, ks2Samp, psi} from './stats.js'

export type DriftVerdict = 'drift' | 'ok' | 'not_enough_data'

/** The reason of a baseline column that the current data does not have at all. */
export const NOT_IN_CURRENT = 'not in the current data'

/** Raw values per column, as they came in (strings from CSV, numbers from JSON, null for missing). */
export interface CurrentData {
  features: Record<string, unknown[]>
  predictions?: Record<string, unknown[]>
}

export interface ColumnDrift {
  name: string
  target: 'feature' | 'prediction'
  kind: 'numeric' | 'categorical'
  method: DriftMethod
  /** KS D, chi-square, PSI or JS distance; null when there was not enough data. */
  statistic: number | null
  /** For tests (ks, chi2) only. */
  pValue: number | null
  /** For tests a p-value (drift below it), for distances a size (drift at or above it). */
  threshold: number
  /** How far past its thresholds the column is: above 1 is drift. Tests on a log scale (p = threshold² gives 2). */
  severity: number
  verdict: DriftVerdict
  /** Why the verdict is drift or not_enough_data, in words. */
  reasons: string[]
  samples: {baseline: number; current: number}
  missingRate: {baseline: number; current: number}
  /** Categories the baseline never saw, with their counts now. */
  unseen: {category: string; count: number}[]
  /** Proportions per bin (numeric: between baseline deciles; categorical: per category), for charts. */
  bins: {labels: string[]; baseline: number[]; current: number[]}
  /** Numeric only: deciles 0, 0.1, …, 1 of the baseline and of the current values. */
  quantiles?: {baseline: number[]; current: number[]}
}

export interface DriftReport {
  verdict: DriftVerdict
  /** Names of drifted columns, most severe first (predictions as `prediction:<field>`). */
  drifted: string[]
  features: ColumnDrift[]
  predictions: ColumnDrift[]
}

/** Compares current data with the baseline profile of the artifact. Columns of `current` the baseline lacks are left out. */
export function detectDrift(
  baseline: ReferenceProfile,
  current: CurrentData,
  settings: DriftSettings = driftSettings(),
): DriftReport {
  const evaluate = (
    profiles: Record<string, FeatureProfile>,
    values: Record<string, unknown[]>,
    target: ColumnDrift['target'],
  ) =>
    Object.entries(profiles)
      .filter(([name]) => !settings.columns[name]?.ignore)
      .map(([name, profile]) => evaluateColumn(name, target, profile, values[name], settings))
      .sort(bySeverity)
  const features = evaluate(baseline.features, current.features, 'feature')
  const predictions =
    current.predictions && baseline.predictions ? evaluate(baseline.predictions, current.predictions, 'prediction') : []
  const all = [...features, ...predictions].sort(bySeverity)
  const drifted = all
    .filter((c) => c.verdict === 'drift')
    .map((c) => (c.target === 'prediction' ? `prediction:${c.name}` : c.name))
  const verdict: DriftVerdict =
    drifted.length > 0 ? 'drift' : all.some((c) => c.verdict === 'ok') ? 'ok' : 'not_enough_data'
  return {verdict, drifted, features, predictions}
}

const VERDICT_ORDER: Record<DriftVerdict, number> = {drift: 0, ok: 1, not_enough_data: 2}

function bySeverity(a: ColumnDrift, b: ColumnDrift): number {
  return VERDICT_ORDER[a.verdict] - VERDICT_ORDER[b.verdict] || b.severity - a.severity || (a.name < b.name ? -1 : 1)
}

function evaluateColumn(
  name: string,
  target: ColumnDrift['target'],
  profile: FeatureProfile,
  values: unknown[] | undefined,
  settings: DriftSettings,
): ColumnDrift {
  const override = settings.columns[name] ?? {}
  const baselinePresent = profile.count - profile.missing
  const column = profile.kind === 'numeric' ? numericValues(values ?? []) : categoryCounts(values ?? [])
  const present = column.present
  const total = values?.length ?? 0
  const method = override.method ?? chooseMethod(profile.kind, present, settings)
  if (method === 'ks' && profile.kind !== 'numeric') throw wrongMethod(name, method, profile.kind)
  if (method === 'chi2' && profile.kind !== 'categorical') throw wrongMethod(name, method, profile.kind)
  const isTest = TEST_METHODS.has(method)
  const threshold =
    override.threshold ??
    (isTest
      ? settings.thresholds.pValue
      : method === 'psi'
        ? settings.thresholds.psi
        : settings.thresholds.jensenshannon)
  const base: ColumnDrift = {
    name,
    target,
    kind: profile.kind,
    method,
    statistic: null,
    pValue: null,
    threshold,
    severity: 0,
    verdict: 'not_enough_data',
    reasons: [],
    samples: {baseline: baselinePresent, current: present},
    missingRate: {baseline: profile.missingRate, current: total ? (total - present) / total : 0},
    unseen: [],
    bins: {labels: [], baseline: [], current: []},
  }
  if (values === undefined) return {...base, reasons: [NOT_IN_CURRENT]}
  if (baselinePresent === 0) return {...base, reasons: ['the baseline has no values for it']}
  if (total < settings.minSamples)
    return {...base, reasons: [`${total} values, fewer than min_samples ${settings.minSamples}`]}

  const reasons: string[] = []
  let severity = 0
  const missingChange = base.missingRate.current - base.missingRate.baseline
  if (missingChange > settings.thresholds.missingRate) {
    reasons.push(
      `missing rate ${pct(base.missingRate.baseline)} → ${pct(base.missingRate.current)}, more than +${pct(settings.thresholds.missingRate)}`,
    )
    severity = Math.max(severity, missingChange / settings.thresholds.missingRate)
  }
  if (present < settings.minSamples) {
    if (reasons.length > 0) return {...base, verdict: 'drift', severity, reasons}
    return {...base, reasons: [`${present} present values, fewer than min_samples ${settings.minSamples}`]}
  }

  const measured =
    profile.kind === 'numeric'
      ? measureNumeric(profile, (column as NumericValues).sorted, method)
      : measureCategorical(profile, (column as CategoryCounts).counts, present, baselinePresent, method)
  if ('unseen' in measured && measured.unseen.length > 0) {
    const share = measured.unseen.reduce((s, u) => s + u.count, 0) / present
    if (share > settings.thresholds.unseenShare) {
      reasons.push(
        `categories the baseline never saw (${measured.unseen.map((u) => u.category).join(', ')}) are ${pct(share)} of values, more than ${pct(settings.thresholds.unseenShare)}`,
      )
      severity = Math.max(severity, share / (settings.thresholds.unseenShare || Number.MIN_VALUE))
    }
  }
  const past = isTest ? measured.pValue! < threshold : measured.statistic >= threshold
  // Tests on a log scale: a p-value of threshold² is twice as far past as the threshold itself.
  const methodSeverity = isTest
    ? Math.log(Math.max(measured.pValue!, 1e-300)) / Math.log(threshold)
    : measured.statistic / threshold
  severity = Math.max(severity, methodSeverity)
  if (past)
    reasons.unshift(
      isTest
        ? `${method} p-value ${fmt(measured.pValue!)} < ${threshold}`
        : `${method} ${fmt(measured.statistic)} ≥ ${threshold}`,
    )
  return {
    ...base,
    statistic: measured.statistic,
    pValue: isTest ? measured.pValue! : null,
    severity,
    verdict: reasons.length > 0 ? 'drift' : 'ok',
    reasons,
    unseen: 'unseen' in measured ? measured.unseen : [],
    bins: measured.bins,
    quantiles: 'quantiles' in measured ? measured.quantiles : undefined,
  }
}

/** As drift tools do: tests while samples are small, distances once a test would flag any harmless difference. */
function chooseMethod(kind: FeatureProfile['kind'], present: number, settings: DriftSettings): DriftMethod {
  if (present < settings.largeSample) return kind === 'numeric' ? 'ks' : 'chi2'
  return kind === 'numeric' ? 'psi' : 'jensenshannon'
}

interface NumericValues {
  present: number
  sorted: number[]
}

interface CategoryCounts {
  present: number
  counts: Record<string, number>
}

/** Same reading as the profiler: anything not a finite number counts as missing. */
function numericValues(values: unknown[]): NumericValues {
  const sorted: number[] = []
  for (const v of values) {
    if (isMissing(v)) continue
    const n = toNumber(v)
    if (n !== undefined) sorted.push(n)
  }
  sorted.sort((a, b) => a - b)
  return {present: sorted.length, sorted}
}

function categoryCounts(values: unknown[]): CategoryCounts {
  const counts: Record<string, number> = {}
  let present = 0
  for (const v of values) {
    if (isMissing(v)) continue
    const key = String(v)
    counts[key] = (counts[key] ?? 0) + 1
    present++
  }
  return {present, counts}
}

interface Measured {
  statistic: number
  pValue?: number
  bins: ColumnDrift['bins']
}

function measureNumeric(
  profile: NumericProfile,
  sorted: number[],
  method: DriftMethod,
): Measured & {quantiles: NonNullable<ColumnDrift['quantiles']>} {
  // Bin edges: the baseline's distinct interior deciles; the baseline's share per bin comes from its stored sample.
  const edges = [...new Set(profile.quantiles.slice(1, -1))]
  const expected = binCounts(profile.sample, edges)
  const actual = binCounts(sorted, edges)
  const bins = {labels: binLabels(edges), baseline: proportions(expected), current: proportions(actual)}
  const quantiles = {baseline: profile.quantiles, current: QUANTILE_POINTS.map((q) => round(quantile(sorted, q)))}
  if (method === 'ks') {
    const ks = ks2Samp(profile.sample, sorted)
    return {statistic: ks.statistic, pValue: ks.pValue, bins, quantiles}
  }
  return {statistic: method === 'psi' ? psi(expected, actual) : jensenShannon(expected, actual), bins, quantiles}
}

function measureCategorical(
  profile: CategoricalProfile,
  counts: Record<string, number>,
  present: number,
  baselinePresent: number,
  method: DriftMethod,
): Measured & {unseen: ColumnDrift['unseen']} {
  // Half an observation of the reference data: the most a category could have had while never being seen.
  const unseenFrequency = 0.5 / baselinePresent
  const {cells, unseen} = categoryCells(counts, profile.frequencies, unseenFrequency)
  const unseenCounts = unseen.map((category) => ({category, count: counts[category]}))
  // Charts show each unseen category on its own bar; the statistics pool them into one cell.
  const shown = cells.filter((c) => c.name !== '(unseen)')
  const expectedTotal = shown.reduce((s, c) => s + c.expected, 0)
  const bins = {
    labels: [...shown.map((c) => c.name), ...unseen],
    baseline: [...shown.map((c) => round(c.expected / expectedTotal)), ...unseen.map(() => 0)],
    current: [...shown.map((c) => round(c.observed / present)), ...unseenCounts.map((u) => round(u.count / present))],
  }
  if (method === 'chi2') {
    const chi = chiSquareTest(counts, profile.frequencies, unseenFrequency)
    return {statistic: chi.statistic, pValue: chi.pValue, bins, unseen: unseenCounts}
  }
  // Distances see the unseen cell with its true baseline share of zero (PSI floors it at its epsilon).
  const expected = cells.map((c) => (c.name === '(unseen)' ? 0 : c.expected))
  const observed = cells.map((c) => c.observed)
  const statistic = method === 'psi' ? psi(expected, observed) : jensenShannon(expected, observed)
  return {statistic, bins, unseen: unseenCounts}
}

function wrongMethod(name: string, method: DriftMethod, kind: string): UsageError {
  const fits = kind === 'numeric' ? 'ks, psi or jensenshannon' : 'chi2, psi or jensenshannon'
  return new UsageError(
    'MONITOR_METHOD_INVALID',
    `monitor.features.${name}.method: ${method} does not apply to ${name}, which is ${kind}`,
    {hint: `Use ${fits} for ${name} in mlops.yaml, then run "mlops monitor" again.`},
  )
}

function binLabels(edges: number[]): string[] {
  if (edges.length === 0) return ['all']
  return [
    `≤ ${fmt(edges[0])}`,
    ...edges.slice(1).map((e, i) => `${fmt(edges[i])}–${fmt(e)}`),
    `> ${fmt(edges.at(-1)!)}`,
  ]
}

function proportions(counts: number[]): number[] {
  const total = counts.reduce((s, c) => s + c, 0)
  return counts.map((c) => (total ? round(c / total) : 0))
}

function round(v: number): number {
  return Number(v.toPrecision(6))
}

function fmt(v: number): string {
  return Math.abs(v) >= 1e-3 || v === 0 ? String(Number(v.toPrecision(4))) : v.toExponential(2)
}

function pct(v: number): string {
  return `${Number((v * 100).toPrecision(3))}%`
}
