// Renders a monitor result: JUnit (one testcase per feature and prediction field), an HTML page with charts, a terminal table.
import {barChart, escapeHtml, htmlPage, htmlTable, lineChart} from '../report/html.js'
import {type JunitCase, junitXml} from '../report/junit.js'
import {formatNumber, table} from '../system/format.js'
import {type Colors, MARK, PLAIN} from '../system/terminal.js'
import {REFUSED} from './current.js'
import {type ColumnDrift, NOT_IN_CURRENT} from './drift.js'
import {chiSquareTest} from './stats.js'
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

/** The verdict table printed in the terminal, most severe first: drift in red, ok in green, too little data in yellow. */
export function monitorTable(result: MonitorResult, c: Colors = PLAIN): string {
  const refused = result.current.skipped[REFUSED]
  const rows = [...result.features, ...result.predictions].map((col) => [
    columnName(col),
    col.method,
    num(col.statistic),
    pValueText(col),
    String(col.threshold),
    severity(col.verdict, c),
    col.target === 'prediction' && refused && col.reasons.includes(NOT_IN_CURRENT)
      ? `no predictions: the pipeline refused ${refused === result.current.records ? 'every record' : `${refused} records`}`
      : col.reasons.filter((r) => !r.startsWith(col.method)).join('; '),
  ])
  const headers = ['column', 'method', 'statistic', 'p-value', 'threshold', 'verdict', 'note']
  const marked = rows.some((r) => r[3].endsWith('†'))
  return `${table(headers, rows, {right: [2, 3, 4]})}${marked ? `\n${DAGGER_NOTE}` : ''}`
}

const DAGGER_NOTE =
  '† For PSI and Jensen–Shannon columns the p-value is a chi-square test of the binned counts, for reference: at this many values even a harmless difference gives a small p-value, which is why their verdict uses the distance and its threshold.'

/** The p-value as shown: the test's, or † the binned chi-square's beside a distance; – when there is none. */
function pValueText(c: ColumnDrift): string {
  const p = pValueOf(c)
  if (p === null) return '–'
  return `${p === 0 ? '< 1e-300' : num(p)}${c.pValue === null ? ' †' : ''}`
}

function severity(verdict: ColumnDrift['verdict'], c: Colors): string {
  if (verdict === 'drift') return c.red(c.bold(`${MARK.fail} drift`))
  if (verdict === 'ok') return c.green(`${MARK.pass} ok`)
  return c.yellow('? not enough data')
}

