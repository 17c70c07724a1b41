// The result of "mlops monitor --performance", apart from the code that computes it, which its reports would import otherwise.
import type {ClassificationMetrics, RegressionMetrics} from './outcomes.js'

export type Task = 'classification' | 'regression'
export type Metrics = ClassificationMetrics | RegressionMetrics

export interface PerformanceGate {
  gate: string
  metric: string
  verdict: 'pass' | 'fail' | 'not_enough_data'
  observed?: number
  threshold: number
  message: string
}

export interface VersionPerformance {
  version: string
  predictions: number
  labeled: number
  /** Share of the predictions whose truth has arrived. */
  coverage: number
  metrics?: Metrics
  windows: {from: string; to: string; predictions: number; labeled: number; metrics?: Metrics}[]
  gates: PerformanceGate[]
}

export interface PerformanceResult {
  verdict: 'ok' | 'fail' | 'not_enough_data'
  task: Task
  window: {since: string; from: string; to: string}
  files: string[]
  feedback: {file: string; items: number}
  versions: VersionPerformance[]
  failed: string[]
  reports: {junit?: string; html?: string}
}
