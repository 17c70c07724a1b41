// End to end: package the credit-risk example, serve it, send shifted traffic, then monitor from the server's own request log.
import assert from 'node:assert/strict'
import {cp, readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {execa} from 'execa'

import {packageProject} from '../../src/artifact/package.js'
import {readRecords} from '../../src/data/records.js'
import {runMonitor} from '../../src/monitor/run.js'
import {packageRoot} from '../../src/paths.js'
import {startServing} from '../../src/serve/load.js'
import {tempDir} from '../support/cli.js'
import {assertMatchesSchema} from '../support/schema.js'

const EXAMPLE = join(packageRoot, 'examples', 'credit-risk')
const CLI = ['--import', 'tsx', join(packageRoot, 'test', 'support', 'run-source.ts')]

/** JSON clients send numbers and booleans, not the strings a CSV holds. */
function asJson(record: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(record))
    out[k] =
      v === 'true'
        ? true
        : v === 'false'
          ? false
          : typeof v === 'string' && v !== '' && Number.isFinite(Number(v))
            ? Number(v)
            : v
  return out
}

describe('mlops monitor on live traffic', function () {
  let dir: Awaited<ReturnType<typeof tempDir>>

  before(async () => {
    dir = await tempDir('mlops-monitor-')
    for (const entry of ['mlops.yaml', 'model', 'data', 'golden.jsonl'])
      await cp(join(EXAMPLE, entry), join(dir.path, entry), {recursive: true})
    // The example's config already logs requests (serving.request_log); the window of the last hour is enough here.
    const yaml = await readFile(join(dir.path, 'mlops.yaml'), 'utf8')
    assert.match(yaml, /request_log:/)
    await writeFile(join(dir.path, 'mlops.yaml'), `${yaml}\nmonitor:\n  since: 1h\n`)
    await packageProject({dir: dir.path})
    const serving = await startServing({dir: dir.path, settings: {port: 0}})
    try {
      let batch: Record<string, unknown>[] = []
      const send = async () => {
        const response = await fetch(`${serving.url}/v1/predict`, {
          method: 'POST',
          headers: {'content-type': 'application/json'},
          body: JSON.stringify({instances: batch}),
        })
        assert.equal(response.status, 200, await response.text())
        batch = []
      }
      for await (const {record} of readRecords(join(dir.path, 'data', 'current-shifted.csv'))) {
        batch.push(asJson(record))
        if (batch.length === 50) await send()
      }
      if (batch.length > 0) await send()
    } finally {
      await serving.stop()
    }
  })

  after(() => dir.remove())

  it('flags income, debt_ratio and region from the server log, and checks the predictions too', async () => {
    const result = await runMonitor({dir: dir.path})
    assert.equal(result.current.source, 'request_log')
    assert.equal(result.current.records, 2000)
    assert.equal(result.artifact?.name, 'credit-risk')
    assert.deepEqual(
      result.features
        .filter((c) => c.verdict === 'drift')
        .map((c) => c.name)
        .sort(),
      ['debt_ratio', 'income', 'region'],
    )
    assert.ok(result.predictions.length > 0, 'the artifact profiles predictions and the log carries them')
    for (const p of result.predictions) assert.equal(p.samples.current, 2000, p.name)
  })

  it('scores an --input batch with the artifact, giving the same prediction drift as the same records served', async () => {
    const served = await runMonitor({dir: dir.path})
    const batch = await runMonitor({dir: dir.path, input: join(dir.path, 'data', 'current-shifted.csv')})
    assert.equal(batch.current.source, 'input')
    assert.equal(batch.current.records, 2000)
    assert.deepEqual(batch.current.skipped, {})
    assert.ok(batch.predictions.length > 0)
    const summary = (r: typeof served) =>
      r.predictions.map((p) => ({
        name: p.name,
        verdict: p.verdict,
        samples: p.samples.current,
        statistic: p.statistic === null ? null : Number(p.statistic.toFixed(9)),
      }))
    assert.deepEqual(summary(batch), summary(served))
    assert.deepEqual(
      batch.features.map((f) => [f.name, f.verdict]),
      served.features.map((f) => [f.name, f.verdict]),
    )
  })

  it('the CLI exits 1 with --json matching its schema, and writes JUnit naming the drifted features and an HTML chart per drifted column', async () => {
    const junit = join(dir.path, 'reports', 'drift.xml')
    const html = join(dir.path, 'reports', 'drift.html')
    const run = await execa(
      'node',
      [...CLI, 'monitor', '--since', '2h', '--json', '--junit', junit, '--html', html, '--dir', dir.path],
      {env: {CI: 'true'}, reject: false},
    )
    assert.equal(run.exitCode, 1, String(run.stderr))
    const json = JSON.parse(String(run.stdout))
    assertMatchesSchema(json, 'monitor')
    assert.equal(json.verdict, 'drift')
    assert.equal(json.current.window.since, '2h')

    // Python's XML parser as an independent check that the file is well-formed.
    const parsed = await execa('/usr/bin/python3', [
      '-c',
      'import sys, json\nfrom xml.dom import minidom\nd = minidom.parse(sys.argv[1])\nprint(json.dumps([[c.getAttribute("name"), c.getAttribute("classname"), len(c.getElementsByTagName("failure"))] for c in d.getElementsByTagName("testcase")]))',
      junit,
    ])
    const cases = JSON.parse(String(parsed.stdout)) as [string, string, number][]
    const failing = cases
      .filter(([, , failures]) => failures > 0)
      .map(([name, classname]) => (classname === 'drift.prediction' ? `prediction:${name}` : name))
    assert.deepEqual(failing.sort(), [...json.drifted].sort())
    assert.equal(cases.filter(([, classname]) => classname === 'drift.feature').length, 7)
    const xml = await readFile(junit, 'utf8')
    assert.match(xml, /<failure message="income: psi [0-9.]+ ≥ 0\.1"/)

    const page = await readFile(html, 'utf8')
    assert.equal((page.match(/<svg /g) ?? []).length >= json.drifted.length, true)
    for (const name of json.drifted)
      assert.ok(page.includes(`<h3>${name} · <span class="bad">drift</span></h3>`), `a section for ${name}`)
    assert.doesNotMatch(page, /<script|<link|src="http|href="http/)
  })
})