export function monitorHtml(result: MonitorResult, now: Date): string {
  const all = [...result.features, ...result.predictions]
  const subject = result.artifact ? `${result.artifact.name}@${result.artifact.version}` : result.baseline.source
  const source = result.current.window
    ? `requests from ${result.current.window.from} to ${result.current.window.to}`
    : result.current.files.join(', ')
  const summary = `<p>Verdict: <span class="${result.verdict === 'drift' ? 'bad' : 'ok'}">${escapeHtml(result.verdict.replaceAll('_', ' '))}</span> — ${result.drifted.length} of ${all.length} columns drifted. ${formatNumber(result.current.records)} current records (${escapeHtml(source)}) against the baseline of ${formatNumber(result.baseline.rows)} rows (${escapeHtml(result.baseline.source)}).</p>`
  const rows = all.map((c) => ({
    cells: [
      columnName(c),
      c.method,
      num(c.statistic),
      pValueText(c),
      String(c.threshold),
      c.verdict.replaceAll('_', ' '),
      why(c),
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
  const note = rows.some((r) => r.cells[3].endsWith('†')) ? `<p class="muted">${escapeHtml(DAGGER_NOTE)}</p>` : ''
  const body = [
    summary,
    htmlTable(['column', 'method', 'statistic', 'p-value', 'threshold', 'verdict', 'why'], rows),
    note,
    `<h2>Every column</h2>\n<p class="muted">Baseline in grey, current in orange. Categories the baseline never saw are marked "new".</p>`,
    `<div class="grid">\n${all.map(chartsOf).join('\n')}\n</div>`,
  ].join('\n')
  return htmlPage({title: `Drift report: ${subject}`, subtitle: `mlops monitor, ${now.toISOString()}`, body})
}

function columnName(c: ColumnDrift): string {
  return c.target === 'prediction' ? `prediction:${c.name}` : c.name
}

/** The test's p-value, or for a distance a chi-square test of the current counts per bin against the baseline shares. */
function pValueOf(c: ColumnDrift): number | null {
  if (c.pValue !== null) return c.pValue
  if (c.statistic === null || c.bins.labels.length < 2) return null
  const observed = Object.fromEntries(
    c.bins.labels.map((l, i) => [l, Math.round(c.bins.current[i] * c.samples.current)]),
  )
  const baseline = Object.fromEntries(c.bins.labels.map((l, i) => [l, c.bins.baseline[i]]))
  return chiSquareTest(observed, baseline, 0.5 / Math.max(1, c.samples.baseline)).pValue
}

/** Why, in words: what moved (the bin whose share changed most), and the other reasons; never the statistic again. */
function why(c: ColumnDrift): string {
  const others = c.reasons.filter((r) => !r.startsWith(c.method))
  if (c.statistic === null) return others.join('; ')
  const {labels, baseline, current} = c.bins
  let most = 0
  labels.forEach((_, i) => {
    if (Math.abs(current[i] - baseline[i]) > Math.abs(current[most] - baseline[most])) most = i
  })
  const where = c.kind === 'numeric' ? `values ${readable(labels[most])}` : `"${labels[most]}"`
  const moved = `${where}: ${pct(baseline[most])} of the baseline, ${pct(current[most])} now`
  const lead = c.verdict === 'drift' ? `most moved: ${moved}` : `within the threshold; most moved: ${moved}`
  return [lead, ...others].join('; ')
}

/** A column's charts, small enough to sit side by side (and one to a row on a phone). */
function chartsOf(c: ColumnDrift): string {
  const name = columnName(c)
  const verdict = `<span class="${c.verdict === 'drift' ? 'bad' : c.verdict === 'ok' ? 'ok' : 'muted'}">${escapeHtml(c.verdict.replaceAll('_', ' '))}</span>`
  const head = `<h3>${escapeHtml(name)} · ${verdict}</h3>`
  if (c.bins.labels.length === 0)
    return `<section>${head}<p class="muted">${escapeHtml(c.reasons.join('; ') || 'no values to chart')}</p></section>`
  const series = [
    {name: 'baseline', values: c.bins.baseline},
    {name: 'current', values: c.bins.current},
  ]
  const share = (v: number) => pct(v)
  const unseen = new Set(c.unseen.map((u) => u.category))
  const bars = barChart(c.bins.labels.map(readable), series, {
    title: c.kind === 'numeric' ? 'share of values in each bin' : 'share of each category',
    width: 340,
    height: 170,
    format: share,
    yLabel: 'share',
    xLabel: c.kind === 'numeric' ? `${name} (between baseline deciles)` : 'category',
    marked: {indexes: c.bins.labels.flatMap((l, i) => (unseen.has(l) ? [i] : [])), label: 'new'},
  })
  const parts = [head, `<figure>${bars}<figcaption>${escapeHtml(why(c))}</figcaption></figure>`]
  if (c.quantiles) {
    parts.push(
      `<figure>${lineChart(
        c.quantiles.baseline.map((_, i) => i * 10),
        [
          {name: 'baseline', values: c.quantiles.baseline},
          {name: 'current', values: c.quantiles.current},
        ],
        {
          title: `percentiles of ${name}`,
          width: 340,
          height: 170,
          xFormat: (v) => `p${v}`,
          yLabel: 'value',
          xLabel: 'percentile',
        },
      )}</figure>`,
    )
  }
  return `<section>${parts.join('\n')}</section>`
}

/** Numbers in a bin label with thousands separated: "≤ 12345.5" reads "≤ 12,346". */
function readable(label: string): string {
  return label.replace(/-?\d+(?:\.\d+)?(?:e[+-]?\d+)?/g, (n) =>
    Math.abs(Number(n)) >= 1000 ? formatNumber(Number(n), 0) : n,
  )
}

function num(v: number | null): string {
  if (v === null) return '–'
  return Math.abs(v) >= 1e-3 || v === 0 ? String(Number(v.toPrecision(4))) : v.toExponential(2)
}

function pct(v: number): string {
  return `${Number((v * 100).toPrecision(3))}%`
}
