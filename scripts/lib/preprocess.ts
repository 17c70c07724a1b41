// The example's preprocessing, fitted on the training rows: impute → log1p → standardize, one-hot, boolean as 0/1.
import {type Applicant, EMPLOYMENT, REGIONS} from './applicants.js'

export const NUMERIC_FEATURES = ['age', 'income', 'debt_ratio', 'credit_history_months'] as const
export type NumericFeature = (typeof NUMERIC_FEATURES)[number]

/** Categories in the order their one-hot columns appear; a value outside the list encodes as all zeros. */
export const CATEGORIES = {region: REGIONS, employment: EMPLOYMENT} as const
export type CategoricalFeature = keyof typeof CATEGORIES

/** The order features are concatenated into the model input `features`. */
export const FEATURE_ORDER = [...NUMERIC_FEATURES, 'region', 'employment', 'has_prior_default'] as const

/** The names of the model input's columns, e.g. `region=north`. */
export const COLUMNS: readonly string[] = FEATURE_ORDER.flatMap((f) =>
  f === 'region' || f === 'employment' ? CATEGORIES[f].map((c) => `${f}=${c}`) : [f],
)

export interface FittedPreprocessing {
  incomeMedian: number
  scale: Record<NumericFeature, {mean: number; std: number}>
}

/** Statistics as they are written to mlops.yaml; the model is trained on exactly these, so serving reproduces it. */
function roundStatistic(x: number): number {
  return Number(x.toPrecision(10))
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

/** Numeric values after imputation and log1p, before standardizing. */
function unscaled(applicant: Applicant, feature: NumericFeature, incomeMedian: number): number {
  if (feature === 'income') return Math.log1p(applicant.income ?? incomeMedian)
  return applicant[feature]
}

/** Median of the known incomes; mean and population std (ddof=0, like sklearn's StandardScaler) of each numeric feature. */
export function fitPreprocessing(applicants: readonly Applicant[]): FittedPreprocessing {
  const incomeMedian = roundStatistic(median(applicants.flatMap((a) => (a.income === null ? [] : [a.income]))))
  const scale = {} as FittedPreprocessing['scale']
  for (const feature of NUMERIC_FEATURES) {
    const values = applicants.map((a) => unscaled(a, feature, incomeMedian))
    const mean = values.reduce((a, b) => a + b, 0) / values.length
    const variance = values.reduce((a, v) => a + (v - mean) ** 2, 0) / values.length
    scale[feature] = {mean: roundStatistic(mean), std: roundStatistic(Math.sqrt(variance))}
  }
  return {incomeMedian, scale}
}

/** One applicant's row of the model input, in float64. */
export function encodeApplicant(applicant: Applicant, fitted: FittedPreprocessing): Float64Array {
  const row = new Float64Array(COLUMNS.length)
  let column = 0
  for (const feature of NUMERIC_FEATURES) {
    const {mean, std} = fitted.scale[feature]
    row[column++] = (unscaled(applicant, feature, fitted.incomeMedian) - mean) / std
  }
  for (const feature of ['region', 'employment'] as const) {
    const categories: readonly string[] = CATEGORIES[feature]
    const index = categories.indexOf(applicant[feature])
    if (index >= 0) row[column + index] = 1
    column += categories.length
  }
  row[column] = applicant.has_prior_default ? 1 : 0
  return row
}

/** Rows of the model input, row-major [n, COLUMNS.length]. */
export function encodeApplicants(applicants: readonly Applicant[], fitted: FittedPreprocessing): Float64Array {
  const k = COLUMNS.length
  const out = new Float64Array(applicants.length * k)
  applicants.forEach((a, i) => out.set(encodeApplicant(a, fitted), i * k))
  return out
}
