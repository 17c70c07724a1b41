// What `status --watch` shows at one moment: the status (or that nothing is deployed yet) and the ledger of the rollout.
import type {TargetChoice} from '../targets/select.js'
import {isMlopsError} from '../errors.js'
import {type StatusResult, history, status} from './deploy.js'
import type {LedgerEntry} from './types.js'

export interface WatchFrame {
  at: Date
  /** Absent before the first deploy. */
  status?: StatusResult
  /** Why no status could be read this time (the next frame tries again). */
  error?: string
  /** The entries of the latest rollout: from the deploy that started it to its promotion or rollback. */
  rollout: LedgerEntry[]
}

export async function watchFrame(options: {dir: string; now?: () => Date; where?: TargetChoice}): Promise<WatchFrame> {
  const at = (options.now ?? (() => new Date()))()
  // The status first: a change writes the state, then its ledger entry, so the ledger read after is never behind it.
  const read = await status({dir: options.dir, now: options.now, where: options.where}).then(
    (result) => ({status: result}),
    (error: unknown) => {
      if (isMlopsError(error) && error.code === 'NOT_DEPLOYED') return {}
      return {error: (error as Error).message}
    },
  )
  const {entries} = await history({dir: options.dir, where: options.where})
  return {at, ...read, rollout: latestRollout(entries)}
}

/** From the last deploy of a candidate (shadow or canary) on; a release deployed in full starts none. */
export function latestRollout(entries: readonly LedgerEntry[]): LedgerEntry[] {
  const start = entries.findLastIndex((e) => e.action === 'deploy' || e.action === 'down')
  if (start < 0) return []
  const first = entries[start]
  if (first.action === 'down' || first.to?.stage === 'full') return []
  return entries.slice(start)
}
