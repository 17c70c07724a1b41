// The bundled example served from its stored artifact by the real CLI: golden answers over HTTP, batch prediction of a CSV.
import assert from 'node:assert/strict'
import {type ChildProcess, spawn} from 'node:child_process'
import {cpSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {once} from 'node:events'
import {join} from 'node:path'
import {createInterface} from 'node:readline'

import {request} from 'undici'

import {compareJson} from '../../src/checks/compare.js'
import {BIN, exampleProject, mlops} from '../support/cli.js'

async function startServe(args: string[]): Promise<{child: ChildProcess; url: string}> {
  const child = spawn('node', [BIN, 'serve', ...args, '--port', '0', '--json'], {
    env: {...process.env, CI: 'true'},
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const lines = createInterface({input: child.stdout})
  const [first] = (await Promise.race([once(lines, 'line'), once(child, 'exit').then(() => [''])])) as [string]
  assert.ok(first, 'serve printed a ready line before exiting')
  return {child, url: (JSON.parse(first) as {url: string}).url}
}

describe('serve and predict the bundled example from its artifact (e2e)', function () {
  this.timeout(120_000)
  let example: Awaited<ReturnType<typeof exampleProject>>
  let project: string
  before(async () => {
    example = await exampleProject()
    project = example.project
    const packaged = await mlops(['package', '--dir', project])
    assert.equal(packaged.exitCode, 0, packaged.stderr)
  })
  after(async () => example.remove())

  it('answers every golden case over /v1/predict, naming the version', async () => {
    const {child, url} = await startServe(['1.0.0', '--dir', project])
    try {
      const cases = readFileSync(join(project, 'golden.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as {records: object[]; expected: {predictions: object[]}})
      const response = await fetch(`${url}/v1/predict`, {
        method: 'POST',
        headers: {'content-type': 'application/json'},
        body: JSON.stringify({instances: cases.flatMap((c) => c.records)}),
      })
      assert.equal(response.status, 200)
      assert.equal(response.headers.get('x-model-version'), '1.0.0')
      const body = (await response.json()) as {predictions: object[]; version: string}
      assert.deepEqual(
        compareJson(
          'predictions',
          cases.flatMap((c) => c.expected.predictions),
          body.predictions,
        ),
        [],
      )
      const bad = await fetch(`${url}/v1/predict`, {
        method: 'POST',
        headers: {'content-type': 'application/json'},
        body: JSON.stringify({instances: [{...cases[0].records[0], age: 'old'}]}),
      })
      assert.equal(bad.status, 400)
      assert.match(((await bad.json()) as {error: {message: string}}).error.message, /age.*must be a number, not "old"/)
    } finally {
      child.kill('SIGTERM')
      await once(child, 'exit')
    }
  })

  it("serves this project's version from a store other projects share (artifacts.store)", async () => {
    // Two projects, one store, both at 1.0.0: a bare version names this project's artifact.
    const projects = ['credit-risk', 'other-model'].map((name) => join(example.tmp, 'shared', name))
    for (const [i, dir] of projects.entries()) {
      cpSync(project, dir, {recursive: true, filter: (path) => !path.includes('.mlops')})
      const config = readFileSync(join(dir, 'mlops.yaml'), 'utf8').replace(
        /^name: credit-risk$/m,
        `name: ${['credit-risk', 'other-model'][i]}`,
      )
      writeFileSync(join(dir, 'mlops.yaml'), `${config}\nartifacts:\n  store: ../store\n`)
      const packaged = await mlops(['package', '--dir', dir])
      assert.equal(packaged.exitCode, 0, packaged.stderr)
    }
    for (const [i, dir] of projects.entries()) {
      const {child, url} = await startServe(['1.0.0', '--dir', dir])
      try {
        const name = ['credit-risk', 'other-model'][i]
        const metadata = await fetch(`${url}/v2/models/${name}`)
        assert.equal(metadata.status, 200, `${dir} serves ${name}`)
        assert.equal(((await metadata.json()) as {name: string}).name, name)
      } finally {
        child.kill('SIGTERM')
        await once(child, 'exit')
      }
    }
  })

  for (const workers of ['1', '2'])
    it(`exports drift gauges for the traffic it served, and keeps its live profiles across a restart (--workers ${workers})`, async () => {
      const shifted = readFileSync(join(project, 'data', 'current-shifted.csv'), 'utf8')
        .trim()
        .split('\n')
      const header = shifted[0].split(',')
      const typed = (v: string) =>
        v === '' ? null : v === 'true' || v === 'false' ? v === 'true' : Number.isNaN(Number(v)) ? v : Number(v)
      const records = shifted
        .slice(1, 1001)
        .map((line) => Object.fromEntries(line.split(',').map((v, i) => [header[i], typed(v)])))
      const saved = join(project, '.mlops', 'logs', 'requests.jsonl.profiles.json')
      rmSync(saved, {force: true})
      const rows = () =>
        (JSON.parse(readFileSync(saved, 'utf8')) as {windows: {rows: number}[]}).windows.reduce((n, w) => n + w.rows, 0)
      const args = ['1.0.0', '--dir', project, '--workers', workers]
      const first = await startServe(args)
      try {
        // Two halves on two connections: with two workers, each gets one (node:cluster hands connections round robin).
        for (const half of [records.slice(0, 500), records.slice(500)]) {
          const response = await request(`${first.url}/v1/predict`, {
            method: 'POST',
            headers: {'content-type': 'application/json'},
            body: JSON.stringify({instances: half}),
            reset: true,
          })
          assert.equal(response.statusCode, 200, await response.body.text())
          await response.body.dump()
        }
        const metrics = await (await fetch(`${first.url}/metrics`)).text()
        assert.match(metrics, /mlops_drift_detected\{version="1\.0\.0",column="income",target="feature"\} 1/)
        assert.match(metrics, /mlops_drift_detected\{version="1\.0\.0",column="age",target="feature"\} 0/)
      } finally {
        first.child.kill('SIGTERM')
        await once(first.child, 'exit')
      }
      assert.equal(rows(), 1000, 'every record served, by whichever worker, is in the saved profiles')
      const second = await startServe(args)
      try {
        const metrics = await (await fetch(`${second.url}/metrics`)).text()
        assert.match(
          metrics,
          /mlops_drift_detected\{version="1\.0\.0",column="income",target="feature"\} 1/,
          'the saved profiles came back',
        )
      } finally {
        second.child.kill('SIGTERM')
        await once(second.child, 'exit')
      }
      assert.equal(rows(), 1000, 'restored once, not once per worker')
      // Derived data: a damaged file costs the drift history, not the server.
      writeFileSync(saved, '{"windowMs": 6')
      const third = await startServe(args)
      let stderr = ''
      third.child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
      try {
        const metrics = await (await fetch(`${third.url}/metrics`)).text()
        assert.doesNotMatch(metrics, /mlops_drift_detected\{version="1\.0\.0",column="income"/)
        assert.equal((await fetch(`${third.url}/v2/health/ready`)).status, 200)
      } finally {
        third.child.kill('SIGTERM')
        await once(third.child, 'exit')
      }
      assert.match(stderr, /live drift windows not restored: .*requests\.jsonl\.profiles\.json is not valid JSON/)
      assert.doesNotThrow(() => rows(), 'rewritten at shutdown')
    })

  it('refuses to start, naming the setting, when the request log cannot be written (a path under /proc hung it)', async () => {
    const configPath = join(project, 'mlops.yaml')
    const config = readFileSync(configPath, 'utf8')
    writeFileSync(configPath, config.replace('path: .mlops/logs/requests.jsonl', 'path: /proc/nope/requests.jsonl'))
    try {
      const result = await mlops(['serve', '1.0.0', '--port', '0', '--json', '--dir', project], {timeoutMs: 30_000})
      assert.equal(result.exitCode, 2, result.stdout + result.stderr)
      const {error} = result.json as {error: {code: string; message: string; hint: string}}
      assert.equal(error.code, 'REQUEST_LOG_UNWRITABLE')
      assert.match(error.message, /serving\.request_log\.path \/proc\/nope\/requests\.jsonl cannot be written/)
    } finally {
      writeFileSync(configPath, config)
    }
  })

  it('refuses to serve an artifact whose model was tampered with', async () => {
    const list = await mlops(['artifacts', 'list', '--json', '--dir', project])
    const {path} = (list.json as {artifacts: {path: string}[]}).artifacts[0]
    const copy = join(example.tmp, 'tampered.tar')
    const bytes = readFileSync(path)
    bytes[bytes.length - 2048] ^= 0x01
    writeFileSync(copy, bytes)
    const result = await mlops(['serve', copy, '--port', '0', '--dir', project])
    assert.equal(result.exitCode, 1, result.stderr)
    assert.match(result.stderr, /fails verification/)
  })

  it('predicts a CSV batch with the same pipeline, reporting bad rows by line', async () => {
    const input = join(example.tmp, 'applicants.csv')
    const lines = readFileSync(join(project, 'data', 'applicants.csv'), 'utf8')
      .trim()
      .split('\n')
    lines.splice(5, 0, lines[5].replace(/^[^,]*/, 'not-a-number'))
    writeFileSync(input, lines.join('\n') + '\n')
    const output = join(example.tmp, 'scores.jsonl')
    const result = await mlops(['predict', '--input', input, '--output', output, '--json', '--dir', project])
    assert.equal(result.exitCode, 1, 'one bad row makes the run fail')
    const summary = result.json as {rows: number; ok: number; failed: number; errors: {line: number; message: string}[]}
    assert.equal(summary.rows, lines.length - 1)
    assert.equal(summary.failed, 1)
    assert.equal(summary.errors[0].line, 6)
    assert.match(summary.errors[0].message, /age/)
    const written = readFileSync(output, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as {prediction?: {label: string}})
    assert.equal(written.filter((w) => w.prediction).length, summary.ok)
    assert.ok(written.every((w) => !w.prediction || ['repaid', 'default'].includes(w.prediction.label)))
  })
})
