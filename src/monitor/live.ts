// Live profiles kept by the server: bounded reservoirs of inputs and predictions per time window, drift against the baseline on demand.
import {Gauge, type Registry} from 'prom-client'

import type {ReferenceProfile} from '../artifact/types.js'
import type {InputRecord, Prediction} from '../pipeline/types.js'
import {readJson, writeJsonAtomically} from '../system/atomic.js'
import {type DriftSettings, driftSettings} from './config.js'
import {type CurrentData, type DriftReport, detectDrift} from './drift.js'
import {flattenPrediction} from './profile.js'

export interface LiveProfileOptions {
  /** Length of one window (default one hour). */
  windowMs?: number
  /** Windows kept; older ones are dropped (default 24). */
  windows?: number
  /** Values kept per column and window: the memory bound (default 2000). */
  reservoir?: number
  now?: () => number
  settings?: DriftSettings
}

interface Column {
  seen: number
  values: unknown[]
}

interface Window {
  start: number
  rows: number
  features: Record<string, Column>
  predictions: Record<string, Column>
}

export interface LiveSnapshot {
  windowMs: number
  windows: Window[]
}

/** How many windows and values per column a snapshot keeps: what merging snapshots samples down to. */
export interface LiveLimits {
  windowMs: number
  windows: number
  reservoir: number
}

/**
 * Several snapshots as one: the windows of each start summed, each column's values sampled down to the reservoir in
 * proportion to how many values each snapshot saw (evenly spaced picks of a reservoir are still a uniform sample).
 * Serving workers each profile their share of the traffic; their primary saves the merge.
 */
export function mergeLiveSnapshots(snapshots: readonly LiveSnapshot[], limits: LiveLimits): LiveSnapshot {
  const byStart = new Map<number, Window[]>()
  for (const snapshot of snapshots)
    if (snapshot.windowMs === limits.windowMs)
      for (const window of snapshot.windows) byStart.set(window.start, [...(byStart.get(window.start) ?? []), window])
  const starts = [...byStart.keys()].sort((a, b) => a - b).slice(-limits.windows)
  const columns = (parts: Record<string, Column>[]) => {
    const names = new Set(parts.flatMap((part) => Object.keys(part)))
    const out: Record<string, Column> = {}
    for (const name of names)
      out[name] = mergeColumn(
        parts.flatMap((part) => part[name] ?? []),
        limits.reservoir,
      )
    return out
  }
  const windows = starts.map((start) => {
    const parts = byStart.get(start)!
    if (parts.length === 1) return parts[0]
    return {
      start,
      rows: parts.reduce((n, w) => n + w.rows, 0),
      features: columns(parts.map((w) => w.features)),
      predictions: columns(parts.map((w) => w.predictions)),
    }
  })
  return {windowMs: limits.windowMs, windows}
}

function mergeColumn(parts: Column[], reservoir: number): Column {
  const seen = parts.reduce((n, c) => n + c.seen, 0)
  const total = parts.reduce((n, c) => n + c.values.length, 0)
  if (total <= reservoir) return {seen, values: parts.flatMap((c) => c.values)}
  const values: unknown[] = []
  for (const part of parts) {
    const take = Math.min(part.values.length, Math.round((reservoir * part.seen) / Math.max(1, seen)))
    for (let i = 0; i < take; i++) values.push(part.values[Math.floor((i * part.values.length) / take)])
  }
  return {seen, values: values.slice(0, reservoir)}
}

export class LiveProfiles {
  private readonly windowMs: number
  private readonly maxWindows: number
  private readonly reservoir: number
  private readonly now: () => number
  private readonly settings: DriftSettings
  private windows: Window[] = []
  /** Windows a previous server saved: counted in drift, kept apart from this process's own (see ownSnapshot). */
  private restored: Window[] = []
  // Deterministic replacement choices: a profile is a measurement, not a lottery.
  private seed = 0x9e3779b9

  constructor(
    readonly baseline: ReferenceProfile,
    options: LiveProfileOptions = {},
  ) {
    this.windowMs = options.windowMs ?? 3_600_000
    this.maxWindows = options.windows ?? 24
    this.reservoir = options.reservoir ?? 2000
    this.now = options.now ?? Date.now
    this.settings = options.settings ?? driftSettings()
  }

  /** Adds the records of one answered request and their predictions. O(columns) per record. */
  add(records: readonly InputRecord[], predictions: readonly Prediction[]): void {
    const window = this.current()
    for (let i = 0; i < records.length; i++) {
      window.rows++
      for (const name of Object.keys(this.baseline.features))
        this.offer(window.features, name, records[i][name] ?? null)
      const prediction = predictions[i]
      if (prediction && this.baseline.predictions) {
        const flat = flattenPrediction(prediction)
        for (const name of Object.keys(this.baseline.predictions))
          this.offer(window.predictions, name, flat[name] ?? null)
      }
    }
  }

