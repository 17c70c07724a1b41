// The HTML reports as a reader sees them: real reports from the CLI, opened in headless Chromium at phone and desk widths.
import assert from 'node:assert/strict'
import {existsSync} from 'node:fs'
import {mkdir, readFile, stat, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {type Browser, chromium} from 'playwright-core'
import {parse, parseDocument} from 'yaml'

import {exampleProject, mlops} from '../support/cli.js'

const CHROMIUM = '/usr/bin/chromium'
/** Where the screenshots go, to be looked at. */
const SHOTS = join(tmpdir(), 'mlops-report-screenshots')
const CHECKS = `
checks:
  load: {rate: 100, concurrency: 32, duration: 3s, warmup: 1s}
  latency: {gates: ["p50 <= 25ms", "p99 <= 100ms"], min_tail_samples: 2}
`
const PERCENTILES = ['p50', 'p90', 'p95', 'p99', 'p99.9', 'max']

/**
 * Runs in the page (plain JavaScript: the tests are not compiled with the DOM types): the page's scroll width, and the
 * text of every SVG <text> whose box, rotation included, reaches outside its chart's viewBox.
 */
const MEASURE = `(() => {
  const clipped = []
  for (const svg of document.querySelectorAll('svg')) {
    const box = svg.viewBox.baseVal
    const toSvg = svg.getScreenCTM().inverse()
    for (const text of svg.querySelectorAll('text')) {
      const b = text.getBBox()
      const m = toSvg.multiply(text.getScreenCTM())
      const corners = [[b.x, b.y], [b.x + b.width, b.y], [b.x, b.y + b.height], [b.x + b.width, b.y + b.height]]
      const out = corners
        .map(([x, y]) => new DOMPoint(x, y).matrixTransform(m))
        .some((p) => p.x < -0.5 || p.y < -0.5 || p.x > box.width + 0.5 || p.y > box.height + 0.5)
      if (out) clipped.push(text.textContent)
    }
  }
  return {scrollWidth: document.documentElement.scrollWidth, clipped}
})()`

interface Layout {
  scrollWidth: number
  /** Text of every SVG <text> that sticks out of its chart. */
  clipped: string[]
  /** Requests the page made besides loading itself. */
  fetched: string[]
}

describe('report screenshots in headless Chromium', function () {
  this.timeout(240_000)
  let example: Awaited<ReturnType<typeof exampleProject>>
  let browser: Browser | undefined
  const reports: Record<'test' | 'drift', string> = {test: '', drift: ''}

  before(async function () {
    if (!existsSync(CHROMIUM)) {
      if (process.env.CI) assert.fail(`${CHROMIUM} is missing: .ci/run installs chromium`)
      console.log(`    skipped: ${CHROMIUM} is not installed (apt-get install chromium)`)
      this.skip()
    }
    example = await exampleProject()
    const config = parseDocument(await readFile(join(example.project, 'mlops.yaml'), 'utf8'))
    config.set('checks', parse(CHECKS).checks)
    await writeFile(join(example.project, 'mlops.yaml'), config.toString())
    assert.equal((await mlops(['package', '--dir', example.project])).exitCode, 0)
    reports.test = join(example.tmp, 'test.html')
    reports.drift = join(example.tmp, 'drift.html')
    // A slow server: both latency gates fail, and every latency sits within a few ms of 120.
    const tested = await mlops(['test', '--only', 'load,latency', '--html', reports.test, '--dir', example.project], {
      env: {MLOPS_FAULT_LATENCY_MS: '120'},
    })
    assert.equal(tested.exitCode, 1, tested.stderr)
    // The failing run says which gate and why in its last line.
    assert.match(
      tested.stdout,
      /\n✗ failed: latency gate p50 <= 25ms at 100 rps: 1\d\d(\.\d+)? ms > 25 ms \(and 1 more\); 2\/4 gates passed in [\d.]+s\n/,
    )
    const input = join(example.project, 'data', 'current-shifted.csv')
    const drift = await mlops(['monitor', '--input', input, '--html', reports.drift, '--dir', example.project])
    assert.equal(drift.exitCode, 1, drift.stderr)
    await mkdir(SHOTS, {recursive: true})
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--no-first-run',
      ],
    })
  })
  after(async () => {
    await browser?.close()
    await example?.remove()
  })

  /** Opens a report at `width`, saves a full-page screenshot, and measures what a reader would notice. */
  async function open(name: keyof typeof reports, width: number): Promise<Layout> {
    const page = await browser!.newPage({viewport: {width, height: 2000}})
    const fetched: string[] = []
    page.on('request', (request) => {
      if (request.url() !== `file://${reports[name]}`) fetched.push(request.url())
    })
    await page.goto(`file://${reports[name]}`)
    const shot = join(SHOTS, `${name}-${width}.png`)
    await page.screenshot({path: shot, fullPage: true})
    assert.ok((await stat(shot)).size > 10_000, `a screenshot in ${shot}`)
    const layout = await page.evaluate<{scrollWidth: number; clipped: string[]}>(MEASURE)
    await page.close()
    return {...layout, fetched}
  }

  it('test report: threshold lines, the failing point marked, every percentile labelled, nothing clipped or fetched', async () => {
    const html = await readFile(reports.test, 'utf8')
    const chart = /<svg[^]*?aria-label="Latency percentiles: load"[^]*?<\/svg>/.exec(html)?.[0]
    assert.ok(chart, 'a percentile chart for the load phase')
    assert.equal(chart.match(/<line [^>]*class="threshold"/g)?.length, 2, 'a threshold line per latency gate')
    assert.ok(chart.includes('>p99 &lt;= 100ms</text>'), 'the p99 threshold labelled')
    assert.equal(chart.match(/class="failed-point"/g)?.length, 2, 'both failed gates ringed')
    const ticks = [...chart.matchAll(/class="x-tick">([^<]+)</g)].map((m) => m[1])
    assert.deepEqual(ticks, PERCENTILES)
    const histogram = /<svg[^]*?aria-label="Latency histogram: load"[^]*?<\/svg>/.exec(html)?.[0]
    assert.ok(histogram, 'a histogram')
    const bars = histogram.match(/<rect [^>]*height="[1-9][\d.]*"[^>]*><title>/g) ?? []
    assert.ok(bars.length >= 5, `latencies within a few ms still spread over bars (${bars.length})`)
    assert.ok(histogram.includes('latency from due time (ms)') && histogram.includes('>requests</text>'))
    assert.match(html, /<th class="num">p99 \(ms\)<\/th>/, 'numeric headers aligned with their column')
    for (const width of [390, 1000]) {
      const layout = await open('test', width)
      assert.ok(layout.scrollWidth <= width, `no horizontal scroll at ${width} px (${layout.scrollWidth})`)
      assert.deepEqual(layout.clipped, [], `no chart text outside its chart at ${width} px`)
      assert.deepEqual(layout.fetched, [])
    }
  })

  it('drift report: p-values filled, a why that is not the statistic, a chart per column, unseen categories marked', async () => {
    const html = await readFile(reports.drift, 'utf8')
    const rows = [...html.matchAll(/<tr><td data-label="column">([^<]+)<\/td>(.*?)<\/tr>/g)]
    assert.equal(rows.length, 9, 'seven features and two prediction fields')
    for (const [, column, cells] of rows) {
      const pValue = /data-label="p-value"[^>]*>([^<]*)</.exec(cells)![1]
      assert.match(pValue, /^(&lt; 1e-300|[\d.e-]+)( †)?$/, `${column}: a p-value`)
      const why = /data-label="why"[^>]*>([^<]*)</.exec(cells)![1]
      assert.match(why, /most moved: /, `${column}: says what moved`)
      assert.doesNotMatch(why, /^(psi|jensenshannon|ks|chi2) /, `${column}: not the statistic again`)
    }
    const sections = html.match(/<section><h3>/g) ?? []
    assert.equal(sections.length, 9, 'a chart for every column')
    assert.match(html, /class="marked">new<\/text>/, 'the unseen region marked')
    assert.match(html, /value \(log scale\)/, 'income percentiles on a log axis')
    assert.match(html, />500,000</, 'thousands separated')
    for (const width of [390, 1000]) {
      const layout = await open('drift', width)
      assert.ok(layout.scrollWidth <= width, `no horizontal scroll at ${width} px (${layout.scrollWidth})`)
      assert.deepEqual(layout.clipped, [], `no chart text outside its chart at ${width} px`)
      assert.deepEqual(layout.fetched, [])
    }
    console.log(`    screenshots: ${SHOTS}`)
  })
})
