// Where a rollout's desired state, ledger and lock live: files in the project (local target) or objects in the cluster.
import type {Transition} from './plan.js'
import {
  type ChangeRecord,
  type DeployPaths,
  type Ledger,
  appendLedger,
  commitTransition,
  readLedger,
  readState,
  removeState,
  withLock,
} from './state.js'
import type {LedgerEntry, RolloutState} from './types.js'

export interface RolloutStore {
  readState(): Promise<RolloutState | undefined>
  /** The commit point of a change: the new desired state and its ledger entry. */
  commit(transition: Transition, record: ChangeRecord): Promise<LedgerEntry>
  append(entry: LedgerEntry): Promise<void>
  readLedger(): Promise<Ledger>
  removeState(): Promise<void>
  /** Runs `fn` holding the deploy lock; refuses (DEPLOY_LOCKED, exit 3) when a live holder has it past `waitMs`. */
  withLock<T>(command: string, fn: () => Promise<T>, options?: {waitMs?: number}): Promise<T>
}

/** The local target's store: .mlops/deploy/ in the project. */
export class FileStore implements RolloutStore {
  constructor(readonly paths: DeployPaths) {}

  readState(): Promise<RolloutState | undefined> {
    return readState(this.paths)
  }

  commit(transition: Transition, record: ChangeRecord): Promise<LedgerEntry> {
    return commitTransition(this.paths, transition, record)
  }

  append(entry: LedgerEntry): Promise<void> {
    return appendLedger(this.paths, entry)
  }

  readLedger(): Promise<Ledger> {
    return readLedger(this.paths)
  }

  removeState(): Promise<void> {
    return removeState(this.paths)
  }

  withLock<T>(command: string, fn: () => Promise<T>, options?: {waitMs?: number}): Promise<T> {
    return withLock(this.paths, command, fn, options)
  }
}
