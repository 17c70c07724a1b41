// Renders a test result: JUnit (one testcase per gate), a self-contained HTML page with latency charts, a terminal table.
import {barChart, defaultFormat, escapeHtml, htmlPage, htmlTable, lineChart} from '../report/html.js'
import {type JunitCase, type JunitSuite, junitXml} from '../report/junit.js'
import {formatNumber, table} from '../system/format.js'
import {type Colors, MARK, PLAIN} from '../system/terminal.js'
import type {CheckName} from './config.js'
import type {Gate} from './gates.js'
import type {LabelledPhase, TestResult} from './types.js'

function detailOf(result: TestResult, g: Gate): string {
  const lines = [g.message]
  if (g.check === 'robustness' && result.robustness) {
    for (const f of result.robustness.failures.slice(0, 20))
      lines.push(
        `- ${f.name} [${f.kind}, expected ${f.expect}]: ${f.outcome}${f.detail ? ` (${f.detail})` : ''}${f.request ? `\n  ${f.request.method} ${f.request.path} ${f.request.contentType}, ${f.request.bytes} bytes: ${f.request.body.slice(0, 300)}` : ''}`,
      )
  }
  if (g.check === 'regression' && g.name === 'golden' && result.regression) {
    for (const c of result.regression.golden.cases.filter((x) => !x.passed).slice(0, 20))
      lines.push(`- ${c.name}: ${c.error ?? c.mismatches.map((m) => `${m.field} ${m.message}`).join('; ')}`)
  }
  return lines.join('\n')
}

export function testJunit(result: TestResult, now: Date): string {
  const properties = {
    artifact: `${result.artifact.name}@${result.artifact.version}`,
    digest: result.artifact.digest,
    server: result.server.url,
    ...(result.baseline ? {baseline: result.baseline.version ?? result.baseline.url} : {}),
  }
  const suites: JunitSuite[] = result.checks.map((check: CheckName) => ({
    name: `mlops test: ${check}`,
    timestamp: now.toISOString(),
    properties,
    cases: result.gates
      .filter((g) => g.check === check)
      .map((g): JunitCase => ({
        name: g.name,
        classname: `checks.${check}`,
        failure:
          g.verdict === 'failed'
            ? {message: `${g.name}: ${g.message}`, type: 'gate', detail: detailOf(result, g)}
            : undefined,
        skipped: g.verdict === 'inconclusive' ? g.message : undefined,
        output: g.verdict === 'passed' ? g.message : undefined,
      })),
  }))
  return junitXml(suites)
}

/** The gates, each marked: ✓ passed in green, ✗ failed in red, ? inconclusive in yellow. */
export function testTable(result: TestResult, c: Colors = PLAIN): string {
  const rows = result.gates.map((g) => [g.check, g.name, verdictOf(g.verdict, c), g.message])
  return table(['check', 'gate', 'verdict', 'measured'], rows)
}

/** The error rate and what the failures were (`timeout 40`, `HTTP 500 3`), most frequent first: a bare rate says nothing. */
export function errorsCell(p: Pick<LabelledPhase, 'errorRate' | 'statuses'>): string {
  const rate = `${(p.errorRate * 100).toFixed(2)}%`
  const failures = Object.entries(p.statuses)
    .filter(([status]) => !/^2\d\d$/.test(status))
    .sort((a, b) => b[1] - a[1])
    .map(([status, count]) => `${/^\d+$/.test(status) ? `HTTP ${status}` : status} ${count}`)
  return failures.length === 0 ? rate : `${rate} (${failures.join(', ')})`
}

/** The last line of `mlops test`: the verdict, and when it did not pass, the first gate behind it and why. */
export function testSummary(result: TestResult, c: Colors = PLAIN): string {
  const passed = `${result.gates.filter((g) => g.verdict === 'passed').length}/${result.gates.length} gates passed in ${result.durationS}s`
  const blocking = result.gates.filter((g) => g.verdict === result.verdict)
  if (result.passed || blocking.length === 0) return `${verdictOf(result.verdict, c)}: ${passed}`
  const first = blocking[0]
  const more = blocking.length > 1 ? ` (and ${blocking.length - 1} more)` : ''
  return `${verdictOf(result.verdict, c)}: ${first.check} gate ${c.bold(first.name)}: ${first.message}${more}; ${passed}`
}

export function verdictOf(verdict: Gate['verdict'], c: Colors = PLAIN): string {
  if (verdict === 'passed') return c.green(`${MARK.pass} passed`)
  if (verdict === 'failed') return c.red(c.bold(`${MARK.fail} failed`))
  return c.yellow(`? inconclusive`)
}

export function phaseTable(phases: readonly LabelledPhase[]): string {
  const rows = phases.map((p) => [
    p.label,
    p.mode === 'open' ? `${p.rate} rps` : `${p.concurrency} users`,
    formatNumber(p.requests),
    formatNumber(p.throughput, 1),
    errorsCell(p),
    ...(['p50', 'p90', 'p99', 'p99.9', 'max'] as const).map((k) => String(p.latencyMs[k])),
    p.client.saturated ? `saturated (lag p99 ${p.client.lagP99Ms} ms)` : `ok (lag p99 ${p.client.lagP99Ms} ms)`,
  ])
  return table(['phase', 'load', 'requests', 'rps', 'errors', 'p50 ms', 'p90', 'p99', 'p99.9', 'max', 'client'], rows, {
    right: [2, 3, 4, 5, 6, 7, 8, 9],
  })
}

