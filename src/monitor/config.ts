// The `monitor` section of mlops.yaml (typed by schemas/config/monitor.schema.json) and the settings drift runs with.
import type {ConfigIssue} from '../errors.js'

export type DriftMethod = 'ks' | 'chi2' | 'psi' | 'jensenshannon'

/** Tests give a p-value (drift below the threshold); distances give a size (drift at or above it). */
export const TEST_METHODS: ReadonlySet<DriftMethod> = new Set(['ks', 'chi2'])

export interface ColumnMonitorConfig {
  method?: DriftMethod
  threshold?: number
  ignore?: boolean
}

/** `monitor.performance`: how predictions are judged against the truth that arrives (mlops feedback, POST /v1/feedback). */
export interface PerformanceConfig {
  task?: 'classification' | 'regression'
  /** The prediction field compared with the truth. Default: label (classification), the first number (regression). */
  prediction?: string
  /** The field holding the positive class's probability, for ROC AUC and calibration. Default: probability. */
  score?: string
  positive?: string | number | boolean
  /** Figures per window of this length (30m, 1h, 1d) as well as over the whole period. */
  window?: string
  /** Labeled predictions a version needs before its gates are judged. Default 30. */
  min_samples?: number
  gates?: Partial<
    Record<
      'min_accuracy' | 'min_precision' | 'min_recall' | 'min_f1' | 'min_roc_auc' | 'max_mae' | 'max_rmse' | 'min_r2',
      number
    >
  >
}

export interface MonitorConfig {
  performance?: PerformanceConfig
  since?: string
  min_samples?: number
  large_sample?: number
  thresholds?: {p_value?: number; psi?: number; jensenshannon?: number; missing_rate?: number; unseen_share?: number}
  features?: Record<string, ColumnMonitorConfig>
}

export interface DriftSettings {
  minSamples: number
  largeSample: number
  thresholds: {pValue: number; psi: number; jensenshannon: number; missingRate: number; unseenShare: number}
  columns: Record<string, ColumnMonitorConfig>
}

export const DEFAULT_SINCE = '24h'

export function driftSettings(config: MonitorConfig = {}): DriftSettings {
  const t = config.thresholds ?? {}
  return {
    minSamples: config.min_samples ?? 100,
    largeSample: config.large_sample ?? 1000,
    thresholds: {
      pValue: t.p_value ?? 0.05,
      psi: t.psi ?? 0.1,
      jensenshannon: t.jensenshannon ?? 0.1,
      missingRate: t.missing_rate ?? 0.1,
      unseenShare: t.unseen_share ?? 0.01,
    },
    columns: config.features ?? {},
  }
}

/** A per-feature threshold for a test is a p-value, so it must be below 1; the schema cannot tie it to the method. */
export function checkMonitorConfig(config: {monitor?: MonitorConfig}): ConfigIssue[] {
  const issues: ConfigIssue[] = []
  for (const [name, column] of Object.entries(config.monitor?.features ?? {})) {
    if (column.method && TEST_METHODS.has(column.method) && column.threshold !== undefined && column.threshold >= 1) {
      issues.push({
        path: `monitor.features.${name}.threshold`,
        message: `must be below 1: with method ${column.method} it is a p-value`,
      })
    }
  }
  return issues
}
