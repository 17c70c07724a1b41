// Renders a monitor result: JUnit (one testcase per feature and prediction field), an HTML page with charts, a terminal table.
import {barChart, escapeHtml, htmlPage, htmlTable, lineChart} from '../report/html.js'
import {type JunitCase, junitXml} from '../report/junit.js'
import {table} from '../system/format.js'
import {REFUSED} from './current.js'
import {type ColumnDrift, NOT_IN_CURRENT} from './drift.js'
import type {MonitorResult} from './types.js'

export function monitorJunit(result: MonitorResult, now: Date): string {
  const toCase = (c: ColumnDrift): JunitCase => ({
    name: c.name,
    classname: `drift.${c.target}`,
    failure:
      c.verdict === 'drift'
        ? {message: `${c.name}: ${c.reasons.join('; ')}`, type: 'drift', detail: detail(c)}
        : undefined,
    skipped: c.verdict === 'not_enough_data' ? c.reasons.join('; ') : undefined,
    output: c.verdict === 'ok' ? detail(c) : undefined,
  })
  const properties = {
    baseline: result.baseline.source,
    current: result.current.files.join(', '),
    records: result.current.records,
    ...(result.artifact
      ? {artifact: `${result.artifact.name}@${result.artifact.version}`, digest: result.artifact.digest}
      : {}),
  }
  const suites = [
    {name: 'drift: features', timestamp: now.toISOString(), properties, cases: result.features.map(toCase)},
  ]
  if (result.predictions.length > 0)
    suites.push({
      name: 'drift: predictions',
      timestamp: now.toISOString(),
      properties,
      cases: result.predictions.map(toCase),
    })
  return junitXml(suites)
}

function detail(c: ColumnDrift): string {
  const measured =
    c.pValue !== null
      ? `${c.method} statistic ${num(c.statistic)}, p-value ${num(c.pValue)} (drift below ${c.threshold})`
      : `${c.method} ${num(c.statistic)} (drift at ${c.threshold} or more)`
  const lines = [
    measured,
    `values: baseline ${c.samples.baseline}, current ${c.samples.current}`,
    `missing rate: baseline ${pct(c.missingRate.baseline)}, current ${pct(c.missingRate.current)}`,
  ]
  if (c.unseen.length > 0)
    lines.push(`unseen categories: ${c.unseen.map((u) => `${u.category} (${u.count})`).join(', ')}`)
  return lines.join('\n')
}

/** The verdict table printed in the terminal, most severe first. */
export function monitorTable(result: MonitorResult): string {
  const refused = result.current.skipped[REFUSED]
  const rows = [...result.features, ...result.predictions].map((c) => [
    c.target === 'prediction' ? `prediction:${c.name}` : c.name,
    c.method,
    num(c.statistic),
    c.pValue === null ? '' : num(c.pValue),
    String(c.threshold),
    c.verdict === 'not_enough_data' ? 'not enough data' : c.verdict,
    c.target === 'prediction' && refused && c.reasons.includes(NOT_IN_CURRENT)
      ? `no predictions: the pipeline refused ${refused === result.current.records ? 'every record' : `${refused} records`}`
      : c.reasons.filter((r) => !r.startsWith(c.method)).join('; '),
  ])
  return table(['column', 'method', 'statistic', 'p-value', 'threshold', 'verdict', 'note'], rows)
}

export function monitorHtml(result: MonitorResult, now: Date): string {
  const all = [...result.features, ...result.predictions]
  const subject = result.artifact ? `${result.artifact.name}@${result.artifact.version}` : result.baseline.source
  const source = result.current.window
    ? `requests from ${result.current.window.from} to ${result.current.window.to}`
    : result.current.files.join(', ')
  const summary = `<p>Verdict: <span class="${result.verdict === 'drift' ? 'bad' : 'ok'}">${escapeHtml(result.verdict.replaceAll('_', ' '))}</span> — ${result.drifted.length} of ${all.length} columns drifted. ${result.current.records} current records (${escapeHtml(source)}) against the baseline of ${result.baseline.rows} rows (${escapeHtml(result.baseline.source)}).</p>`
  const rows = all.map((c) => ({
    cells: [
      c.target === 'prediction' ? `prediction:${c.name}` : c.name,
      c.method,
      num(c.statistic),
      c.pValue === null ? '' : num(c.pValue),
      String(c.threshold),
      c.verdict.replaceAll('_', ' '),
      c.reasons.join('; '),
    ],
    classes: [
      undefined,
      undefined,
      'num',
      'num',
      'num',
      c.verdict === 'drift' ? 'bad' : c.verdict === 'ok' ? 'ok' : 'muted',
    ],
  }))
  const charts = all
    .filter((c) => c.verdict === 'drift')
    .map(chartsOf)
    .join('\n')
  const body = [
    summary,
    htmlTable(['column', 'method', 'statistic', 'p-value', 'threshold', 'verdict', 'why'], rows),
    charts ? `<h2>Drifted columns</h2>\n${charts}` : '',
  ].join('\n')
  return htmlPage({title: `Drift report: ${subject}`, subtitle: `mlops monitor, ${now.toISOString()}`, body})
}

function chartsOf(c: ColumnDrift): string {
  const series = [
    {name: 'baseline', values: c.bins.baseline},
    {name: 'current', values: c.bins.current},
  ]
  const share = (v: number) => `${Number((v * 100).toPrecision(3))}%`
  const what = c.kind === 'numeric' ? 'share of values between the baseline deciles' : 'share of each category'
  const parts = [
    `<h3>${escapeHtml(c.target === 'prediction' ? `prediction:${c.name}` : c.name)}</h3>`,
    `<figure>${barChart(c.bins.labels, series, {title: `${c.name}: ${what}`, format: share})}<figcaption>${escapeHtml(c.reasons.join('; '))}</figcaption></figure>`,
  ]
  if (c.quantiles) {
    const levels = c.quantiles.baseline.map((_, i) => i * 10)
    parts.push(
      `<figure>${lineChart(
        levels,
        [
          {name: 'baseline', values: c.quantiles.baseline},
          {name: 'current', values: c.quantiles.current},
        ],
        {title: `${c.name}: percentiles`, xFormat: (v) => `p${v}`},
      )}</figure>`,
    )
  }
  return parts.join('\n')
}

function num(v: number | null): string {
  if (v === null) return '–'
  return Math.abs(v) >= 1e-3 || v === 0 ? String(Number(v.toPrecision(4))) : v.toExponential(2)
}

function pct(v: number): string {
  return `${Number((v * 100).toPrecision(3))}%`
}
