// Model quality on predictions whose truth is known: classification and regression metrics, calibration, intervals. Pure.
import {uniformInt} from 'pure-rand/distribution/uniformInt'
import {xoroshiro128plus} from 'pure-rand/generator/xoroshiro128plus'

export type Label = string | number | boolean

export interface ClassPair {
  truth: string
  predicted: string
  /** The model's probability of the positive class, when it gives one. */
  score?: number
}

export interface Interval {
  low: number
  high: number
}

export interface Estimate {
  value: number
  /** 95% interval: Wilson for proportions, a seeded percentile bootstrap for the rest. */
  ci?: Interval
}

export interface CalibrationBin {
  from: number
  to: number
  count: number
  /** Mean predicted probability in the bin. */
  predicted: number
  /** Share of the bin that was positive. */
  observed: number
}

export interface ClassificationMetrics {
  count: number
  accuracy: Estimate
  precision: Estimate
  recall: Estimate
  f1: Estimate
  /** Binary: precision, recall and F1 of `positive`; several classes: their unweighted mean (macro). */
  average: 'binary' | 'macro'
  positive?: string
  roc_auc?: Estimate
  brier?: number
  calibration?: CalibrationBin[]
}

export interface RegressionMetrics {
  count: number
  mae: Estimate
  rmse: Estimate
  r2: Estimate
}

const Z = 1.959963984540054

/** Wilson score interval of k successes in n. */
export function wilson(k: number, n: number): Interval {
  if (n === 0) return {low: 0, high: 1}
  const p = k / n
  const denominator = 1 + (Z * Z) / n
  const centre = (p + (Z * Z) / (2 * n)) / denominator
  const half = (Z * Math.sqrt((p * (1 - p)) / n + (Z * Z) / (4 * n * n))) / denominator
  return {low: Math.max(0, centre - half), high: Math.min(1, centre + half)}
}

/** Percentile bootstrap of a statistic over resampled indices; seeded, so one run's figures are reproducible. */
export function bootstrap(n: number, statistic: (indices: number[]) => number, rounds = 400, seed = 42): Interval {
  const rng = xoroshiro128plus(seed)
  const values: number[] = []
  const indices = new Array<number>(n)
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < n; i++) indices[i] = uniformInt(rng, 0, n - 1)
    const value = statistic(indices)
    if (Number.isFinite(value)) values.push(value)
  }
  if (values.length === 0) return {low: Number.NaN, high: Number.NaN}
  values.sort((a, b) => a - b)
  const at = (q: number) => values[Math.min(values.length - 1, Math.max(0, Math.floor(q * values.length)))]
  return {low: at(0.025), high: at(0.975)}
}

const all = (n: number) => Array.from({length: n}, (_, i) => i)

function f1Of(precision: number, recall: number): number {
  return precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall)
}

/** Precision, recall and F1 for each class over the chosen indices (sklearn's zero_division=0: an empty ratio is 0). */
function perClass(pairs: ClassPair[], indices: number[], classes: string[]) {
  return classes.map((c) => {
    let tp = 0
    let fp = 0
    let fn = 0
    for (const i of indices) {
      const {truth, predicted} = pairs[i]
      if (predicted === c && truth === c) tp++
      else if (predicted === c) fp++
      else if (truth === c) fn++
    }
    const precision = tp + fp === 0 ? 0 : tp / (tp + fp)
    const recall = tp + fn === 0 ? 0 : tp / (tp + fn)
    return {tp, fp, fn, precision, recall, f1: f1Of(precision, recall)}
  })
}

/** The area under the ROC curve: the Mann-Whitney U with ties counted half (as sklearn's roc_auc_score). */
export function rocAuc(scores: number[], positive: boolean[]): number {
  const order = scores.map((_, i) => i).sort((a, b) => scores[a] - scores[b])
  const ranks = new Array<number>(scores.length)
  for (let i = 0; i < order.length;) {
    let j = i
    while (j + 1 < order.length && scores[order[j + 1]] === scores[order[i]]) j++
    for (let k = i; k <= j; k++) ranks[order[k]] = (i + j) / 2 + 1
    i = j + 1
  }
  let sum = 0
  let positives = 0
  positive.forEach((p, i) => {
    if (p) {
      positives++
      sum += ranks[i]
    }
  })
  const negatives = positive.length - positives
  if (positives === 0 || negatives === 0) return Number.NaN
  return (sum - (positives * (positives + 1)) / 2) / (positives * negatives)
}

