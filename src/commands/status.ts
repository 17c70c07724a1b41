import {setTimeout as sleep} from 'node:timers/promises'

import {Flags} from '@oclif/core'

import {BaseCommand} from '../base-command.js'
import {ExitCode, UsageError} from '../errors.js'
import {type StatusResult, status} from '../rollout/deploy.js'
import {renderStatus} from '../rollout/render.js'
import {targetChoice, targetFlags} from '../target-flags.js'

export default class Status extends BaseCommand {
  static override summary =
    'Where the rollout stands: phase and why, weights, live metrics per version, the analysis verdict.'
  static override description = `Phases: Healthy (one release serves everything), Progressing (--auto, moving on), Paused (waiting for "mlops promote"), Degraded (a gate fails, or the gateway is down), RolledBack (the last candidate was taken out).

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
      description: 'Redraw every --interval seconds until the rollout ends (not with --json).',
    }),
    interval: Flags.integer({description: 'Seconds between redraws with --watch.', default: 2, min: 1}),
  }

  async run(): Promise<StatusResult> {
    const {flags} = await this.parse(Status)
    if (flags.watch && this.jsonEnabled())
      throw new UsageError('WATCH_JSON', '--watch draws for a person; it does not go with --json', {
        hint: 'Poll "mlops status --json", or block with "mlops deploy … --wait".',
      })
    const where = targetChoice(flags)
    let result = await status({dir: flags.dir, where})
    while (flags.watch && result.candidate) {
      process.stdout.write(`\u001B[2J\u001B[H${new Date().toLocaleTimeString()}\n${renderStatus(result)}\n`)
      await sleep(flags.interval * 1000)
      result = await status({dir: flags.dir, where})
    }
    this.say(renderStatus(result))
    if (result.phase === 'Degraded') process.exitCode = ExitCode.failed
    return result
  }
}
