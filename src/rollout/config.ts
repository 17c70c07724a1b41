// The `deploy` section of mlops.yaml (typed by schemas/config/deploy.schema.json) and the settings a rollout runs with.
import {availableParallelism} from 'node:os'

import type {AuthSettings} from '../auth/config.js'
import type {TlsSettings} from '../http/tls.js'
import type {ConfigIssue} from '../errors.js'
import type {KubernetesConfig} from '../targets/kubernetes/config.js'

export interface DeployConfig {
  /** Where releases run (default local); `--target` overrides it. */
  target?: 'local' | 'kubernetes'
  kubernetes?: KubernetesConfig
  /** Port of the gateway's client traffic (default 8080). */
  port?: number
  /** Local gateway: processes serving its client port (default one per four cores, at least 1). */
  gateway_workers?: number
  /** Canary weights in percent, strictly increasing; past the last one `promote` goes to full. */
  steps?: number[]
  /** A request header whose value keeps one user on one version during a canary (otherwise weighted random). */
  sticky_header?: string
  shadow?: {
    /** Share of prediction requests mirrored to the candidate during shadow (0..1, default 1). */
    share?: number
    /** Mirrored requests held at most (waiting or at the candidate); past it mirrors are dropped before they cost the client anything. */
    max_in_flight?: number
    /** Mirrors at the candidate at once; the rest wait their turn in the gateway, so a burst runs when the cores are free. */
    concurrency?: number
  }
  analysis?: {
    /** Kubernetes target: where error rates and latency per version are read. */
    prometheus?: {url: string; selector?: string}
    /** How often the gateway judges the step when the rollout advances by itself. */
    interval_seconds?: number
    /** Requests each version must have seen in the step before any gate is judged. */
    min_requests?: number
    /** A step passes only after this long, even when every gate passes earlier. */
    bake_seconds?: number
    /** Still without enough data after this long, the step fails. */
    deadline_seconds?: number
    gates?: {
      error_rate?: {max_increase?: number}
      latency?: {max_p99_ratio?: number; slack_ms?: number}
      agreement?: {min_rate?: number; tolerance?: number}
      test?: {required?: boolean}
      outcome?: {
        max_drop?: number
        max_mae_ratio?: number
        min_samples?: number
        confidence?: number
        prediction?: string
      }
    }
  }
}

export interface AnalysisSettings {
  intervalMs: number
  minRequests: number
  bakeMs: number
  deadlineMs: number
  /** Candidate error rate minus stable's, at most. */
  maxErrorRateIncrease: number
  /** Candidate p99 at most this times stable's p99 plus `p99SlackMs` (the slack keeps sub-millisecond noise from failing it). */
  maxP99Ratio: number
  p99SlackMs: number
  /** Shadow: share of compared requests whose answers agree, at least. */
  minAgreement: number
  /** Scores agree when within this relative difference (or absolutely, near zero). */
  scoreTolerance: number
  /** Deploy refuses a candidate without a passed `mlops test` report for its digest. */
  requireTest: boolean
  /** The candidate's results on the truth that arrives, against stable's (deploy.analysis.gates.outcome). */
  outcome?: OutcomeGateSettings
}

export interface OutcomeGateSettings {
  /** Labels: stable's accuracy minus the candidate's, at most. */
  maxDrop: number
  /** Values: the candidate's mean absolute error at most this times stable's. */
  maxMaeRatio: number
  /** Labeled predictions each version needs before the gate is judged. */
  minSamples: number
  /** Of the one-sided interval on the drop: pass when its upper end is within maxDrop, fail when its lower end is past it. */
  confidence: number
  /** The prediction field compared with the truth (default: label for labels, the first numeric field for values). */
  prediction?: string
  /** The request log both versions write (serving.request_log.path, absolute); feedback is beside it. */
  requestLog: string
}

export interface DeploySettings {
  port: number
  steps: number[]
  stickyHeader?: string
  shadowShare: number
  mirrorMaxInFlight: number
  mirrorConcurrency: number
  analysis: AnalysisSettings
  /** serving.auth (or deploy --auth), for the gateway's client port. */
  auth?: AuthSettings
  /** serving.tls (or deploy --tls-cert/--tls-key), for the gateway's client port. */
  tls?: TlsSettings
}

