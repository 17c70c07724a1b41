import {Args, Flags} from '@oclif/core'

import {type AuditResult, audit} from '../audit/audit.js'
import {BaseCommand} from '../base-command.js'

export default class Audit extends BaseCommand {
  static override summary = 'Which model answered a request, under which release, and what the truth turned out to be.'
  static override description = `Finds the request in the request log (serving.request_log.path, rotated files included), then the ledger entry in effect when it was served: the version and artifact digest, its stage and traffic weight, who deployed it and why; with the prediction and, once it arrived (mlops feedback, POST /v1/feedback), its truth.

Exit codes: 0 found, 1 no such request in the log, 2 usage or configuration error.`

  static override examples = [
    '<%= config.bin %> audit 3f2a9c1e-0b4d-4e8a-9f00-1c2d3e4f5a6b',
    '<%= config.bin %> audit req-42 --json',
  ]

  static override flags = {
    log: Flags.string({description: 'The request log. Default: serving.request_log.path.'}),
  }

  static override args = {
    id: Args.string({description: 'The request id (the x-request-id header of its answer).', required: true}),
  }

  async run(): Promise<AuditResult> {
    const {args, flags} = await this.parse(Audit)
    const result = await audit({dir: flags.dir, requestId: args.id, log: flags.log})
    const {model, release, truth} = result
    this.say(
      `request ${result.request_id} at ${result.time}: ${result.route} ${result.status}${result.caller ? `, called by ${result.caller}` : ''}`,
    )
    this.say(`answered by ${model.name} ${model.version}${model.digest ? ` (${model.digest})` : ''}`)
    if (release) {
      this.say(
        `as ${release.role} at ${release.stage}${release.stage === 'canary' ? `, ${release.weight}% of traffic` : ''}, under ledger revision ${release.in_effect.revision} (${release.in_effect.action} by ${release.in_effect.actor} at ${release.in_effect.at}: ${release.in_effect.reason})`,
      )
      if (release.deployed_by && release.deployed_by.revision !== release.in_effect.revision)
        this.say(
          `${model.version} was put there by revision ${release.deployed_by.revision}: ${release.deployed_by.action} by ${release.deployed_by.actor} at ${release.deployed_by.at} (${release.deployed_by.reason})`,
        )
    } else this.say('served outside a deployment (no ledger entry was in effect)')
    if (result.prediction !== undefined) this.say(`prediction: ${JSON.stringify(result.prediction)}`)
    this.say(
      truth ? `truth: ${JSON.stringify(truth.label ?? truth.value)} (known ${truth.time})` : 'truth: not known yet',
    )
    return result
  }
}
