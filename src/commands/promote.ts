import {Flags} from '@oclif/core'

import {BaseCommand} from '../base-command.js'
import {type RolloutPlan, type RolloutResult, dryRun, promote} from '../rollout/deploy.js'
import {renderPlan, renderStatus} from '../rollout/render.js'
import {forceConflictsFlag, targetChoice, targetFlags} from '../target-flags.js'

export default class Promote extends BaseCommand {
  static override summary = 'Move the rollout one step on: shadow → first canary step → … → full, or straight to --to.'
  static override description = `The next step comes from deploy.steps; past the last one, or with --to 100, the candidate becomes the stable release and the old one is retired once its requests are answered. If the gateway died, it is started again first.

Exit codes: 0 promoted, 1 failed, 2 no rollout in progress or usage error, 3 another command holds the deploy lock.`

  static override examples = [
    '<%= config.bin %> promote',
    '<%= config.bin %> promote --to 50',
    '<%= config.bin %> promote --to 100 --json',
  ]

  static override flags = {
    ...targetFlags,
    ...forceConflictsFlag,
    to: Flags.integer({description: 'Canary weight to go to, in percent; 100 means full.', min: 1, max: 100}),
    'dry-run': Flags.boolean({
      description: 'Print the change this would make, and what runs now; start, lock and write nothing.',
    }),
    actor: Flags.string({description: 'Who promotes, for the ledger. Default: the git user.', env: 'MLOPS_ACTOR'}),
  }

  async run(): Promise<RolloutResult | RolloutPlan> {
    const {flags} = await this.parse(Promote)
    const options = {dir: flags.dir, to: flags.to, actor: flags.actor, where: targetChoice(flags)}
    if (flags['dry-run']) {
      const plan = await dryRun({action: 'promote', options})
      this.say(renderPlan(plan))
      return plan
    }
    const result = await promote(options)
    this.say(`promoted ${result.version}: ${result.entry?.reason}`)
    this.say(renderStatus(result.status, this.colors))
    return result
  }
}
