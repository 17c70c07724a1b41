// Renders a performance result: a terminal table, JUnit (one testcase per version and gate), an HTML page with charts.
import {escapeHtml, htmlPage, htmlTable, lineChart} from '../report/html.js'
import {type JunitCase, junitXml} from '../report/junit.js'
import {table} from '../system/format.js'
import type {Estimate} from './outcomes.js'
import type {Metrics, PerformanceResult, VersionPerformance} from './performance-types.js'

const CLASSIFICATION = ['accuracy', 'precision', 'recall', 'f1', 'roc_auc'] as const
const REGRESSION = ['mae', 'rmse', 'r2'] as const

function names(result: PerformanceResult): readonly string[] {
  return result.task === 'regression' ? REGRESSION : CLASSIFICATION
}

function estimateOf(metrics: Metrics | undefined, name: string): Estimate | undefined {
  return (metrics as unknown as Record<string, Estimate | undefined> | undefined)?.[name]
}

function show(estimate: Estimate | undefined): string {
  if (!estimate) return '–'
  const ci =
    estimate.ci && Number.isFinite(estimate.ci.low) ? ` [${fixed(estimate.ci.low)}, ${fixed(estimate.ci.high)}]` : ''
  return `${fixed(estimate.value)}${ci}`
}

function fixed(v: number): string {
  return Number.isFinite(v) ? v.toFixed(3) : '–'
}

function coverage(v: VersionPerformance): string {
  return `${v.labeled}/${v.predictions} (${(v.coverage * 100).toFixed(1)}%)`
}

export function performanceTable(result: PerformanceResult): string {
  const metrics = names(result)
  return table(
    ['version', 'truth arrived', ...metrics],
    result.versions.map((v) => [v.version, coverage(v), ...metrics.map((m) => show(estimateOf(v.metrics, m)))]),
  )
}

export function performanceJunit(result: PerformanceResult, now: Date): string {
  const cases: JunitCase[] = result.versions.flatMap((v) =>
    v.gates.map((g) => ({
      name: `${v.version}: ${g.gate}`,
      classname: `performance.${g.metric}`,
      failure: g.verdict === 'fail' ? {message: g.message, type: 'performance'} : undefined,
      skipped: g.verdict === 'not_enough_data' ? g.message : undefined,
      output: g.verdict === 'pass' ? g.message : undefined,
    })),
  )
  return junitXml([
    {
      name: 'performance',
      timestamp: now.toISOString(),
      properties: {task: result.task, since: result.window.since},
      cases,
    },
  ])
}

export function performanceHtml(result: PerformanceResult, now: Date): string {
  const metrics = names(result)
  const summary = `<p>Verdict: <span class="${result.verdict === 'fail' ? 'bad' : 'ok'}">${escapeHtml(result.verdict.replaceAll('_', ' '))}</span>. ${escapeHtml(result.task)} on predictions from ${escapeHtml(result.window.from)} to ${escapeHtml(result.window.to)}, joined to ${result.feedback.items} feedback items (${escapeHtml(result.feedback.file)}).${result.failed.length ? ` Failed: ${escapeHtml(result.failed.join(', '))}.` : ''}</p>`
  const rows = result.versions.map((v) => ({
    cells: [v.version, coverage(v), ...metrics.map((m) => show(estimateOf(v.metrics, m)))],
    classes: [undefined, 'num', ...metrics.map(() => 'num')],
  }))
  const charts = result.versions.flatMap((v) => {
    const parts: string[] = []
    const windows = v.windows.filter((w) => w.metrics)
    if (windows.length > 1) {
      const x = windows.map((w) => Date.parse(w.from))
      const series = metrics
        .filter((m) => m !== 'mae' && m !== 'rmse')
        .map((m) => ({name: m, values: windows.map((w) => estimateOf(w.metrics, m)?.value ?? Number.NaN)}))
      if (result.task === 'regression')
        series.push(
          ...(['mae', 'rmse'] as const).map((m) => ({
            name: m,
            values: windows.map((w) => estimateOf(w.metrics, m)?.value ?? Number.NaN),
          })),
        )
      parts.push(
        `<figure>${lineChart(x, series, {title: `${v.version}: per window`, xFormat: (t) => new Date(t).toISOString().slice(5, 16)})}</figure>`,
      )
      parts.push(
        `<figure>${lineChart(x, [{name: 'truth arrived', values: windows.map((w) => w.labeled / w.predictions)}], {title: `${v.version}: share of predictions with truth`, format: (s) => `${Math.round(s * 100)}%`, xFormat: (t) => new Date(t).toISOString().slice(5, 16)})}</figure>`,
      )
    }
    const bins = v.metrics && 'calibration' in v.metrics ? v.metrics.calibration : undefined
    if (bins && bins.length > 1)
      parts.push(
        `<figure>${lineChart(
          bins.map((b) => b.predicted),
          [
            {name: 'observed share positive', values: bins.map((b) => b.observed)},
            {name: 'perfect calibration', values: bins.map((b) => b.predicted)},
          ],
          {title: `${v.version}: calibration (predicted probability → observed)`},
        )}</figure>`,
      )
    return parts.length ? [`<h3>${escapeHtml(v.version)}</h3>`, ...parts] : []
  })
  const body = [
    summary,
    htmlTable(['version', 'truth arrived', ...metrics], rows),
    charts.length ? `<h2>Charts</h2>\n${charts.join('\n')}` : '',
  ].join('\n')
  return htmlPage({title: 'Model performance', subtitle: `mlops monitor --performance, ${now.toISOString()}`, body})
}
