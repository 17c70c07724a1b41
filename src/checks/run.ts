// `mlops test`: start (or reach) the server, run regression, load, latency and robustness checks, judge every gate, write reports.
import {UsageError} from '../errors.js'
import {writeReports} from '../report/write.js'
import {CHECK_NAMES, type CheckName, type CheckSettings, type LatencyGate, checkSettings} from './config.js'
import {type Gate, allPassed, gate} from './gates.js'
import {type FindMaxResult, findMaxRate, stepJob} from './load/find-max.js'
import type {LoadJob, LoadProgress} from './load/protocol.js'
import {type LoadPhase, runLoadPhase} from './load/run.js'
import {type RegressionResult, compareWithBaseline, runGoldenThroughServer} from './regression.js'
import {testHtml, testJunit} from './report.js'
import {robustnessCases} from './robustness/cases.js'
import {runRobustness} from './robustness/run.js'
import {loadRequests, seededRng} from './requests.js'
import {type TargetServer, externalServer, isReady, startServer} from './server.js'
import {type Subject, loadSubject} from './subject.js'
import type {LabelledPhase, RobustnessSummary, TestOptions, TestResult} from './types.js'

export async function runTests(options: TestOptions): Promise<TestResult> {
  const now = options.now ?? (() => new Date())
  const started = now()
  const t0 = performance.now()
  if (options.baseline && options.baselineUrl)
    throw new UsageError('TEST_FLAGS', '--baseline and --baseline-url do not go together', {
      hint: 'Pass --baseline VERSION to start the baseline here, or --baseline-url URL for one already running.',
    })
  const subject = await loadSubject(options.dir, options.ref)
  const settings = checkSettings(subject.checks, options.overrides)
  const checks = CHECK_NAMES.filter((c) => !options.only || options.only.includes(c))
  const progress = options.onProgress ?? (() => undefined)

  const baselineSubject = options.baseline ? await loadSubject(options.dir, options.baseline) : undefined
  progress(
    `starting ${subject.name}@${subject.version}${baselineSubject ? ` and ${baselineSubject.name}@${baselineSubject.version}` : ''}`,
  )
  const starts = await Promise.allSettled([
    options.url
      ? externalServer(options.url)
      : startServer({dir: subject.dir, ref: `${subject.name}@${subject.version}`, env: options.serverEnv}),
    baselineSubject
      ? startServer({dir: subject.dir, ref: `${baselineSubject.name}@${baselineSubject.version}`})
      : options.baselineUrl
        ? externalServer(options.baselineUrl)
        : undefined,
  ])
  // One server up and the other not: stop the one, report the other.
  const failed = starts.find((s) => s.status === 'rejected')
  if (failed) {
    await Promise.all(starts.flatMap((s) => (s.status === 'fulfilled' && s.value ? [s.value.stop()] : [])))
    throw failed.reason
  }
  const [server, baselineServer] = starts.map((s) => (s as PromiseFulfilledResult<TargetServer | undefined>).value)
  const result: TestResult = {
    verdict: 'inconclusive',
    passed: false,
    artifact: {name: subject.name, version: subject.version, digest: subject.digest},
    server: {url: server!.url, started: !options.url},
    ...(baselineServer
      ? {
          baseline: {
            url: baselineServer.url,
            started: Boolean(options.baseline),
            ...(baselineSubject ? {version: baselineSubject.version} : {}),
          },
        }
      : {}),
    checks,
    settings,
    gates: [],
    reports: {},
    startedAt: started.toISOString(),
    durationS: 0,
  }
  try {
    if (!(await isReady(server!.url, 10_000)))
      throw new UsageError(
        'TEST_SERVER_NOT_READY',
        `the server at ${server!.url} is not ready (GET /v2/health/ready did not answer 200)`,
        {hint: 'Check the URL, or let "mlops test" start the server itself by leaving out --url.'},
      )
    if (checks.includes('regression')) {
      progress('regression: golden cases')
      result.regression = {golden: await runGoldenThroughServer(server!.url, subject, settings.regression)}
      if (baselineServer) {
        progress('regression: comparing with the baseline')
        result.regression.baseline = await compareWithBaseline(
          server!.url,
          baselineServer.url,
          subject,
          settings.regression,
          settings.robustness.seed,
        )
        result.baseline!.version ??= result.regression.baseline.version
      }
      result.gates.push(...regressionGates(result.regression, settings))
    }
    if (checks.includes('load') || checks.includes('latency')) {
      const {load, gates} = await runLoadChecks(server!, subject, settings, checks, Boolean(options.findMax), progress)
      result.load = load
      result.gates.push(...gates)
    }
    if (checks.includes('robustness')) {
      const cases = robustnessCases(subject, {seed: settings.robustness.seed, count: settings.robustness.cases})
      const run = await runRobustness(server!, cases, {
        timeoutMs: settings.robustness.timeoutMs,
        onCase: (done, total) => progress(`robustness: ${done}/${total} cases`),
      })
      result.robustness = robustnessSummary(run, cases.length, settings.robustness.seed)
      result.gates.push(...robustnessGates(result.robustness))
    }
  } finally {
    await Promise.all([server!.stop(), baselineServer?.stop()])
  }
  result.passed = allPassed(result.gates)
  result.verdict = result.passed
    ? 'passed'
    : result.gates.some((g) => g.verdict === 'failed')
      ? 'failed'
      : 'inconclusive'
  result.durationS = Math.round((performance.now() - t0) / 100) / 10
  result.reports = await writeReports(options, {
    junit: () => testJunit(result, now()),
    html: () => testHtml(result, now()),
  })
  return result
}