/** Equal-width bins of the predicted probability (sklearn 1.2's calibration_curve, strategy "uniform"); empty bins left out. */
export function calibration(scores: number[], positive: boolean[], bins = 10): CalibrationBin[] {
  const sums = Array.from({length: bins}, () => ({count: 0, predicted: 0, observed: 0}))
  // Bins closed on the right, edges k × (1/bins) as numpy's linspace makes them: a score on an edge joins the lower bin.
  const step = 1 / bins
  const edges = Array.from({length: bins - 1}, (_, k) => (k + 1) * step)
  scores.forEach((s, i) => {
    const bin = edges.filter((edge) => edge < s).length
    sums[bin].count++
    sums[bin].predicted += s
    sums[bin].observed += positive[i] ? 1 : 0
  })
  return sums.flatMap((b, k) =>
    b.count === 0
      ? []
      : [
          {
            from: k / bins,
            to: (k + 1) / bins,
            count: b.count,
            predicted: b.predicted / b.count,
            observed: b.observed / b.count,
          },
        ],
  )
}

export function classificationMetrics(pairs: ClassPair[], positiveLabel?: string): ClassificationMetrics {
  const n = pairs.length
  const classes = [...new Set(pairs.flatMap((p) => [p.truth, p.predicted]))].sort()
  const binary = classes.length <= 2 && positiveLabel !== undefined
  const chosen = binary ? [positiveLabel] : classes
  const summary = (indices: number[]) => {
    const stats = perClass(pairs, indices, chosen)
    const mean = (key: 'precision' | 'recall' | 'f1') =>
      stats.reduce((s, c) => s + c[key], 0) / Math.max(1, stats.length)
    return {stats, precision: mean('precision'), recall: mean('recall'), f1: mean('f1')}
  }
  const overall = summary(all(n))
  const correct = pairs.filter((p) => p.truth === p.predicted).length
  const result: ClassificationMetrics = {
    count: n,
    accuracy: {value: n === 0 ? Number.NaN : correct / n, ci: wilson(correct, n)},
    precision: {value: overall.precision},
    recall: {value: overall.recall},
    f1: {value: overall.f1, ci: bootstrap(n, (ix) => summary(ix).f1)},
    average: binary ? 'binary' : 'macro',
  }
  if (binary) {
    const {tp, fp, fn} = overall.stats[0]
    result.positive = positiveLabel
    result.precision.ci = wilson(tp, tp + fp)
    result.recall.ci = wilson(tp, tp + fn)
  } else {
    result.precision.ci = bootstrap(n, (ix) => summary(ix).precision)
    result.recall.ci = bootstrap(n, (ix) => summary(ix).recall)
  }
  const scored = binary && pairs.every((p) => typeof p.score === 'number' && Number.isFinite(p.score))
  if (scored && n > 0) {
    const scores = pairs.map((p) => p.score!)
    const positive = pairs.map((p) => p.truth === positiveLabel)
    const auc = rocAuc(scores, positive)
    if (Number.isFinite(auc))
      result.roc_auc = {
        value: auc,
        ci: bootstrap(n, (ix) =>
          rocAuc(
            ix.map((i) => scores[i]),
            ix.map((i) => positive[i]),
          ),
        ),
      }
    result.brier = scores.reduce((s, v, i) => s + (v - (positive[i] ? 1 : 0)) ** 2, 0) / n
    result.calibration = calibration(scores, positive)
  }
  return result
}

function regressionOf(truth: number[], predicted: number[], indices: number[]) {
  const n = indices.length
  let absolute = 0
  let squared = 0
  let mean = 0
  for (const i of indices) mean += truth[i] / n
  let total = 0
  for (const i of indices) {
    const error = predicted[i] - truth[i]
    absolute += Math.abs(error)
    squared += error * error
    total += (truth[i] - mean) ** 2
  }
  // sklearn's r2_score: 1 when truth is constant and predicted exactly, 0 when constant and missed.
  const r2 = total === 0 ? (squared === 0 ? 1 : 0) : 1 - squared / total
  return {mae: absolute / n, rmse: Math.sqrt(squared / n), r2}
}

export function regressionMetrics(truth: number[], predicted: number[]): RegressionMetrics {
  const n = truth.length
  const overall = regressionOf(truth, predicted, all(n))
  const ci = (key: 'mae' | 'rmse' | 'r2') => bootstrap(n, (ix) => regressionOf(truth, predicted, ix)[key])
  return {
    count: n,
    mae: {value: overall.mae, ci: ci('mae')},
    rmse: {value: overall.rmse, ci: ci('rmse')},
    r2: {value: overall.r2, ci: ci('r2')},
  }
}