const LEVELS = ['p50', 'p90', 'p95', 'p99', 'p99.9', 'max'] as const

function ms(v: number): string {
  return `${defaultFormat(v)} ms`
}

/**
 * A phase's percentiles, from the due time and from the send, with the latency gates of that phase drawn: each threshold a
 * line, each measured value ringed (red when it failed). A log axis when the tail is far above the median.
 */
function percentileChart(p: LabelledPhase, gates: readonly Gate[]): string {
  const own = gates.flatMap((g) => {
    const level = LEVELS.find((l) => g.name.startsWith(`${l} `))
    // A gate belongs to the phase whose percentile it measured.
    return g.check === 'latency' && level && g.measured === p.latencyMs[level] ? [{gate: g, level}] : []
  })
  const chart = lineChart(
    LEVELS.map((_, i) => i),
    [
      {name: 'from due time', values: LEVELS.map((l) => p.latencyMs[l])},
      {name: 'from send', values: LEVELS.map((l) => p.serviceMs[l])},
    ],
    {
      title: `Latency percentiles: ${p.label}`,
      format: defaultFormat,
      xFormat: (i) => LEVELS[Math.round(i)] ?? '',
      yLabel: 'latency (ms)',
      xLabel: 'percentile',
      thresholds: own.map(({gate}) => ({value: gate.threshold, label: `${gate.name.split(' at ')[0]}`})),
      callouts: own.map(({gate, level}) => ({
        index: LEVELS.indexOf(level),
        value: gate.measured!,
        label: `${level} ${ms(gate.measured!)} ${gate.verdict === 'failed' ? '✗' : gate.verdict === 'passed' ? '✓' : '?'}`,
        failed: gate.verdict === 'failed',
      })),
    },
  )
  const failed = own.filter(({gate}) => gate.verdict === 'failed')
  const caption = failed.length
    ? `<span class="bad">${escapeHtml(failed.map(({gate}) => `${gate.name}: ${gate.message}`).join('; '))}</span>. `
    : ''
  return `<figure>${chart}<figcaption>${caption}Dashed lines are the latency gates of this phase. The gap between the two lines is time spent waiting to be sent: queueing behind a slow server, or a load generator that fell behind.</figcaption></figure>`
}

function histogramChart(p: LabelledPhase): string {
  const {edgesMs, counts} = p.histogram
  if (counts.every((c) => c === 0)) return ''
  // Four digits: buckets a fraction of a millisecond wide keep edges that differ.
  const edge = (v: number) => formatNumber(Number(v.toPrecision(4)), 3)
  const label = (i: number) =>
    i === 0
      ? `< ${edge(edgesMs[0])}`
      : i >= edgesMs.length
        ? `≥ ${edge(edgesMs.at(-1)!)}`
        : `${edge(edgesMs[i - 1])}–${edge(edgesMs[i])}`
  return `<figure>${barChart(
    counts.map((_, i) => label(i)),
    [{name: 'requests', values: counts, color: '#2b8ae0'}],
    {
      title: `Latency histogram: ${p.label}`,
      format: (v) => formatNumber(Math.round(v)),
      yLabel: 'requests',
      xLabel: 'latency from due time (ms)',
    },
  )}</figure>`
}

