import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../base-command.js'
import {CHECK_NAMES, type CheckName, type LoadMode} from '../checks/config.js'
import {phaseTable, testSummary, testTable} from '../checks/report.js'
import {runTests} from '../checks/run.js'
import type {TestResult} from '../checks/types.js'
import {ExitCode, UsageError} from '../errors.js'
import {Progress} from '../system/terminal.js'

export default class Test extends BaseCommand {
  static override summary = 'Test an artifact on a running server: regression, load, latency and robustness gates.'
  static override description = `Starts "mlops serve REF --port 0" (or uses --url), then runs the checks and judges each gate from the checks section of mlops.yaml:
  regression  golden cases through the server; with --baseline, agreement, label flips and score differences against that version
  load        open model (a fixed rate, sent on schedule whatever the server does) or closed model (N users); error rate, throughput; --find-max searches the highest rate meeting the latency SLO
  latency     p50…p99.9 and max from an HDR histogram, counted from when each request was due (no coordinated omission)
  robustness  seeded hostile requests (missing, extra, null, mistyped fields, NaN, huge and empty batches, oversized and non-JSON bodies, deep nesting, v2 shapes and dtypes): a 5xx, a hang, a crash or an unhealthy server fails it
The load generator runs in its own process and reports whether it kept up, so a slow client is not taken for a slow server.

Exit codes: 0 every gate passed, 1 a gate failed or had too little data to decide ("inconclusive" is never a pass), 2 usage or configuration error.`

  static override examples = [
    '<%= config.bin %> test',
    '<%= config.bin %> test 1.2.0 --only latency,robustness --junit reports/junit.xml --json',
    '<%= config.bin %> test 1.2.0 --baseline 1.1.0',
    '<%= config.bin %> test --url http://10.0.0.5:8080',
  ]

  static override args = {
    ref: Args.string({
      description: 'Artifact to test: a version, name@version, digest or .tar path. Default: the newest.',
      ignoreStdin: true,
    }),
  }

  static override flags = {
    only: Flags.string({description: `Checks to run, comma-separated: ${CHECK_NAMES.join(', ')}. Default: all.`}),
    url: Flags.string({description: 'Test a server that is already running (serving REF) instead of starting one.'}),
    baseline: Flags.string({
      description: 'Version to compare predictions with (e.g. the one in production); started the same way.',
      exclusive: ['baseline-url'],
    }),
    'baseline-url': Flags.string({
      description: 'A running server of the baseline version to compare predictions with.',
    }),
    'find-max': Flags.boolean({description: 'Also search for the highest request rate that meets the latency SLO.'}),
    mode: Flags.string({description: 'Load model. Default: checks.load.mode or open.', options: ['open', 'closed']}),
    rate: Flags.integer({description: 'Requests per second (open model). Default: checks.load.rate or 50.', min: 1}),
    concurrency: Flags.integer({
      description: 'Users (closed model) or most connections (open). Default: checks.load.concurrency or 16.',
      min: 1,
    }),
    duration: Flags.string({
      description: 'Measured load duration: 500ms, 10s, 2m. Default: checks.load.duration or 10s.',
    }),
    seed: Flags.integer({
      description: 'Seed of the robustness cases and generated requests. Default: checks.robustness.seed or 1.',
    }),
    junit: Flags.string({description: 'Also write a JUnit XML report (one testcase per gate) to this file.'}),
    html: Flags.string({description: 'Also write a self-contained HTML report with latency charts to this file.'}),
  }

  async run(): Promise<TestResult> {
    const {args, flags} = await this.parse(Test)
    const progress = new Progress('testing', this.showProgress)
    const result = await runTests({
      dir: flags.dir,
      ref: args.ref,
      only: parseOnly(flags.only),
      url: flags.url,
      baseline: flags.baseline,
      baselineUrl: flags['baseline-url'],
      findMax: flags['find-max'],
      overrides: {
        mode: flags.mode as LoadMode | undefined,
        rate: flags.rate,
        concurrency: flags.concurrency,
        duration: flags.duration,
        seed: flags.seed,
      },
      junit: flags.junit,
      html: flags.html,
      onProgress: (line) => progress.update(0, line),
    })
    progress.done()
    this.say(
      `${result.artifact.name}@${result.artifact.version} at ${result.server.url}${result.baseline ? `, baseline ${result.baseline.version ?? result.baseline.url}` : ''}\n`,
    )
    if (result.load) this.say(`${phaseTable(result.load.phases)}\n`)
    if (result.load?.findMax)
      this.say(
        `highest rate meeting the SLO: ${result.load.findMax.maxRate} rps${result.load.findMax.clientBound ? ` (${result.load.findMax.clientBound})` : ''}\n`,
      )
    this.say(testTable(result, this.colors))
    this.say(`\n${testSummary(result, this.colors)}`)
    for (const [kind, path] of Object.entries(result.reports)) this.say(`${kind} report: ${path}`)
    // A failed or inconclusive gate is a failed test, not an error: the result still goes out and the exit code says it.
    if (!result.passed) process.exitCode = ExitCode.failed
    return result
  }
}

function parseOnly(value: string | undefined): CheckName[] | undefined {
  if (value === undefined) return undefined
  const names = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
  const unknown = names.filter((n) => !(CHECK_NAMES as readonly string[]).includes(n))
  if (unknown.length > 0 || names.length === 0)
    throw new UsageError(
      'TEST_ONLY_INVALID',
      `--only ${value}: ${unknown.length > 0 ? `unknown check ${unknown.join(', ')}` : 'no check named'}`,
      {hint: `Name one or more of ${CHECK_NAMES.join(', ')}, e.g. --only latency,robustness.`},
    )
  return names as CheckName[]
}
