import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../base-command.js'
import {ignoredColumnsWarning} from '../data/columns.js'
import {ExitCode} from '../errors.js'
import {monitorTable} from '../monitor/report.js'
import {type PerformanceResult, runPerformance} from '../monitor/performance.js'
import {performanceTable} from '../monitor/performance-report.js'
import {runMonitor} from '../monitor/run.js'
import type {MonitorResult} from '../monitor/types.js'

export default class Monitor extends BaseCommand {
  static override summary =
    'Check live or batch data for drift against the baseline profiled when the artifact was packaged.'
  static override description = `Compares each feature (and each prediction field: logged by the server, or made by the artifact's own model for an --input batch) with the artifact's baseline: KS or chi-square tests on small samples, PSI or Jensen-Shannon distance on large ones, plus missing-rate growth and categories training never saw. Thresholds and per-feature methods come from the monitor section of mlops.yaml.

Reads the server's request log (serving.request_log.path, rotated files included) over --since, or a CSV/JSONL batch with --input.

With --performance: joins the logged predictions to the truth recorded for them ("mlops feedback", POST /v1/feedback) and reports per version (and per monitor.performance.window) accuracy, precision, recall, F1, ROC AUC and calibration for classifiers, MAE, RMSE and R² for regressors, with 95% intervals and the share of predictions whose truth has arrived; monitor.performance.gates fail it (the retraining trigger).

Exit codes: 0 no drift (or not enough data to tell), 1 drift past a threshold, a performance gate failed, or no data at all, 2 usage or configuration error.`

  static override examples = [
    '<%= config.bin %> monitor --since 24h',
    '<%= config.bin %> monitor 1.2.0 --input data/this-week.csv --junit drift.xml',
    '<%= config.bin %> monitor --since 7d --html drift.html --json',
    '<%= config.bin %> monitor --performance --since 7d --html performance.html',
  ]

  static override args = {
    ref: Args.string({
      description:
        'Artifact whose baseline to compare with: a version, name@version, digest or .tar path. Default: the newest.',
      ignoreStdin: true,
    }),
  }

  static override flags = {
    input: Flags.string({
      char: 'i',
      description:
        "A CSV or JSONL batch of records to check instead of the request log; the artifact's model scores it for prediction drift.",
      exclusive: ['since', 'log'],
    }),
    since: Flags.string({
      description: 'How far back to read the request log: 30m, 24h, 7d. Default: monitor.since or 24h.',
    }),
    log: Flags.string({description: 'The request log to read. Default: serving.request_log.path.'}),
    performance: Flags.boolean({
      description: 'Judge predictions against the truth that arrived (feedback) instead of drift.',
      exclusive: ['input', 'baseline'],
    }),
    junit: Flags.string({description: 'Also write a JUnit XML report (one testcase per feature) to this file.'}),
    html: Flags.string({description: 'Also write a self-contained HTML report with a chart per drifted feature.'}),
    strict: Flags.boolean({
      description:
        'Leave records of --input with columns the model does not read unscored (no prediction drift for them), rather than score them without those columns.',
    }),
    baseline: Flags.string({
      description: "A baseline profile as JSON, instead of the artifact's (for testing).",
      hidden: true,
    }),
  }

  async run(): Promise<MonitorResult | PerformanceResult> {
    const {args, flags} = await this.parse(Monitor)
    if (flags.performance) return this.performance(flags)
    const result = await runMonitor({
      dir: flags.dir,
      ref: args.ref,
      baseline: flags.baseline,
      input: flags.input,
      since: flags.since,
      log: flags.log,
      junit: flags.junit,
      html: flags.html,
      strict: flags.strict,
    })
    if (result.current.ignoredColumns) this.warn(ignoredColumnsWarning(result.current.ignoredColumns))
    const subject = result.artifact ? `${result.artifact.name}@${result.artifact.version}` : result.baseline.source
    this.say(
      `${subject}: ${result.current.records} records from ${result.current.window ? `the request log, last ${result.current.window.since}` : result.current.files.join(', ')}`,
    )
    for (const [reason, count] of Object.entries(result.current.skipped))
      this.say(`  ${count} ${count === 1 ? 'record' : 'records'} left out: ${reason}`)
    this.say()
    this.say(monitorTable(result, this.colors))
    this.say()
    this.say(
      result.verdict === 'drift'
        ? `drift in ${result.drifted.join(', ')}`
        : result.verdict === 'ok'
          ? 'no drift'
          : 'not enough data to tell (see min_samples)',
    )
    for (const [kind, path] of Object.entries(result.reports)) this.say(`${kind} report: ${path}`)
    // Drift is a failed check, not an error: the result still goes out (in --json too) and the exit code says it.
    if (result.verdict === 'drift') process.exitCode = ExitCode.failed
    return result
  }

  private async performance(flags: {dir: string; since?: string; log?: string; junit?: string; html?: string}) {
    const result = await runPerformance(flags)
    this.say(`${result.task}, last ${result.window.since}: ${result.feedback.items} feedback items`)
    this.say()
    this.say(performanceTable(result))
    this.say()
    for (const version of result.versions)
      for (const gate of version.gates) this.say(`${version.version} ${gate.verdict}: ${gate.message}`)
    this.say(
      result.verdict === 'fail'
        ? `performance below a gate: ${result.failed.join(', ')}`
        : result.verdict.replaceAll('_', ' '),
    )
    for (const [kind, path] of Object.entries(result.reports)) this.say(`${kind} report: ${path}`)
    if (result.verdict === 'fail') process.exitCode = ExitCode.failed
    return result
  }
}