export function testHtml(result: TestResult, now: Date): string {
  const subject = `${result.artifact.name}@${result.artifact.version}`
  const verdictClass = result.verdict === 'passed' ? 'ok' : 'bad'
  const parts = [
    `<p>Verdict: <span class="${verdictClass}">${escapeHtml(result.verdict)}</span> — ${result.gates.filter((g) => g.verdict === 'passed').length} of ${result.gates.length} gates passed. Server ${escapeHtml(result.server.url)}${result.server.started ? ' (started for this run)' : ''}; artifact ${escapeHtml(result.artifact.digest)}.</p>`,
  ]
  parts.push(
    '<h2>Gates</h2>',
    htmlTable(
      ['check', 'gate', 'verdict', 'measured'],
      result.gates.map((g) => ({
        cells: [g.check, g.name, verdictOf(g.verdict), g.message],
        classes: [undefined, undefined, g.verdict === 'passed' ? 'ok' : g.verdict === 'failed' ? 'bad' : 'muted'],
      })),
    ),
  )
  if (result.load) {
    parts.push(
      '<h2>Load and latency</h2>',
      `<p class="muted">Requests from ${escapeHtml(result.load.requests)}. Latency counts from when each request was due to be sent (open model), so a stalled server is charged for the requests it kept waiting.</p>`,
    )
    parts.push(
      htmlTable(
        ['phase', 'load', 'requests', 'throughput', 'error rate', 'load generator'],
        result.load.phases.map((p) => ({
          cells: [
            p.label,
            p.mode === 'open' ? `${p.rate} rps (open)` : `${p.concurrency} users (closed)`,
            formatNumber(p.requests),
            `${formatNumber(p.throughput, 1)} rps`,
            `${(p.errorRate * 100).toFixed(2)}%`,
            p.client.saturated
              ? p.client.reason!
              : `kept up (lag p99 ${p.client.lagP99Ms} ms, event loop ${Math.round(p.client.elu * 100)}%)`,
          ],
          classes: [undefined, 'nowrap', 'num', 'num', 'num', p.client.saturated ? 'bad' : 'muted'],
        })),
      ),
      htmlTable(
        ['phase', ...LEVELS.map((l) => `${l} (ms)`)],
        result.load.phases.map((p) => ({
          cells: [p.label, ...LEVELS.map((l) => defaultFormat(p.latencyMs[l]))],
          classes: [undefined, ...LEVELS.map(() => 'num')],
        })),
      ),
    )
    for (const p of result.load.phases)
      parts.push(`<div class="grid">\n${percentileChart(p, result.gates)}\n${histogramChart(p)}\n</div>`)
    const found = result.load.findMax
    if (found) {
      parts.push(
        '<h3>Highest rate meeting the SLO</h3>',
        `<p>${found.maxRate} rps${found.clientBound ? ` — ${escapeHtml(found.clientBound)}` : ''}</p>`,
      )
      parts.push(
        htmlTable(
          ['rate', 'met', 'p99', 'error rate', 'throughput', 'why'],
          found.steps.map((s) => ({
            cells: [
              `${s.rate} rps`,
              s.met ? 'yes' : 'no',
              `${s.p99Ms} ms`,
              `${(s.errorRate * 100).toFixed(2)}%`,
              s.throughput.toFixed(1),
              s.why ?? '',
            ],
            classes: ['num', s.met ? 'ok' : 'bad', 'num', 'num', 'num'],
          })),
        ),
      )
    }
  }
  if (result.robustness) {
    const r = result.robustness
    parts.push(
      '<h2>Robustness</h2>',
      `<p>${r.run} of ${r.cases} cases sent (seed ${r.seed}); ${r.failed} failed${r.intermittent ? `, ${r.intermittent} got a 5xx that did not come back` : ''}${r.crashed ? '; <span class="bad">the server went down</span>' : ''}.</p>`,
    )
    parts.push(
      htmlTable(
        ['kind', 'cases', 'failed'],
        Object.entries(r.byKind).map(([kind, v]) => ({
          cells: [kind, String(v.total), String(v.failed)],
          classes: [undefined, 'num', v.failed > 0 ? 'bad' : 'num'],
        })),
      ),
    )
    if (r.failures.length > 0) {
      parts.push(
        '<h3>Failed cases</h3>',
        htmlTable(
          ['case', 'expected', 'outcome', 'request'],
          r.failures.map((f) => ({
            cells: [
              f.name,
              f.expect,
              `${f.outcome}${f.detail ? `: ${f.detail}` : ''}`,
              f.request
                ? `${f.request.method} ${f.request.path} (${f.request.contentType}, ${f.request.bytes} bytes) ${f.request.body.slice(0, 500)}`
                : '',
            ],
            classes: [undefined, undefined, 'bad'],
          })),
        ),
      )
    }
  }
  if (result.regression) {
    const {golden, baseline} = result.regression
    parts.push('<h2>Regression</h2>', `<p>Golden cases: ${golden.passed} of ${golden.total} passed.</p>`)
    const failed = golden.cases.filter((c) => !c.passed)
    if (failed.length > 0)
      parts.push(
        htmlTable(
          ['case', 'what differs'],
          failed.map((c) => ({
            cells: [c.name, c.error ?? c.mismatches.map((m) => `${m.field}: ${m.message}`).join('; ')],
            classes: [undefined, 'bad'],
          })),
        ),
      )
    if (baseline) {
      parts.push(
        `<p>Against the baseline ${escapeHtml(baseline.version ?? baseline.url)} on ${baseline.examples} examples: agreement ${(baseline.agreement * 100).toFixed(2)}%, label flips ${(baseline.flipRate * 100).toFixed(2)}%, score difference max ${Number(baseline.maxAbsDiff.toPrecision(3))}, mean ${Number(baseline.meanAbsDiff.toPrecision(3))}.</p>`,
      )
      if (baseline.disagreements.length > 0)
        parts.push(
          htmlTable(
            ['example', 'fields', 'candidate', 'baseline'],
            baseline.disagreements.map((d) => ({
              cells: [
                String(d.index),
                d.fields.join(', '),
                JSON.stringify(d.candidate ?? null),
                JSON.stringify(d.baseline ?? null),
              ],
            })),
          ),
        )
    }
  }
  return htmlPage({
    title: `Test report: ${subject}`,
    subtitle: `mlops test, ${now.toISOString()}, ${result.durationS} s`,
    body: parts.join('\n'),
  })
}
