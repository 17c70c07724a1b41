// What a rollout is on disk and on the wire: the desired state, the measurements of a step, the verdicts, the ledger.
import type {AuthSettings} from '../auth/config.js'
import type {TlsSettings} from '../http/tls.js'
import type {AnalysisSettings} from './config.js'

/** Where the candidate stands; `full` means the stable release alone serves. */
export type Stage = 'full' | 'shadow' | 'canary'

export type Phase = 'Progressing' | 'Paused' | 'Healthy' | 'Degraded' | 'RolledBack'

/** One deployable version and how the gateway starts its model server. */
export interface Release {
  version: string
  /** Artifact ref given to `mlops serve` (version, name@version, digest or .tar path). */
  ref?: string
  /** A bare .onnx file served with `mlops serve --model` instead of an artifact (development and tests). */
  model?: string
  digest?: string
  /** Digest of the passed `mlops test` report for this artifact, when one was found. */
  testReport?: string
  /** Kubernetes target: the model server's image, pinned by digest. */
  image?: string
  /** Extra environment of this version's model server (e.g. thread counts, or fault injection in tests). */
  env?: Record<string, string>
}

/** The desired state: written by commands (and by the gateway under --auto), applied by the gateway. */
export interface RolloutState {
  schemaVersion: 1
  /** Bumped by every change, so a writer can tell that someone else changed it meanwhile. */
  revision: number
  stable: Release
  candidate?: Release
  stage: Stage
  /** Candidate's share of client traffic in percent (canary); 0 otherwise. */
  weight: number
  /** Steps advance and roll back by themselves while analysis passes or fails. */
  auto: boolean
  /** When the current stage and weight began: the analysis window and bake time start here. */
  stepStartedAt: string
  /** Rollout settings fixed when the rollout began, so the gateway never needs mlops.yaml. */
  steps: number[]
  analysis: AnalysisSettings
  shadowShare: number
  mirrorMaxInFlight: number
  mirrorConcurrency: number
  stickyHeader?: string
  port: number
  /** HTTPS on the gateway's client port (serving.tls, or deploy --tls-cert/--tls-key); absent: plain HTTP. */
  tls?: TlsSettings
  /** Who may call the gateway's client port (serving.auth, or deploy --auth); absent: anyone. */
  auth?: AuthSettings
  /** Who started the current rollout: the actor the gateway's own changes are recorded under. */
  startedBy?: string
  /** How the last rollout ended. */
  outcome?: Outcome
}

export interface Outcome {
  version: string
  result: 'promoted' | 'rolled-back'
  reason: string
  /** The gate that failed, for a rollback the analysis decided. */
  gate?: string
  at: string
}

/** Requests one version answered (or, in shadow, the candidate answered as mirrors) in the current step. */
export interface VersionStats {
  requests: number
  /** 5xx answers and connection failures. */
  errors: number
  p50Ms?: number
  p99Ms?: number
}

/** Stable's and candidate's answers to the same mirrored requests, compared. */
export interface ShadowStats {
  mirrored: number
  /** Mirrors skipped because too many were in flight or the candidate was not ready. */
  dropped: number
  compared: number
  agreed: number
  /** Compared requests where a label (a string, boolean or integer output) differs. */
  labelFlips: number
  maxScoreDiff: number
  meanScoreDiff: number
}

/** One version's predictions in the step whose truth has arrived (mlops feedback, POST /v1/feedback), and how many were right. */
export interface OutcomeCounts {
  predictions: number
  /** Those whose truth arrived (a label, or a value the prediction could be compared with). */
  labeled: number
  /** Labels: predictions equal to their truth. */
  correct: number
  /** Values: the sum of |prediction − truth| and of its square, over the labeled predictions. */
  absError?: number
  absErrorSq?: number
}

/** What the gateway measured since the step started. */
export interface StepMetrics {
  since: string
  stable: VersionStats
  candidate: VersionStats
  candidateReady: boolean
  shadow?: ShadowStats
  /** With deploy.analysis.gates.outcome: predictions of the step joined to their truth, per version. */
  outcomes?: {stable: OutcomeCounts; candidate: OutcomeCounts}
}

/** Metrics, or why there are none: a failed measurement must fail the analysis, never pass it. */
export interface Measurement {
  metrics?: StepMetrics
  error?: string
  /** The target cannot compare shadow answers, and why: the agreement gate is not judged (said in status). */
  agreementUnavailable?: string
}

export type Verdict = 'pass' | 'fail' | 'inconclusive'

export type GateName = 'error_rate' | 'latency' | 'agreement' | 'outcome' | 'test' | 'measurement' | 'deadline'

export interface GateResult {
  gate: GateName
  verdict: Verdict
  observed?: number
  threshold?: number
  message: string
}

export interface Analysis {
  verdict: Verdict
  reason: string
  gates: GateResult[]
  /** The gate behind a failure. */
  failedGate?: GateName
  elapsedMs: number
}

export interface PhaseResult {
  phase: Phase
  reason: string
  analysis?: Analysis
}

export type Action = 'deploy' | 'promote' | 'rollback' | 'down'

export interface StagePoint {
  stage: Stage
  weight: number
  stable: string
  candidate?: string
}

/** One change of the desired state, as the ledger keeps it. */
export interface Change {
  action: Action
  /** True when the gateway decided it from the analysis (--auto). */
  automatic: boolean
  version: string
  digest?: string
  /** Kubernetes target: the image the version runs, as resolved at deploy. */
  image?: string
  from?: StagePoint
  /** Absent for `down`: nothing serves afterwards. */
  to?: StagePoint
  reason: string
  gate?: string
}

export interface LedgerEntry extends Change {
  at: string
  actor: string
  revision: number
  analysis?: {verdict: Verdict; gates: GateResult[]; metrics?: StepMetrics}
  testReport?: string
}
