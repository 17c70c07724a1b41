// Where releases run: the interface the rollout core drives, implemented by the local gateway and by a Kubernetes cluster.
import type {TlsSettings} from '../http/tls.js'
import type {Measurement, Release, RolloutState} from '../rollout/types.js'

/**
 * A model server a state needs. The candidate runs in the background (lower CPU priority) while it only answers shadow
 * copies: on a machine it shares with stable, its work waits behind the client traffic stable serves.
 */
export interface ServerSpec {
  release: Release
  background?: boolean
}

/** The servers a desired state runs: stable, and the candidate unless the stage is full. */
export function serversOf(state: Pick<RolloutState, 'stable' | 'candidate' | 'stage'>): {
  stable: ServerSpec
  candidate?: ServerSpec
} {
  return {
    stable: {release: state.stable},
    ...(state.candidate && state.stage !== 'full'
      ? {candidate: {release: state.candidate, ...(state.stage === 'shadow' ? {background: true} : {})}}
      : {}),
  }
}

export interface TargetServer {
  version: string
  role: 'stable' | 'candidate' | 'retiring'
  pid?: number
  url?: string
  /** Runs at a lower CPU priority (a shadow candidate). */
  background?: boolean
  ready: boolean
  restarts: number
  inFlight: number
}

export interface TargetRuntime {
  /** The local gateway's process; none on a cluster. */
  pid?: number
  /** Port of client traffic. */
  port: number
  startedAt: string
  /** The desired-state revision the target has applied. */
  revision?: number
  servers: TargetServer[]
}

export interface DeployTarget {
  /** True when nothing but the command advances an --auto rollout (a cluster has no mlops controller). */
  readonly drivesRollout?: boolean
  /** Where clients reach the model; default the local gateway's port on 127.0.0.1. */
  url?(): string
  /** Why this target cannot compare shadow answers (the agreement gate), when it cannot. */
  readonly shadowAgreementUnavailable?: string
  /** Something about how traffic flows that the user must know (a fallback that ignores weights). */
  readonly warning?: string
  /** A cluster's context and namespace. */
  where?(): {namespace?: string; context?: string}
  /** Every object a state needs, for --dry-run and --output yaml (targets that apply manifests). */
  manifests?(state: RolloutState): unknown[]
  /** Starts the target if it is not running, then each server, resolving once all are ready; routing is unchanged. */
  /** Starts what serves (the gateway on `port`, with HTTPS when `tls` is given) and the model servers. */
  prepare(servers: ServerSpec[], port: number, tls?: TlsSettings): Promise<void>
  /** Checks, changing nothing, that the target will accept the routing of `state` before it is committed. */
  preflight?(state: RolloutState): Promise<void>
  /** Makes the running target follow the desired state on disk; a no-op when it is not running. */
  reconcile(): Promise<void>
  /** What the target measures for the current step, or why it cannot (never an empty success). */
  observe(): Promise<{measurement: Measurement; runtime?: TargetRuntime}>
  /** Stops serving; true when something was running. */
  stop(): Promise<{stopped: boolean; pid?: number}>
}
