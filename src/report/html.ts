// Self-contained HTML reports: one page shell with inline CSS, and small inline-SVG charts (grouped bars, lines); no scripts, no CDN.

export interface ChartSeries {
  name: string
  values: number[]
  /** CSS color; by default the palette in order (first series muted: it is usually the baseline). */
  color?: string
}

export interface ChartOptions {
  title?: string
  width?: number
  height?: number
  /** How values are written on the axis and in tooltips. */
  format?: (value: number) => string
  yLabel?: string
}

const PALETTE = ['#8a9bb0', '#e0702b', '#2b8ae0', '#3fa34d', '#a23fa3']
const FONT = 'font-family="system-ui, sans-serif" font-size="11"'

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
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:60rem;padding:0 1rem;color:#1d2430;line-height:1.4}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.15rem;margin-top:2rem}
.sub{color:#5b6675;margin-top:0}
table{border-collapse:collapse;width:100%;margin:1rem 0;font-size:.9rem}
th,td{text-align:left;padding:.35rem .6rem;border-bottom:1px solid #e3e7ed}th{background:#f5f7fa}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.bad{color:#b3261e;font-weight:600}.ok{color:#2e7d32}.muted{color:#5b6675}
figure{margin:1rem 0}figcaption{font-size:.85rem;color:#5b6675}
</style>
</head>
<body>
<h1>${escapeHtml(options.title)}</h1>
${options.subtitle ? `<p class="sub">${escapeHtml(options.subtitle)}</p>\n` : ''}${options.body}
</body>
</html>
`
}

/** A table of text cells (escaped); `classes` marks cells, e.g. `num` or `bad`. */
export function htmlTable(headers: string[], rows: {cells: string[]; classes?: (string | undefined)[]}[]): string {
  const head = `<tr>${headers.map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr>`
  const body = rows
    .map(
      (r) =>
        `<tr>${r.cells.map((c, i) => `<td${r.classes?.[i] ? ` class="${r.classes[i]}"` : ''}>${escapeHtml(c)}</td>`).join('')}</tr>`,
    )
    .join('\n')
  return `<table>\n${head}\n${body}\n</table>`
}

/** Grouped vertical bars: one group per label, one bar per series (e.g. baseline vs current share per bin). */
export function barChart(labels: string[], series: ChartSeries[], options: ChartOptions = {}): string {
  const width = options.width ?? 640
  // Labels are drawn at -35°: leave room below them for their length and for the legend.
  const labelDrop = Math.ceil(Math.max(0, ...labels.map((l) => shorten(l).length)) * 7 * Math.sin((35 * Math.PI) / 180))
  const bottom = Math.max(56, labelDrop + 40)
  const height = (options.height ?? 240) + bottom - 56
  const format = options.format ?? defaultFormat
  const plot = {left: 48, right: 8, top: options.title ? 22 : 8, bottom}
  const innerW = width - plot.left - plot.right
  const innerH = height - plot.top - plot.bottom
  const max = niceMax(Math.max(0, ...series.flatMap((s) => s.values.filter(Number.isFinite))))
  const group = innerW / Math.max(labels.length, 1)
  const barW = Math.max(1, (group * 0.8) / Math.max(series.length, 1))
  const y = (v: number) => plot.top + innerH - (max > 0 ? (v / max) * innerH : 0)
  const parts: string[] = [
    svgOpen(width, height, options.title),
    ...yAxis(plot.left, width - plot.right, y, max, format, options),
  ]
  labels.forEach((label, i) => {
    const x0 = plot.left + i * group + group * 0.1
    series.forEach((s, k) => {
      const v = s.values[i] ?? 0
      const top = y(Number.isFinite(v) ? v : 0)
      parts.push(
        `<rect x="${r(x0 + k * barW)}" y="${r(top)}" width="${r(barW)}" height="${r(plot.top + innerH - top)}" fill="${colorOf(s, k)}"><title>${escapeHtml(`${s.name} · ${label}: ${format(v)}`)}</title></rect>`,
      )
    })
    const cx = plot.left + i * group + group / 2
    parts.push(
      `<text x="${r(cx)}" y="${plot.top + innerH + 12}" ${FONT} text-anchor="end" transform="rotate(-35 ${r(cx)} ${plot.top + innerH + 12})">${escapeHtml(shorten(label))}</text>`,
    )
  })
  parts.push(...legend(series, plot.left, height - 8), '</svg>')
  return parts.join('\n')
}

/** Lines over numeric x values (e.g. percentiles against the quantile level, or latency over time). */
export function lineChart(
  x: number[],
  series: ChartSeries[],
  options: ChartOptions & {xFormat?: (value: number) => string} = {},
): string {
  const width = options.width ?? 640
  const height = options.height ?? 240
  const format = options.format ?? defaultFormat
  const xFormat = options.xFormat ?? defaultFormat
  const plot = {left: 56, right: 12, top: options.title ? 22 : 8, bottom: 40}
  const innerW = width - plot.left - plot.right
  const innerH = height - plot.top - plot.bottom
  const values = series.flatMap((s) => s.values.filter(Number.isFinite))
  const lo = Math.min(0, ...values)
  const max = niceMax(Math.max(0, ...values) - lo) + lo
  const xMin = Math.min(...x)
  const xMax = Math.max(...x)
  const px = (v: number) => plot.left + (xMax > xMin ? ((v - xMin) / (xMax - xMin)) * innerW : innerW / 2)
  const py = (v: number) => plot.top + innerH - (max > lo ? ((v - lo) / (max - lo)) * innerH : 0)
  const parts: string[] = [
    svgOpen(width, height, options.title),
    ...yAxis(plot.left, width - plot.right, py, max, format, options, lo),
  ]
  for (const v of [xMin, (xMin + xMax) / 2, xMax])
    parts.push(
      `<text x="${r(px(v))}" y="${plot.top + innerH + 14}" ${FONT} text-anchor="middle">${escapeHtml(xFormat(v))}</text>`,
    )
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
  parts.push(...legend(series, plot.left, height - 6), '</svg>')
  return parts.join('\n')
}

function svgOpen(width: number, height: number, title?: string): string {
  const heading = title ? `\n<text x="4" y="14" ${FONT} font-weight="600">${escapeHtml(title)}</text>` : ''
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img"${title ? ` aria-label="${escapeHtml(title)}"` : ''}>${heading}`
}

function yAxis(
  left: number,
  right: number,
  y: (v: number) => number,
  max: number,
  format: (v: number) => string,
  options: ChartOptions,
  lo = 0,
): string[] {
  const out: string[] = []
  for (let i = 0; i <= 4; i++) {
    const v = lo + ((max - lo) * i) / 4
    out.push(
      `<line x1="${left}" x2="${right}" y1="${r(y(v))}" y2="${r(y(v))}" stroke="#e3e7ed"/>`,
      `<text x="${left - 4}" y="${r(y(v) + 3)}" ${FONT} text-anchor="end">${escapeHtml(format(v))}</text>`,
    )
  }
  if (options.yLabel)
    out.push(
      `<text x="10" y="${r(y((lo + max) / 2))}" ${FONT} transform="rotate(-90 10 ${r(y((lo + max) / 2))})" text-anchor="middle">${escapeHtml(options.yLabel)}</text>`,
    )
  return out
}

function legend(series: ChartSeries[], x: number, y: number): string[] {
  let at = x
  return series.map((s, k) => {
    const item = `<rect x="${at}" y="${y - 8}" width="10" height="10" fill="${colorOf(s, k)}"/><text x="${at + 14}" y="${y + 1}" ${FONT}>${escapeHtml(s.name)}</text>`
    at += 24 + s.name.length * 7
    return item
  })
}

function colorOf(s: ChartSeries, k: number): string {
  return s.color ?? PALETTE[k % PALETTE.length]
}

/** The next 1, 2 or 5 × 10^k at or above `v`, so axis ticks are round numbers. */
function niceMax(v: number): number {
  if (v <= 0) return 1
  const p = 10 ** Math.floor(Math.log10(v))
  return ([1, 2, 5, 10].find((m) => m * p >= v) ?? 10) * p
}

function defaultFormat(v: number): string {
  return String(Number(v.toPrecision(3)))
}

function shorten(label: string): string {
  return label.length > 18 ? `${label.slice(0, 17)}…` : label
}

function r(v: number): string {
  return String(Math.round(v * 10) / 10)
}
