import {Flags} from '@oclif/core'

import {BaseCommand} from '../base-command.js'
import {type FeedbackResult, ingestFeedback} from '../feedback/ingest.js'

export default class Feedback extends BaseCommand {
  static override summary = 'Record ground truth for served requests: what actually happened (a label or a value).'
  static override description = `Reads CSV or JSONL rows {request_id, label | value, time} (time: when the truth became known) and appends them beside the request log (serving.request_log.path + ".feedback.jsonl"), once per request id: a request that already has its truth keeps it. With --key and --join, rows carry your own key (a transaction id) matched to a field of the logged requests' inputs. The server takes the same as POST /v1/feedback (scope feedback). "mlops monitor --performance" joins them to the predictions.

Exit codes: 0 recorded, 2 usage error (a bad row: nothing is recorded).`

  static override examples = [
    '<%= config.bin %> feedback --input outcomes.csv',
    '<%= config.bin %> feedback --input chargebacks.jsonl --key transaction_id --join transaction_id --json',
  ]

  static override flags = {
    input: Flags.string({char: 'i', description: 'CSV or JSONL file of feedback rows.', required: true}),
    key: Flags.string({description: 'A column of the input to match against --join instead of request_id.'}),
    join: Flags.string({description: "The field of the logged requests' inputs that --key matches."}),
    log: Flags.string({description: 'The request log. Default: serving.request_log.path.'}),
  }

  async run(): Promise<FeedbackResult> {
    const {flags} = await this.parse(Feedback)
    const result = await ingestFeedback({
      dir: flags.dir,
      input: flags.input,
      key: flags.key,
      join: flags.join,
      log: flags.log,
    })
    this.say(
      `${result.accepted} of ${result.rows} rows recorded in ${result.file}` +
        (result.duplicates ? `; ${result.duplicates} already had feedback` : '') +
        (result.unmatched ? `; ${result.unmatched} matched no logged request` : ''),
    )
    return result
  }
}
