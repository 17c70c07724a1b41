// What the gateway counts per step: requests, errors and a latency histogram per version, and the shadow comparisons.
import type {ShadowStats, StepMetrics, VersionStats} from '../../rollout/types.js'
import type {AnswerComparison} from './compare.js'

/** Log-spaced buckets, 5% apart from 10 µs up: quantiles within 5% at a fixed, tiny cost per request. */
const BASE_MS = 0.01
const GROWTH = Math.log(1.05)
const BUCKETS = 400

export class LatencyHistogram {
  private readonly counts = new Uint32Array(BUCKETS)
  private total = 0

  record(ms: number): void {
    const index = ms <= BASE_MS ? 0 : Math.min(BUCKETS - 1, Math.ceil(Math.log(ms / BASE_MS) / GROWTH))
    this.counts[index]++
    this.total++
  }

  /** The upper edge of the bucket holding the q-quantile; undefined when empty. */
  quantile(q: number): number | undefined {
    if (this.total === 0) return undefined
    const rank = Math.max(1, Math.ceil(q * this.total))
    let seen = 0
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i]
      if (seen >= rank) return BASE_MS * Math.exp(i * GROWTH)
    }
    return BASE_MS * Math.exp((BUCKETS - 1) * GROWTH)
  }

  /** The buckets that hold anything, as index and count pairs: what a gateway worker reports to the gateway. */
  state(): number[] {
    const pairs: number[] = []
    for (let i = 0; i < BUCKETS; i++) if (this.counts[i] > 0) pairs.push(i, this.counts[i])
    return pairs
  }

  /** Adds another histogram's `state()`; pairs out of range are ignored. */
  add(pairs: readonly number[]): void {
    for (let i = 0; i + 1 < pairs.length; i += 2) {
      const [index, count] = [pairs[i], pairs[i + 1]]
      if (!Number.isInteger(index) || index < 0 || index >= BUCKETS || !(count > 0)) continue
      this.counts[index] += count
      this.total += count
    }
  }
}

/** A version's counts, as a gateway worker reports them. */
export interface CounterState {
  requests: number
  errors: number
  /** Latency buckets: index and count pairs. */
  latency: number[]
}

export class VersionCounter {
  requests = 0
  errors = 0
  readonly latency = new LatencyHistogram()

  record(ms: number, failed: boolean): void {
    this.requests++
    if (failed) this.errors++
    this.latency.record(ms)
  }

  state(): CounterState {
    return {requests: this.requests, errors: this.errors, latency: this.latency.state()}
  }

  add(state: CounterState): void {
    this.requests += state.requests
    this.errors += state.errors
    this.latency.add(state.latency)
  }

  snapshot(): VersionStats {
    const p50 = this.latency.quantile(0.5)
    const p99 = this.latency.quantile(0.99)
    return {
      requests: this.requests,
      errors: this.errors,
      ...(p50 === undefined ? {} : {p50Ms: round(p50)}),
      ...(p99 === undefined ? {} : {p99Ms: round(p99)}),
    }
  }
}

export interface ComparisonTotals {
  compared: number
  agreed: number
  labelFlips: number
  maxScoreDiff: number
  sumScoreDiff: number
}

export class ShadowCounter {
  mirrored = 0
  dropped = 0
  compared = 0
  agreed = 0
  labelFlips = 0
  maxScoreDiff = 0
  private sumScoreDiff = 0

  /** Comparisons counted elsewhere (the mirror thread), added in one go. */
  merge(totals: ComparisonTotals): void {
    this.compared += totals.compared
    this.agreed += totals.agreed
    this.labelFlips += totals.labelFlips
    this.maxScoreDiff = Math.max(this.maxScoreDiff, totals.maxScoreDiff)
    this.sumScoreDiff += totals.sumScoreDiff
  }

  totals(): ComparisonTotals {
    return {
      compared: this.compared,
      agreed: this.agreed,
      labelFlips: this.labelFlips,
      maxScoreDiff: this.maxScoreDiff,
      sumScoreDiff: this.sumScoreDiff,
    }
  }

  recordComparison(result: AnswerComparison): void {
    this.compared++
    if (result.agree) this.agreed++
    if (result.labelFlip) this.labelFlips++
    this.maxScoreDiff = Math.max(this.maxScoreDiff, result.scoreDiff)
    this.sumScoreDiff += result.scoreDiff
  }

  snapshot(): ShadowStats {
    return {
      mirrored: this.mirrored,
      dropped: this.dropped,
      compared: this.compared,
      agreed: this.agreed,
      labelFlips: this.labelFlips,
      maxScoreDiff: this.maxScoreDiff,
      meanScoreDiff: this.compared === 0 ? 0 : this.sumScoreDiff / this.compared,
    }
  }
}

/** The counters of one step: replaced whole when the step changes, so nothing from the last step leaks into the next. */
export class StepWindow {
  readonly stable = new VersionCounter()
  readonly candidate = new VersionCounter()
  readonly shadow = new ShadowCounter()
  /** What each gateway worker counted in this step, as it last reported it, by worker id. */
  readonly workers = new Map<number, Record<'stable' | 'candidate', CounterState>>()

  constructor(readonly since: string) {}

  snapshot(candidateReady: boolean, shadow: boolean): StepMetrics {
    return {
      since: this.since,
      stable: this.counted('stable').snapshot(),
      candidate: this.counted('candidate').snapshot(),
      candidateReady,
      ...(shadow ? {shadow: this.shadow.snapshot()} : {}),
    }
  }

  /** This process's counts of a version and its workers' together. */
  private counted(role: 'stable' | 'candidate'): VersionCounter {
    if (this.workers.size === 0) return this[role]
    const sum = new VersionCounter()
    sum.add(this[role].state())
    for (const counts of this.workers.values()) sum.add(counts[role])
    return sum
  }
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000
}
