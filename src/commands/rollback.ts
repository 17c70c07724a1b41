import {Flags} from '@oclif/core'

import {BaseCommand} from '../base-command.js'
import {type RolloutPlan, type RolloutResult, dryRun, rollback} from '../rollout/deploy.js'
import {renderPlan, renderStatus} from '../rollout/render.js'
import {forceConflictsFlag, targetChoice, targetFlags} from '../target-flags.js'

export default class Rollback extends BaseCommand {
  static override summary = 'Take the candidate out at once; the stable release keeps serving.'
  static override description = `Routing moves back to stable in one step (requests already sent to the candidate are answered), then the candidate's server stops. If the gateway died, it is started again first.

Exit codes: 0 rolled back, 1 failed, 2 no rollout in progress or usage error, 3 another command holds the deploy lock.`

  static override examples = [
    '<%= config.bin %> rollback',
    '<%= config.bin %> rollback --reason "label flips on segment B" --json',
  ]

  static override flags = {
    ...targetFlags,
    ...forceConflictsFlag,
    reason: Flags.string({description: 'Why, for the ledger.'}),
    'dry-run': Flags.boolean({
      description: 'Print the change this would make, and what runs now; start, lock and write nothing.',
    }),
    actor: Flags.string({description: 'Who rolls back, for the ledger. Default: the git user.', env: 'MLOPS_ACTOR'}),
  }

  async run(): Promise<RolloutResult | RolloutPlan> {
    const {flags} = await this.parse(Rollback)
    const options = {dir: flags.dir, reason: flags.reason, actor: flags.actor, where: targetChoice(flags)}
    if (flags['dry-run']) {
      const plan = await dryRun({action: 'rollback', options})
      this.say(renderPlan(plan))
      return plan
    }
    const result = await rollback(options)
    this.say(`rolled back ${result.version}`)
    this.say(renderStatus(result.status, this.colors))
    return result
  }
}
