// Self-contained HTML reports: one page shell with inline CSS, and small inline-SVG charts (grouped bars, lines); no scripts, no CDN.

export interface ChartSeries {
  name: string
  values: number[]
  /** CSS color; by default the palette in order (first series muted: it is usually the baseline). */
  color?: string
}

export interface ChartOptions {
  title?: string
  /** Drawn at this size; the page scales it down to a narrow screen. */
  width?: number
  height?: number
  /** How values are written on the axis and in tooltips. */
  format?: (value: number) => string
  /** Axis titles: drawn clear of the tick labels. */
  yLabel?: string
  xLabel?: string
}

/** A horizontal line across the plot at `value` (a gate's threshold), labelled at its right end. */
export interface Threshold {
  value: number
  label: string
}

/** One point called out: a ring and its label (a gate's measured value; red when it failed). */
export interface Callout {
  /** Index into x. */
  index: number
  value: number
  label: string
  failed: boolean
}

export interface LineChartOptions extends ChartOptions {
  xFormat?: (value: number) => string
  /** `auto`: a log axis when all values are positive and the largest is over 20 times the smallest. */
  scale?: 'linear' | 'log' | 'auto'
  thresholds?: Threshold[]
  callouts?: Callout[]
}

export interface BarChartOptions extends ChartOptions {
  /** Indexes of labels to mark (e.g. categories the baseline never saw), with the word written above them. */
  marked?: {indexes: number[]; label: string}
}

const PALETTE = ['#8a9bb0', '#e0702b', '#2b8ae0', '#3fa34d', '#a23fa3']
const FAIL = '#b3261e'
const PASS = '#2e7d32'
const FONT_SIZE = 12
const FONT = `font-family="system-ui, sans-serif" font-size="${FONT_SIZE}"`
/** Width of a character of FONT, generously: labels are laid out from it. */
const CHAR = 7

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (ch) => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'})[ch]!)
}