export const DEFAULT_STEPS = [5, 25, 50, 100]

/**
 * Mirrors at the candidate at once: one per two cores. The candidate runs only on cores client traffic leaves idle, yet
 * each mirror it works on still costs stable some latency (on 2 cores at 1500–1600 req/s, interleaved rounds against a
 * gateway without shadow: +10% and +64% with one, +50% and +89% with two, +81–103% with three or sixteen; at 750 req/s
 * all within noise, with 95% of requests mirrored with one and 98% with two). Fewer at once is never worse for stable.
 * Above one, mirrors are pipelined on one connection and those arriving within 2 ms leave together (mirror-worker.ts):
 * about half the candidate's CPU per mirror, yet stable's p99 cost stayed +22% with 2, 4 or 8 at once (README).
 */
export const DEFAULT_MIRROR_CONCURRENCY = Math.max(1, Math.floor(availableParallelism() / 2))

/**
 * Processes serving the local gateway's client port. One per four cores by default: the gateway's hop costs about as much
 * CPU per request as a small model's whole answer (measured on xgboost_regressor), and the model servers need the rest.
 */
export function gatewayWorkers(config: DeployConfig = {}): number {
  return config.gateway_workers ?? Math.max(1, Math.floor(availableParallelism() / 4))
}

export function deploySettings(config: DeployConfig = {}): DeploySettings {
  const a = config.analysis ?? {}
  const g = a.gates ?? {}
  return {
    port: config.port ?? 8080,
    steps: config.steps ?? DEFAULT_STEPS,
    stickyHeader: config.sticky_header?.toLowerCase(),
    shadowShare: config.shadow?.share ?? 1,
    mirrorMaxInFlight: config.shadow?.max_in_flight ?? 64,
    mirrorConcurrency: config.shadow?.concurrency ?? DEFAULT_MIRROR_CONCURRENCY,
    analysis: {
      intervalMs: (a.interval_seconds ?? 5) * 1000,
      minRequests: a.min_requests ?? 100,
      bakeMs: (a.bake_seconds ?? 60) * 1000,
      deadlineMs: (a.deadline_seconds ?? 600) * 1000,
      maxErrorRateIncrease: g.error_rate?.max_increase ?? 0.01,
      maxP99Ratio: g.latency?.max_p99_ratio ?? 1.5,
      p99SlackMs: g.latency?.slack_ms ?? 5,
      minAgreement: g.agreement?.min_rate ?? 0.99,
      scoreTolerance: g.agreement?.tolerance ?? 1e-3,
      requireTest: g.test?.required ?? false,
      ...(g.outcome
        ? {
            outcome: {
              maxDrop: g.outcome.max_drop ?? 0.02,
              maxMaeRatio: g.outcome.max_mae_ratio ?? 1.1,
              minSamples: g.outcome.min_samples ?? 100,
              confidence: g.outcome.confidence ?? 0.95,
              ...(g.outcome.prediction ? {prediction: g.outcome.prediction} : {}),
              requestLog: '',
            },
          }
        : {}),
    },
  }
}

/** What the schema cannot say: steps rise, and a deadline leaves room for the bake time. */
export function checkDeployConfig(config: {deploy?: DeployConfig}): ConfigIssue[] {
  const deploy = config.deploy
  if (!deploy) return []
  const issues: ConfigIssue[] = []
  deploy.steps?.forEach((step, i) => {
    if (i > 0 && step <= deploy.steps![i - 1])
      issues.push({path: `deploy.steps[${i}]`, message: `must be above the step before it (${deploy.steps![i - 1]})`})
  })
  const a = deploy.analysis
  if (a?.bake_seconds !== undefined && a.deadline_seconds !== undefined && a.deadline_seconds < a.bake_seconds) {
    issues.push({
      path: 'deploy.analysis.deadline_seconds',
      message: `must be at least bake_seconds (${a.bake_seconds}): a step cannot pass before it bakes`,
    })
  }
  return issues
}
