// Where releases run: the interface the rollout core drives. The local gateway is the one implementation so far.
import type {Measurement, Release} from '../rollout/types.js'

export interface TargetServer {
  version: string
  role: 'stable' | 'candidate' | 'retiring'
  pid?: number
  url?: string
  ready: boolean
  restarts: number
  inFlight: number
}

export interface TargetRuntime {
  pid: number
  /** Port of client traffic. */
  port: number
  startedAt: string
  /** The desired-state revision the target has applied. */
  revision?: number
  servers: TargetServer[]
}

export interface DeployTarget {
  /** Starts the target if it is not running, then a server for each release, resolving once all are ready; routing is unchanged. */
  prepare(releases: Release[], port: number): Promise<void>
  /** Makes the running target follow the desired state on disk; a no-op when it is not running. */
  reconcile(): Promise<void>
  /** What the target measures for the current step, or why it cannot (never an empty success). */
  observe(): Promise<{measurement: Measurement; runtime?: TargetRuntime}>
  /** Stops serving; true when something was running. */
  stop(): Promise<{stopped: boolean; pid?: number}>
}
