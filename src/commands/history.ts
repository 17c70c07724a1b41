import {Flags} from '@oclif/core'

import {BaseCommand} from '../base-command.js'
import {type HistoryResult, history} from '../rollout/deploy.js'
import {renderLedger} from '../rollout/render.js'
import {targetChoice, targetFlags} from '../target-flags.js'

export default class History extends BaseCommand {
  static override summary =
    'The release ledger: every deploy, promotion, rollback and stop, who did it, and the analysis behind it.'
  static override description = `Read from .mlops/deploy/ledger.jsonl (one JSON object a line); --json exports the entries with their analysis figures.

Exit codes: 0 shown, 2 usage error.`

  static override examples = [
    '<%= config.bin %> history',
    '<%= config.bin %> history --limit 5',
    '<%= config.bin %> history --json',
  ]

  static override flags = {
    ...targetFlags,
    limit: Flags.integer({char: 'n', description: 'Only the newest N entries.', min: 1}),
  }

  async run(): Promise<HistoryResult> {
    const {flags} = await this.parse(History)
    const result = await history({dir: flags.dir, limit: flags.limit, where: targetChoice(flags)})
    if (result.entries.length === 0) this.say('no releases yet: deploy one with "mlops deploy VERSION --full"')
    else this.say(renderLedger(result.entries))
    if (result.skipped > 0)
      this.warn(`${result.skipped} ledger line(s) could not be read (a write cut short by a crash) and were skipped`)
    return result
  }
}