async function runLoadChecks(
  server: TargetServer,
  subject: Subject,
  settings: CheckSettings,
  checks: CheckName[],
  findMax: boolean,
  progress: (line: string) => void,
): Promise<{load: NonNullable<TestResult['load']>; gates: Gate[]}> {
  const s = settings.load
  const {source, requests} = await loadRequests(subject, s.requests, s.batch, seededRng(settings.robustness.seed))
  const base = {origin: server.url, requests, concurrency: s.concurrency, timeoutMs: s.timeoutMs}
  const run = (job: LoadJob, label: string) =>
    runLoadPhase(job, {onProgress: (p) => progress(phaseLine(label, job, p))})
  const mainJob: LoadJob = {
    ...base,
    mode: s.mode,
    ...(s.mode === 'open' ? {rate: s.rate} : {}),
    durationMs: s.durationMs,
    warmupMs: s.warmupMs,
  }
  const main: LabelledPhase = {label: 'load', ...(await run(mainJob, 'load'))}
  const phases = [main]
  const gates: Gate[] = []
  if (checks.includes('load')) gates.push(...loadGates(main, settings))
  if (checks.includes('latency')) {
    // A gate "at R rps" holds at that rate, so it gets an open-model phase of its own unless the main phase is just that.
    const rates = [
      ...new Set(
        settings.latency.gates
          .map((g) => g.rate)
          .filter((r): r is number => r !== undefined && !(s.mode === 'open' && r === s.rate)),
      ),
    ]
    for (const rate of rates)
      phases.push({label: `${rate} rps`, ...(await run({...mainJob, mode: 'open', rate}, `latency at ${rate} rps`))})
    for (const g of settings.latency.gates) {
      const phase =
        g.rate === undefined || (s.mode === 'open' && g.rate === s.rate)
          ? main
          : phases.find((p) => p.label === `${g.rate} rps`)!
      gates.push(latencyGate(g, phase, settings))
    }
  }
  let found: FindMaxResult | undefined
  if (findMax && checks.includes('load')) {
    const slo = {
      gates: settings.latency.gates.filter((g) => g.rate === undefined),
      maxErrorRate: s.maxErrorRate,
      minThroughputRatio: s.minThroughputRatio,
    }
    found = await findMaxRate({
      startRate: s.rate,
      maxRate: s.findMax.maxRate,
      maxSteps: s.findMax.maxSteps,
      slo,
      run: (rate) => run(stepJob(base, rate, s.findMax.stepMs), `find-max ${rate} rps`),
    })
    if (s.findMax.minRate !== undefined) {
      gates.push(
        gate({
          check: 'load',
          name: 'max_rate',
          measured: found.maxRate,
          threshold: s.findMax.minRate,
          comparison: '>=',
          unit: 'rps',
          doubt: found.clientBound,
        }),
      )
    }
  }
  return {load: {requests: source, phases, ...(found ? {findMax: found} : {})}, gates}
}

function phaseLine(label: string, job: LoadJob, p: LoadProgress): string {
  const total = (job.warmupMs + job.durationMs) / 1000
  return `${label}: ${p.phase} ${(p.elapsedMs / 1000).toFixed(1)}/${total}s, ${p.sent} sent, ${p.completed - p.failed} ok, ${p.failed} failed`
}

export function loadGates(phase: LoadPhase, settings: CheckSettings): Gate[] {
  const s = settings.load
  const thin =
    phase.requests < s.minRequests
      ? `${phase.requests} requests measured, fewer than checks.load.min_requests (${s.minRequests})`
      : undefined
  const gates = [
    gate({
      check: 'load',
      name: 'error_rate',
      measured: phase.errorRate,
      threshold: s.maxErrorRate,
      comparison: '<=',
      unit: 'ratio',
      inconclusive: thin,
    }),
  ]
  if (phase.mode === 'open' && phase.rate) {
    gates.push(
      gate({
        check: 'load',
        name: 'throughput',
        measured: Number(phase.throughput.toFixed(2)),
        threshold: Number((phase.rate * s.minThroughputRatio).toFixed(2)),
        comparison: '>=',
        unit: 'rps',
        inconclusive: thin,
        doubt: phase.client.reason,
      }),
    )
  }
  return gates
}

