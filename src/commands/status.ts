import {setTimeout as sleep} from 'node:timers/promises'

import {Flags} from '@oclif/core'
import {createLogUpdate} from 'log-update'

import {BaseCommand} from '../base-command.js'
import {ExitCode, UsageError} from '../errors.js'
import {durationFlag} from '../flags.js'
import {type StatusResult, status} from '../rollout/deploy.js'
import {renderStatus, renderWatch} from '../rollout/render.js'
import {watchFrame} from '../rollout/watch.js'
import {targetChoice, targetFlags} from '../target-flags.js'
import type {TargetChoice} from '../targets/select.js'
import {isInteractive} from '../system/terminal.js'

export default class Status extends BaseCommand {
  static override summary =
    'Where the rollout stands: phase and why, step n of m, weights, live metrics per role, each gate with its figures.'
  static override description = `Phases: Healthy (one release serves everything), Progressing (--auto, moving on), Paused (waiting for "mlops promote"), Degraded (a gate fails, or the gateway is down), RolledBack (the last candidate was taken out).

--watch follows rollouts until Ctrl-C: it may start before the first deploy, redraws in place on a terminal (a frame per change otherwise), and lists the steps of the latest rollout with the gates at its end.

Exit codes: 0 shown, 1 the phase is Degraded, 2 nothing is deployed or usage error.`

  static override examples = [
    '<%= config.bin %> status',
    '<%= config.bin %> status --watch',
    '<%= config.bin %> status --json',
  ]

  static override flags = {
    ...targetFlags,
    watch: Flags.boolean({
      char: 'w',
      description: 'Follow the rollout, redrawing every --interval, until Ctrl-C (not with --json).',
    }),
    interval: durationFlag({
      description: 'Time between redraws with --watch, e.g. 1s or 500ms.',
      default: 1000,
      min: 200,
    }),
  }

  async run(): Promise<StatusResult | undefined> {
    const {flags} = await this.parse(Status)
    if (flags.watch && this.jsonEnabled())
      throw new UsageError('WATCH_JSON', '--watch draws for a person; it does not go with --json', {
        hint: 'Poll "mlops status --json", or block with "mlops deploy … --wait".',
      })
    const where = targetChoice(flags)
    if (flags.watch) return this.watch(flags.dir, flags.interval, where)
    const result = await status({dir: flags.dir, where})
    this.say(renderStatus(result, this.colors))
    if (result.phase === 'Degraded') process.exitCode = ExitCode.failed
    return result
  }

  /** Never returns: Ctrl-C ends it, and the last frame stays on the screen. */
  private async watch(dir: string, intervalMs: number, where: TargetChoice): Promise<undefined> {
    // On a terminal the frame is redrawn in place (cursor moves, not a cleared screen); piped, each change is appended.
    const draw = isInteractive(process.stdout) ? createLogUpdate(process.stdout) : appendChanged()
    for (;;) {
      draw(renderWatch(await watchFrame({dir, where}), this.colors))
      await sleep(intervalMs)
    }
  }
}

function appendChanged(): (frame: string) => void {
  let last = ''
  return (frame) => {
    // The first line holds the clock: a frame counts as new when anything below it changed.
    const body = frame.slice(frame.indexOf('\n'))
    if (body !== last) process.stdout.write(`${frame}\n\n`)
    last = body
  }
}
