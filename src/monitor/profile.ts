// Streaming, bounded-memory profiles of feature and prediction values: the drift baseline packaged with an artifact.
import type {CategoricalProfile, FeatureProfile, NumericProfile} from '../artifact/types.js'

export const QUANTILE_POINTS = [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1]
const HISTOGRAM_BINS = 20
const SAMPLE_SIZE = 2000
const MAX_CATEGORIES = 50
export const OTHER = '__other__'

export type ValueKind = 'numeric' | 'categorical'

/** A small seeded PRNG: profiles go into the manifest, so sampling must give the same bytes on every run. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export function isMissing(value: unknown): boolean {
  return (
    value === null ||
    value === undefined ||
    value === '' ||
    (typeof value === 'number' && Number.isNaN(value)) ||
    value === 'NaN'
  )
}

export function toNumber(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined
  if (typeof value === 'boolean') return value ? 1 : 0
  if (typeof value === 'string' && value.trim() !== '') {
    const n = Number(value)
    return Number.isFinite(n) ? n : undefined
  }
  return undefined
}

/** Accumulates one column. Exact counts, moments and min/max; quantiles and histogram from a reservoir sample. */
export class ColumnProfiler {
  private count = 0
  private missing = 0
  private sum = 0
  private sumSq = 0
  private min = Number.POSITIVE_INFINITY
  private max = Number.NEGATIVE_INFINITY
  private readonly reservoir: number[] = []
  private seen = 0
  private readonly categories = new Map<string, number>()
  private readonly random: () => number

  constructor(
    readonly kind: ValueKind,
    seed = 1,
    private readonly sampleSize = SAMPLE_SIZE,
  ) {
    this.random = mulberry32(seed)
  }

  add(value: unknown): void {
    this.count++
    if (isMissing(value)) {
      this.missing++
      return
    }
    if (this.kind === 'categorical') {
      const key = String(value)
      this.categories.set(key, (this.categories.get(key) ?? 0) + 1)
      return
    }
    const n = toNumber(value)
    if (n === undefined) {
      this.missing++
      return
    }
    this.sum += n
    this.sumSq += n * n
    if (n < this.min) this.min = n
    if (n > this.max) this.max = n
    this.seen++
    if (this.reservoir.length < this.sampleSize) this.reservoir.push(n)
    else {
      const j = Math.floor(this.random() * this.seen)
      if (j < this.sampleSize) this.reservoir[j] = n
    }
  }

  finish(): FeatureProfile {
    return this.kind === 'categorical' ? this.finishCategorical() : this.finishNumeric()
  }

  private finishNumeric(): NumericProfile {
    const present = this.seen
    const sample = [...this.reservoir].sort((a, b) => a - b)
    const mean = present ? this.sum / present : 0
    const variance = present ? Math.max(0, this.sumSq / present - mean * mean) : 0
    const min = present ? this.min : 0
    const max = present ? this.max : 0
    const edges = Array.from({length: HISTOGRAM_BINS + 1}, (_, i) => round(min + ((max - min) * i) / HISTOGRAM_BINS))
    const counts = new Array<number>(HISTOGRAM_BINS).fill(0)
    for (const v of sample) counts[binOf(v, min, max, HISTOGRAM_BINS)]++
    return {
      kind: 'numeric',
      count: this.count,
      missing: this.missing,
      missingRate: round(this.count ? this.missing / this.count : 0),
      mean: round(mean),
      std: round(Math.sqrt(variance)),
      min: round(min),
      max: round(max),
      quantiles: QUANTILE_POINTS.map((q) => round(quantile(sample, q))),
      histogram: {edges, counts},
      sample: sample.map(round),
    }
  }

  private finishCategorical(): CategoricalProfile {
    const sorted = [...this.categories.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    const frequencies: Record<string, number> = {}
    const present = this.count - this.missing
    let other = 0
    sorted.forEach(([key, n], i) => {
      if (i < MAX_CATEGORIES) frequencies[key] = round(n / present)
      else other += n
    })
    if (other > 0) frequencies[OTHER] = round(other / present)
    return {
      kind: 'categorical',
      count: this.count,
      missing: this.missing,
      missingRate: round(this.count ? this.missing / this.count : 0),
      frequencies,
    }
  }
}

function binOf(v: number, min: number, max: number, bins: number): number {
  if (max <= min) return 0
  return Math.min(bins - 1, Math.max(0, Math.floor(((v - min) / (max - min)) * bins)))
}

/** Linear interpolation between closest ranks (numpy's default). */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0
  const pos = (sorted.length - 1) * q
  const lo = Math.floor(pos)
  const hi = Math.ceil(pos)
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo)
}

/** Twelve significant digits: enough for drift statistics, and stable JSON across platforms. */
function round(value: number): number {
  return Number.isFinite(value) ? Number(value.toPrecision(12)) : 0
}

/** Profiles many columns of records at once; column kinds are given (from the pipeline) or guessed from the first values. */
export class RecordProfiler {
  private readonly columns = new Map<string, ColumnProfiler>()
  rows = 0

  constructor(private readonly kinds: Record<string, ValueKind> = {}) {
    Object.entries(kinds).forEach(([name, kind], i) => this.columns.set(name, new ColumnProfiler(kind, i + 1)))
  }

  add(record: Record<string, unknown>): void {
    this.rows++
    const fixed = Object.keys(this.kinds).length > 0
    for (const [name, column] of this.columns) column.add(record[name])
    if (fixed) return
    for (const [name, value] of Object.entries(record)) {
      if (this.columns.has(name) || isMissing(value) || typeof value === 'object') continue
      const column = new ColumnProfiler(typeof value === 'number' ? 'numeric' : 'categorical', this.columns.size + 1)
      for (let i = 0; i < this.rows - 1; i++) column.add(null)
      column.add(value)
      this.columns.set(name, column)
    }
  }

  finish(): Record<string, FeatureProfile> {
    const out: Record<string, FeatureProfile> = {}
    for (const name of [...this.columns.keys()].sort()) out[name] = this.columns.get(name)!.finish()
    return out
  }
}

/** Prediction fields as profile columns: scalars as they are, one level of nested scores as `field.key`. */
export function flattenPrediction(prediction: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(prediction)) {
    if (value !== null && typeof value === 'object' && !Array.isArray(value))
      for (const [k, v] of Object.entries(value)) out[`${key}.${k}`] = v
    else if (!Array.isArray(value)) out[key] = value
  }
  return out
}