const TAIL: Record<LatencyGate['percentile'], number> = {
  p50: 0.5,
  p90: 0.1,
  p95: 0.05,
  p99: 0.01,
  'p99.9': 0.001,
  max: 0.001,
}

/**
 * A percentile is only as good as the samples above it: with fewer than `min_tail_samples` there, the gate is inconclusive.
 * A failure is only the server's when its own part (from the actual send) is over the line too, or the client kept up.
 */
export function latencyGate(g: LatencyGate, phase: LoadPhase, settings: CheckSettings): Gate {
  const needed = Math.ceil(settings.latency.minTailSamples / TAIL[g.percentile])
  const thin =
    phase.completed < needed
      ? `${phase.completed} requests measured; ${g.percentile} needs at least ${needed} (checks.latency.min_tail_samples ${settings.latency.minTailSamples} above it)`
      : undefined
  const serverPart = phase.serviceMs[g.percentile]
  const doubt =
    phase.client.saturated && serverPart <= g.maxMs
      ? `${phase.client.reason}, and from the actual send ${g.percentile} was ${serverPart} ms`
      : undefined
  const name =
    g.rate === undefined
      ? `${g.text}${phase.mode === 'open' ? ` at ${phase.rate} rps` : ` with ${phase.concurrency} users`}`
      : g.text
  return gate({
    check: 'latency',
    name,
    measured: phase.latencyMs[g.percentile],
    threshold: g.maxMs,
    comparison: '<=',
    unit: 'ms',
    inconclusive: thin,
    doubt,
  })
}

export function regressionGates(regression: RegressionResult, settings: CheckSettings): Gate[] {
  const {golden, baseline} = regression
  const gates = [
    gate({
      check: 'regression',
      name: 'golden',
      measured: golden.failed,
      threshold: 0,
      comparison: '<=',
      unit: 'failed cases',
      inconclusive:
        golden.total === 0
          ? 'the artifact has no golden cases (set data.golden in mlops.yaml and package again)'
          : undefined,
    }),
  ]
  if (baseline) {
    const g = settings.regression.gates
    const thin =
      baseline.examples < settings.regression.minExamples
        ? `${baseline.examples} examples compared, fewer than checks.regression.min_examples (${settings.regression.minExamples})`
        : undefined
    gates.push(
      gate({
        check: 'regression',
        name: 'agreement',
        measured: baseline.agreement,
        threshold: g.minAgreement,
        comparison: '>=',
        unit: 'ratio',
        inconclusive: thin,
      }),
      gate({
        check: 'regression',
        name: 'flip_rate',
        measured: baseline.flipRate,
        threshold: g.maxFlipRate,
        comparison: '<=',
        unit: 'ratio',
        inconclusive: thin,
      }),
      gate({
        check: 'regression',
        name: 'max_abs_diff',
        measured: baseline.maxAbsDiff,
        threshold: g.maxAbsDiff,
        comparison: '<=',
        unit: '',
        inconclusive: thin,
      }),
      gate({
        check: 'regression',
        name: 'mean_abs_diff',
        measured: baseline.meanAbsDiff,
        threshold: g.maxMeanAbsDiff,
        comparison: '<=',
        unit: '',
        inconclusive: thin,
      }),
    )
  }
  return gates
}

function robustnessSummary(
  run: Awaited<ReturnType<typeof runRobustness>>,
  cases: number,
  seed: number,
): RobustnessSummary {
  const byKind: RobustnessSummary['byKind'] = {}
  for (const r of run.results) {
    byKind[r.kind] ??= {total: 0, failed: 0}
    byKind[r.kind].total++
    if (!r.passed) byKind[r.kind].failed++
  }
  const failures = run.results.filter((r) => !r.passed)
  return {
    seed,
    cases,
    run: run.results.length,
    passed: run.results.length - failures.length,
    failed: failures.length,
    intermittent: run.results.filter((r) => r.intermittent).length,
    notRun: run.notRun,
    crashed: run.crashed,
    healthyAfter: run.healthyAfter,
    byKind,
    failures,
  }
}

export function robustnessGates(summary: RobustnessSummary): Gate[] {
  return [
    gate({
      check: 'robustness',
      name: 'failed_cases',
      measured: summary.failed,
      threshold: 0,
      comparison: '<=',
      unit: 'failed cases',
      inconclusive: summary.run === 0 ? 'no case was sent' : undefined,
    }),
    gate({
      check: 'robustness',
      name: 'server_up',
      measured: summary.healthyAfter ? 1 : 0,
      threshold: 1,
      comparison: '>=',
      unit: '',
      inconclusive: summary.run === 0 ? 'no case was sent' : undefined,
    }),
  ]
}
