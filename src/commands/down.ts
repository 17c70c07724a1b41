import {confirm} from '@inquirer/prompts'
import {Flags} from '@oclif/core'

import {BaseCommand} from '../base-command.js'
import {UsageError} from '../errors.js'
import {type DownResult, down} from '../rollout/deploy.js'
import {isInteractive} from '../system/terminal.js'
import {targetChoice, targetFlags} from '../target-flags.js'

export default class Down extends BaseCommand {
  static override summary = 'Stop the gateway and its model servers; clients get no answers afterwards.'
  static override description = `The gateway stops taking requests, lets the ones in flight finish, and stops every model server. The ledger keeps the history; the next "mlops deploy VERSION --full" starts again.

Exit codes: 0 stopped (or nothing was running), 1 failed, 2 usage error (no --yes without a terminal), 3 another command holds the deploy lock.`

  static override examples = ['<%= config.bin %> down', '<%= config.bin %> down --yes --json']

  static override flags = {
    ...targetFlags,
    yes: Flags.boolean({char: 'y', description: 'Do not ask for confirmation.', env: 'MLOPS_YES'}),
    actor: Flags.string({description: 'Who stops it, for the ledger. Default: the git user.', env: 'MLOPS_ACTOR'}),
  }

  async run(): Promise<DownResult> {
    const {flags} = await this.parse(Down)
    if (!flags.yes) {
      if (this.jsonEnabled() || !isInteractive(process.stdin))
        throw new UsageError('CONFIRMATION_REQUIRED', 'mlops down stops serving traffic; pass --yes to confirm', {
          hint: 'Run "mlops down --yes".',
        })
      if (
        !(await confirm(
          {message: 'Stop the gateway and every model server?', default: false},
          {output: process.stderr},
        ))
      )
        return {stopped: false}
    }
    const result = await down({dir: flags.dir, actor: flags.actor, where: targetChoice(flags)})
    this.say(result.stopped ? `stopped the gateway (pid ${result.pid})` : 'no gateway was running')
    return result
  }
}
