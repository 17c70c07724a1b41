// The gateway's own loop: follows the desired state on disk, and under --auto promotes or rolls back from the analysis.
import {calculatePhase} from '../../rollout/phase.js'
import {decideAuto} from '../../rollout/plan.js'
import {type DeployPaths, acquireLock, commitTransition, readState} from '../../rollout/state.js'
import type {Gateway} from './gateway.js'

export interface ControllerOptions {
  gateway: Gateway
  paths: DeployPaths
  log: (line: string) => void
  now?: () => Date
  /** How often the state file is re-read, ms. */
  pollMs?: number
}

export class Controller {
  private timer?: NodeJS.Timeout
  private lastJudged = 0
  private running = false
  private readonly now: () => Date

  constructor(private readonly options: ControllerOptions) {
    this.now = options.now ?? (() => new Date())
  }

  start(): void {
    const loop = () => {
      this.timer = setTimeout(() => void this.tick().finally(() => this.running && loop()), this.options.pollMs ?? 500)
    }
    this.running = true
    loop()
  }

  stop(): void {
    this.running = false
    clearTimeout(this.timer)
  }

  async tick(): Promise<void> {
    const {gateway, paths, log} = this.options
    try {
      const disk = await readState(paths)
      if (!disk) return
      // A command wrote the state but died before telling the gateway: apply it anyway.
      if (disk.revision !== gateway.revision) await gateway.apply(disk)
      const state = gateway.current
      if (!state?.auto || !state.candidate) return
      const now = this.now()
      if (now.getTime() - this.lastJudged < state.analysis.intervalMs) return
      this.lastJudged = now.getTime()
      const phase = calculatePhase(state, gateway.measurement(), now)
      const transition = decideAuto(state, phase, now)
      if (!transition) return
      let lock
      try {
        lock = await acquireLock(paths, `gateway pid ${process.pid} (automatic ${transition.change.action})`)
      } catch (error) {
        if ((error as {code?: string}).code === 'DEPLOY_LOCKED') return // a command is changing the rollout right now; judge again next time
        throw error
      }
      try {
        const again = await readState(paths)
        if (again?.revision !== state.revision) return
        await commitTransition(paths, transition, {
          at: now,
          actor: `gateway (--auto${state.startedBy ? `, started by ${state.startedBy}` : ''})`,
          analysis: phase.analysis,
          metrics: gateway.measurement().metrics,
        })
        log(`${transition.change.action} ${transition.change.version}: ${transition.change.reason}`)
        // Still under the lock, as commands do: whoever reads the new state next finds it applied.
        await gateway.apply(transition.state)
      } finally {
        lock.release()
      }
    } catch (error) {
      log(`controller: ${(error as Error).message}`)
    }
  }
}