/** A whole page: the title, an optional line under it, and body HTML the caller built (escape text with escapeHtml). */
export function htmlPage(options: {title: string; subtitle?: string; body: string}): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(options.title)}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:60rem;padding:0 1rem;color:#1d2430;line-height:1.4;overflow-wrap:anywhere}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.15rem;margin-top:2rem}h3{font-size:1rem}
.sub{color:#5b6675;margin-top:0}
.table{overflow-x:auto}
table{border-collapse:collapse;width:100%;margin:1rem 0;font-size:.9rem;overflow-wrap:normal}
th,td{text-align:left;padding:.35rem .6rem;border-bottom:1px solid #e3e7ed;vertical-align:top}th{background:#f5f7fa}
th.num,td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.nowrap{white-space:nowrap}.bad{color:#b3261e;font-weight:600}.ok{color:#2e7d32}.muted{color:#5b6675}
figure{margin:1rem 0}figcaption{font-size:.85rem;color:#5b6675}
svg{max-width:100%;height:auto}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(20rem,1fr));gap:0 1.5rem}
@media (max-width:40rem){
body{margin:1rem auto}
table,tbody,tr,td{display:block;width:auto}thead,tr.head{display:none}
tr{border-bottom:2px solid #e3e7ed;padding:.3rem 0}td{border:0;padding:.1rem 0}
td.num{text-align:left}td[data-label]::before{content:attr(data-label) ": ";color:#5b6675;font-weight:400}
.grid{grid-template-columns:1fr}
}
</style>
</head>
<body>
<h1>${escapeHtml(options.title)}</h1>
${options.subtitle ? `<p class="sub">${escapeHtml(options.subtitle)}</p>\n` : ''}${options.body}
</body>
</html>
`
}

/**
 * A table of text cells (escaped); `classes` marks cells, e.g. `num` (right-aligned, under a right-aligned header) or
 * `bad`. On a narrow screen each row becomes a card of "header: value" lines.
 */
export function htmlTable(headers: string[], rows: {cells: string[]; classes?: (string | undefined)[]}[]): string {
  const numeric = headers.map(
    (_, i) => rows.length > 0 && rows.every((r) => r.classes?.[i]?.split(' ').includes('num')),
  )
  const head = `<tr class="head">${headers.map((h, i) => `<th${numeric[i] ? ' class="num"' : ''}>${escapeHtml(h)}</th>`).join('')}</tr>`
  const body = rows
    .map(
      (r) =>
        `<tr>${r.cells.map((c, i) => `<td data-label="${escapeHtml(headers[i] ?? '')}"${r.classes?.[i] ? ` class="${r.classes[i]}"` : ''}>${escapeHtml(c)}</td>`).join('')}</tr>`,
    )
    .join('\n')
  return `<div class="table"><table>\n${head}\n${body}\n</table></div>`
}

/** Grouped vertical bars: one group per label, one bar per series (e.g. baseline vs current share per bin). */
export function barChart(labels: string[], series: ChartSeries[], options: BarChartOptions = {}): string {
  const width = options.width ?? 480
  const format = options.format ?? defaultFormat
  const max = niceMax(Math.max(0, ...series.flatMap((s) => s.values.filter(Number.isFinite))))
  const ticks = linearTicks(0, max)
  // Labels are drawn at -35°: leave room below them for their length, the axis title and the legend.
  const labelDrop = Math.ceil(
    Math.max(0, ...labels.map((l) => shorten(l).length)) * CHAR * Math.sin((35 * Math.PI) / 180),
  )
  const plot = frame(options, ticks.map(format), {
    bottom: labelDrop + 22 + (options.xLabel ? 16 : 0) + legendHeight(series),
  })
  const height = (options.height ?? 220) + plot.bottom
  const innerW = width - plot.left - plot.right
  const innerH = height - plot.top - plot.bottom
  const group = innerW / Math.max(labels.length, 1)
  const barW = Math.max(1, (group * 0.8) / Math.max(series.length, 1))
  const y = (v: number) => plot.top + innerH - (max > 0 ? (v / max) * innerH : 0)
  const parts: string[] = [
    svgOpen(width, height, options.title),
    ...yAxis(plot, width, height, ticks, y, format, options),
  ]
  const marked = new Set(options.marked?.indexes)
  // Rotated labels need about 28 px each: past that, every n-th label (marked ones always).
  const every = Math.max(1, Math.ceil(labels.length / Math.max(1, Math.floor(innerW / 28))))
  labels.forEach((label, i) => {
    const x0 = plot.left + i * group + group * 0.1
    let top = plot.top + innerH
    series.forEach((s, k) => {
      const v = s.values[i] ?? 0
      const barTop = y(Number.isFinite(v) ? v : 0)
      top = Math.min(top, barTop)
      parts.push(
        `<rect x="${r(x0 + k * barW)}" y="${r(barTop)}" width="${r(barW)}" height="${r(plot.top + innerH - barTop)}" fill="${colorOf(s, k)}"><title>${escapeHtml(`${s.name} · ${label}: ${format(v)}`)}</title></rect>`,
      )
    })
    const cx = plot.left + i * group + group / 2
    if (marked.has(i))
      parts.push(
        `<text x="${r(cx)}" y="${r(Math.max(plot.top + 10, top - 4))}" ${FONT} text-anchor="middle" fill="${FAIL}" font-weight="600" class="marked">${escapeHtml(options.marked!.label)}</text>`,
      )
    if (i % every === 0 || marked.has(i))
      parts.push(
        `<text x="${r(cx)}" y="${plot.top + innerH + 14}" ${FONT} text-anchor="end" transform="rotate(-35 ${r(cx)} ${plot.top + innerH + 14})"${marked.has(i) ? ` fill="${FAIL}"` : ''}>${escapeHtml(shorten(label))}</text>`,
      )
  })
  if (options.xLabel) parts.push(xTitle(options.xLabel, plot.left + innerW / 2, plot.top + innerH + labelDrop + 30))
  parts.push(...legend(series, plot.left, width, height - legendHeight(series) + 12), '</svg>')
  return parts.join('\n')
}

/** Lines over numeric x values (e.g. percentiles against the quantile level), with gate thresholds and callouts. */
export function lineChart(x: number[], series: ChartSeries[], options: LineChartOptions = {}): string {
  const width = options.width ?? 480
  const format = options.format ?? defaultFormat
  const xFormat = options.xFormat ?? defaultFormat
  const thresholds = options.thresholds ?? []
  const callouts = options.callouts ?? []
  const values = [...series.flatMap((s) => s.values), ...thresholds.map((t) => t.value)].filter(Number.isFinite)
  const axis = valueAxis(values, options.scale ?? 'auto')
  // Every x labelled while they fit side by side (about 8 px a character and a gap); past that every n-th, the last kept.
  const room = Math.max(...x.map((v) => xFormat(v).length)) * CHAR + 10
  const every = Math.max(1, Math.ceil((x.length * room) / (width - 80)))
  const xTicks = x.filter((_, i) => i % every === 0 || i === x.length - 1)
  const plot = frame(options, axis.ticks.map(format), {
    bottom: 22 + (options.xLabel ? 16 : 0) + legendHeight(series),
    // The last x label is centred on the right edge of the plot: room for its other half.
    right: Math.max(12, (Math.max(0, ...xTicks.map((v) => xFormat(v).length)) * CHAR) / 2 + 4),
  })
  const height = (options.height ?? 220) + plot.bottom
  const innerW = width - plot.left - plot.right
  const innerH = height - plot.top - plot.bottom
  const xMin = Math.min(...x)
  const xMax = Math.max(...x)
  const px = (v: number) => plot.left + (xMax > xMin ? ((v - xMin) / (xMax - xMin)) * innerW : innerW / 2)
  const py = (v: number) => plot.top + innerH - axis.position(v) * innerH
  const parts: string[] = [
    svgOpen(width, height, options.title),
    ...yAxis(plot, width, height, axis.ticks, py, format, {
      ...options,
      yLabel: options.yLabel && axis.log ? `${options.yLabel} (log scale)` : options.yLabel,
    }),
  ]
  for (const v of xTicks)
    parts.push(
      `<text x="${r(px(v))}" y="${plot.top + innerH + 16}" ${FONT} text-anchor="middle" class="x-tick">${escapeHtml(xFormat(v))}</text>`,
    )
  if (options.xLabel) parts.push(xTitle(options.xLabel, plot.left + innerW / 2, plot.top + innerH + 32))
  for (const t of thresholds) {
    const ty = py(t.value)
    parts.push(
      `<line x1="${plot.left}" x2="${width - plot.right}" y1="${r(ty)}" y2="${r(ty)}" stroke="${FAIL}" stroke-width="1.5" stroke-dasharray="6 4" class="threshold"><title>${escapeHtml(t.label)}</title></line>`,
      `<text x="${width - plot.right}" y="${r(ty - 4)}" ${FONT} text-anchor="end" fill="${FAIL}">${escapeHtml(t.label)}</text>`,
    )
  }
  series.forEach((s, k) => {
    const points = x.map((xv, i) => [xv, s.values[i]] as const).filter(([, v]) => Number.isFinite(v))
    parts.push(
      `<polyline fill="none" stroke="${colorOf(s, k)}" stroke-width="2" points="${points.map(([xv, v]) => `${r(px(xv))},${r(py(v))}`).join(' ')}"/>`,
    )
    for (const [xv, v] of points)
      parts.push(
        `<circle cx="${r(px(xv))}" cy="${r(py(v))}" r="2.5" fill="${colorOf(s, k)}"><title>${escapeHtml(`${s.name} · ${xFormat(xv)}: ${format(v)}`)}</title></circle>`,
      )
  })
  for (const c of callouts) {
    const cx = px(x[c.index])
    const cy = py(c.value)
    const color = c.failed ? FAIL : PASS
    // Left of the point on the right half, right of it on the left half: the label stays inside the chart.
    const right = cx > plot.left + innerW / 2
    parts.push(
      `<circle cx="${r(cx)}" cy="${r(cy)}" r="6" fill="none" stroke="${color}" stroke-width="2" class="${c.failed ? 'failed-point' : 'gate-point'}"/>`,
      `<text x="${r(right ? cx - 10 : cx + 10)}" y="${r(Math.max(plot.top + 12, cy - 8))}" ${FONT} font-weight="600" text-anchor="${right ? 'end' : 'start'}" fill="${color}">${escapeHtml(c.label)}</text>`,
    )
  }
  parts.push(...legend(series, plot.left, width, height - legendHeight(series) + 12), '</svg>')
  return parts.join('\n')
}

interface Plot {
  left: number
  right: number
  top: number
  bottom: number
}

/** Margins that fit the widest tick label and the axis title beside it, so neither collides with the other. */
function frame(options: ChartOptions, tickLabels: string[], rest: {bottom: number; right?: number}): Plot {
  const ticks = Math.max(...tickLabels.map((t) => t.length)) * CHAR
  return {
    left: ticks + 8 + (options.yLabel ? 20 : 4),
    right: rest.right ?? 12,
    top: options.title ? 28 : 10,
    bottom: rest.bottom,
  }
}

interface ValueAxis {
  ticks: number[]
  /** 0 at the bottom of the plot, 1 at the top. */
  position: (v: number) => number
  log: boolean
}

function valueAxis(values: number[], scale: NonNullable<LineChartOptions['scale']>): ValueAxis {
  const min = Math.min(...values)
  const max = Math.max(...values)
  const log = scale === 'log' || (scale === 'auto' && min > 0 && max / min > 20)
  if (log && min > 0) {
    const lo = 10 ** Math.floor(Math.log10(min))
    const hi = niceMax(max)
    const span = Math.log10(hi) - Math.log10(lo)
    return {
      ticks: logTicks(lo, hi),
      position: (v) => (Math.log10(Math.max(v, lo)) - Math.log10(lo)) / span,
      log: true,
    }
  }
  const lo = Math.min(0, min)
  const hi = niceMax(max - lo) + lo
  return {ticks: linearTicks(lo, hi), position: (v) => (hi > lo ? (v - lo) / (hi - lo) : 0), log: false}
}

function linearTicks(lo: number, hi: number): number[] {
  return Array.from({length: 5}, (_, i) => lo + ((hi - lo) * i) / 4)
}

/** 1, 2, 5 × 10^k between lo and hi; only the powers of ten when that makes too many. */
function logTicks(lo: number, hi: number): number[] {
  const all: number[] = []
  for (let p = lo; p <= hi * 1.0001; p *= 10)
    for (const m of [1, 2, 5]) if (p * m <= hi * 1.0001) all.push(Number((p * m).toPrecision(3)))
  return all.length <= 8 ? all : all.filter((v) => Number.isInteger(Math.log10(v)) || v === all.at(-1))
}

function svgOpen(width: number, height: number, title?: string): string {
  const heading = title ? `\n<text x="4" y="16" ${FONT} font-weight="600">${escapeHtml(title)}</text>` : ''
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img"${title ? ` aria-label="${escapeHtml(title)}"` : ''}>${heading}`
}

function yAxis(
  plot: Plot,
  width: number,
  height: number,
  ticks: number[],
  y: (v: number) => number,
  format: (v: number) => string,
  options: ChartOptions,
): string[] {
  const out: string[] = []
  for (const v of ticks)
    out.push(
      `<line x1="${plot.left}" x2="${width - plot.right}" y1="${r(y(v))}" y2="${r(y(v))}" stroke="#e3e7ed"/>`,
      `<text x="${plot.left - 6}" y="${r(y(v) + 4)}" ${FONT} text-anchor="end">${escapeHtml(format(v))}</text>`,
    )
  if (options.yLabel) {
    const middle = (plot.top + height - plot.bottom) / 2
    out.push(
      `<text x="14" y="${r(middle)}" ${FONT} transform="rotate(-90 14 ${r(middle)})" text-anchor="middle" class="axis-title">${escapeHtml(options.yLabel)}</text>`,
    )
  }
  return out
}

function xTitle(text: string, x: number, y: number): string {
  return `<text x="${r(x)}" y="${r(y)}" ${FONT} text-anchor="middle" class="axis-title">${escapeHtml(text)}</text>`
}

/** Legend items flow onto as many lines as the width needs. */
function legend(series: ChartSeries[], left: number, width: number, y: number): string[] {
  let at = left
  let line = 0
  return series.map((s, k) => {
    const w = 24 + s.name.length * CHAR
    if (at > left && at + w > width) {
      at = left
      line++
    }
    const ly = y + line * 16
    const item = `<rect x="${r(at)}" y="${ly - 9}" width="10" height="10" fill="${colorOf(s, k)}"/><text x="${r(at + 14)}" y="${ly}" ${FONT}>${escapeHtml(s.name)}</text>`
    at += w
    return item
  })
}

/** Room for the legend: one line per ~300 px of names (an estimate; legend() wraps at the real width). */
function legendHeight(series: ChartSeries[]): number {
  const total = series.reduce((sum, s) => sum + 24 + s.name.length * CHAR, 0)
  return 8 + 16 * Math.max(1, Math.ceil(total / 300))
}

function colorOf(s: ChartSeries, k: number): string {
  return s.color ?? PALETTE[k % PALETTE.length]
}

/** The next 1, 2 or 5 × 10^k at or above `v`, so axis ticks are round numbers. */
function niceMax(v: number): number {
  if (v <= 0) return 1
  const p = 10 ** Math.floor(Math.log10(v))
  return ([1, 2, 5, 10].find((m) => m * p >= v * 0.9999) ?? 10) * p
}

/** Three significant digits, thousands separated: 12,300 and 0.0123. */
export function defaultFormat(v: number): string {
  return Number(v.toPrecision(3)).toLocaleString('en-US', {maximumFractionDigits: 6})
}

function shorten(label: string): string {
  return label.length > 18 ? `${label.slice(0, 17)}…` : label
}

function r(v: number): string {
  return String(Math.round(v * 10) / 10)
}