  /** Samples of the windows that started within `sinceMs` of now (default: all kept windows). */
  currentData(sinceMs?: number): CurrentData & {rows: number} {
    const now = this.now()
    const oldest = now - (now % this.windowMs) - (this.maxWindows - 1) * this.windowMs
    const from = Math.max(oldest, sinceMs === undefined ? -Infinity : now - sinceMs)
    const picked = [...this.restored, ...this.windows].filter((w) => w.start + this.windowMs > from)
    const merge = (pick: (w: Window) => Record<string, Column>) => {
      const out: Record<string, unknown[]> = {}
      for (const w of picked)
        for (const [name, column] of Object.entries(pick(w))) (out[name] ??= []).push(...column.values)
      return out
    }
    return {
      rows: picked.reduce((n, w) => n + w.rows, 0),
      features: merge((w) => w.features),
      predictions: merge((w) => w.predictions),
    }
  }

  drift(sinceMs?: number): DriftReport & {rows: number} {
    const current = this.currentData(sinceMs)
    return {...detectDrift(this.baseline, current, this.settings), rows: current.rows}
  }

  get limits(): LiveLimits {
    return {windowMs: this.windowMs, windows: this.maxWindows, reservoir: this.reservoir}
  }

  /** The restored windows and this process's own, as one. */
  snapshot(): LiveSnapshot {
    return mergeLiveSnapshots([{windowMs: this.windowMs, windows: this.restored}, this.ownSnapshot()], this.limits)
  }

  /** What this process profiled itself, without the restored windows: a worker's share, merged by its primary. */
  ownSnapshot(): LiveSnapshot {
    return {windowMs: this.windowMs, windows: this.windows}
  }

  /** Persists the windows next to the request log, so a restarted server and `mlops monitor` see them. */
  async save(path: string): Promise<void> {
    await writeJsonAtomically(path, this.snapshot())
  }

  /**
   * Takes up the windows a previous server saved. They are derived data: an unreadable file costs the drift history, never
   * the server's start, and the warning says so (the next save replaces the file).
   */
  async load(path: string): Promise<string | undefined> {
    let snapshot: LiveSnapshot | undefined
    try {
      snapshot = await readJson<LiveSnapshot>(path)
    } catch (error) {
      return `live drift windows not restored: ${(error as Error).message}; drift starts afresh and the file is rewritten within a minute`
    }
    if (snapshot?.windowMs === this.windowMs && Array.isArray(snapshot.windows))
      this.restored = snapshot.windows.slice(-this.maxWindows)
    return undefined
  }

  /** Exports `mlops_drift_statistic` and `mlops_drift_detected` per column, computed when Prometheus scrapes. */
  registerMetrics(registry: Registry, labels: {version: string}): void {
    // prom-client calls collect() on each scrape, gauges in registration order: drift is computed once per scrape by
    // the first gauge and handed to the second, never on the request path.
    let pending: DriftReport | undefined
    const columns = (report: DriftReport) =>
      [...report.features, ...report.predictions].filter((c) => c.statistic !== null)
    const live = () => this.drift()
    new Gauge({
      name: 'mlops_drift_statistic',
      help: 'Drift of live traffic against the training baseline (PSI, JS distance, KS D or chi-square, per column).',
      labelNames: ['version', 'column', 'target', 'method'],
      registers: [registry],
      // Across serving workers, each profiling its share of the traffic: the largest drift any of them sees.
      aggregator: 'max',
      collect() {
        pending = live()
        this.reset()
        for (const c of columns(pending))
          this.set({version: labels.version, column: c.name, target: c.target, method: c.method}, c.statistic!)
      },
    })
    new Gauge({
      name: 'mlops_drift_detected',
      help: '1 when a column drifted past its threshold, 0 when not; absent without enough data.',
      labelNames: ['version', 'column', 'target'],
      registers: [registry],
      aggregator: 'max',
      collect() {
        const report = pending ?? live()
        pending = undefined
        this.reset()
        for (const c of columns(report))
          this.set({version: labels.version, column: c.name, target: c.target}, c.verdict === 'drift' ? 1 : 0)
      },
    })
  }

  private current(): Window {
    const now = this.now()
    const start = now - (now % this.windowMs)
    let window = this.windows.at(-1)
    if (!window || window.start !== start) {
      window = {start, rows: 0, features: {}, predictions: {}}
      this.windows.push(window)
      if (this.windows.length > this.maxWindows) this.windows.shift()
    }
    return window
  }

  private offer(columns: Record<string, Column>, name: string, value: unknown): void {
    const column = (columns[name] ??= {seen: 0, values: []})
    column.seen++
    if (column.values.length < this.reservoir) column.values.push(value)
    else {
      const j = this.random() % column.seen
      if (j < this.reservoir) column.values[j] = value
    }
  }

  private random(): number {
    // xorshift32
    let x = this.seed
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    this.seed = x >>> 0
    return this.seed
  }
}
