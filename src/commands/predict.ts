import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../base-command.js'
import {ignoredColumnsWarning} from '../data/columns.js'
import {ExitCode} from '../errors.js'
import {type PredictResult, predictFile} from '../serve/predict.js'
import {Progress} from '../system/terminal.js'

export default class Predict extends BaseCommand {
  static override summary =
    'Run batch predictions on a JSONL, CSV or Parquet file with the same pipeline and model as the server.'
  static override description = `Streams records from --input (JSONL, CSV with a header row, or Parquet, by the extension; "-" reads JSONL from stdin) and writes one row per input row to --output. As JSON lines (.jsonl, or "-"): {"line": N, "prediction": {...}}, or {"line": N, "error": "..."} for a row that is not valid input. As CSV (.csv) or Parquet (.parquet): the columns line, the --keep columns, the prediction's fields (nested ones as a.b) and error. For Parquet input, line is the row number. An image output (pipeline.outputs[].image) is its PNG in base64, in every format. Memory stays bounded whatever the file size (Parquet is read and written a row group at a time).

Columns the model does not read (an id, the label) are left out of each row, with one warning naming them; --strict refuses such rows instead. With --output - and --json, stdout holds only the predictions and the summary goes to stderr.

Exit codes: 0 every row predicted, 1 some rows failed (listed, with line numbers), 2 usage or configuration error.`

  static override examples = [
    '<%= config.bin %> predict --input data/new.csv --output predictions.jsonl',
    '<%= config.bin %> predict --input applicants.parquet --output scores.parquet --keep id',
    'cat rows.jsonl | <%= config.bin %> predict 1.2.0 --input - --output - --fail-fast',
  ]

  static override args = {
    // ignoreStdin: oclif would otherwise read a missing argument from stdin, and swallow the records piped to --input -.
    ref: Args.string({
      description: 'Artifact: a version, name@version, digest or .tar path. Default: the newest in the project store.',
      ignoreStdin: true,
    }),
  }

  static override flags = {
    input: Flags.string({
      char: 'i',
      description: 'Records: a .jsonl, .csv or .parquet file, or - for JSONL on stdin.',
      required: true,
    }),
    output: Flags.string({
      char: 'o',
      description: 'Predictions: a .jsonl, .csv or .parquet file (by the extension), or - for JSON lines on stdout.',
      required: true,
    }),
    keep: Flags.string({
      description: 'Input columns to copy into each prediction row, e.g. an id (repeat, or separate with commas).',
      multiple: true,
      delimiter: ',',
    }),
    'fail-fast': Flags.boolean({description: 'Stop at the first bad row.'}),
    strict: Flags.boolean({
      description: 'Refuse rows with columns the model does not read, rather than leave those out.',
    }),
    'batch-size': Flags.integer({description: 'Records per model run.', default: 256, min: 1, max: 65_536}),
    model: Flags.string({
      description: 'Predict with a bare .onnx file without packaging it (for development).',
      hidden: true,
      exclusive: ['ref'],
    }),
  }

  async run(): Promise<PredictResult> {
    const {args, flags} = await this.parse(Predict)
    this.dataOnStdout = flags.output === '-'
    // Progress goes to stderr, and not at all when predictions stream to stdout on a terminal.
    const progress = new Progress('predicting', this.showProgress && flags.output !== '-')
    const result = await predictFile({
      dir: flags.dir,
      ref: args.ref,
      modelPath: flags.model,
      input: flags.input,
      output: flags.output,
      keep: flags.keep,
      failFast: flags['fail-fast'],
      batchSize: flags['batch-size'],
      strict: flags.strict,
      onProgress: (rows) => progress.update(rows, `${rows} rows`),
    })
    progress.done()
    if (result.ignoredColumns) this.warn(ignoredColumnsWarning(result.ignoredColumns))
    if (flags.output !== '-')
      this.say(
        `${result.ok}/${result.rows} rows predicted → ${result.output}${result.stopped ? ' (stopped at the first bad row: --fail-fast)' : ''}`,
      )
    for (const error of result.errors.slice(0, 10)) this.logToStderr(`  line ${error.line}: ${error.message}`)
    if (result.failed > 10)
      this.logToStderr(
        `  … ${result.failed - 10} more bad rows${this.jsonEnabled() ? '' : ' (see the "error" lines in the output)'}`,
      )
    if (result.failed > 0) process.exitCode = ExitCode.failed
    return result
  }
}
