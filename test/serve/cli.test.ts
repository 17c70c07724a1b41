// `mlops serve` and `mlops predict` as real child processes: the ready line, SIGTERM draining, and a 100k-row batch run.
import assert from 'node:assert/strict'
import {createReadStream, lstatSync, readFileSync, readdirSync, symlinkSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {createInterface} from 'node:readline'

import {execa} from 'execa'
import {request} from 'undici'

import {packageRoot} from '../../src/paths.js'
import {MODELS_DIR, tempDir} from '../support/cli.js'
import {assertMatchesSchema} from '../support/schema.js'

// The commands from the sources through tsx, so these tests do not depend on a build of the whole tool.
const CLI = ['--import', 'tsx', join(packageRoot, 'test', 'support', 'run-source.ts')]
const TITANIC = join(MODELS_DIR, 'titanic_logreg_pipeline_zipmap.onnx')

describe('mlops serve and predict (child processes)', function () {
  it('prints one JSON ready line, then on SIGTERM finishes in-flight requests and exits 0', async () => {
    const child = execa(
      'node',
      [...CLI, 'serve', '--model', join(MODELS_DIR, 'xgboost_regressor.onnx'), '--port', '0', '--json'],
      {env: {CI: 'true', MLOPS_FAULT_LATENCY_MS: '1000'}, reject: false},
    )
    const ready = await new Promise<Record<string, unknown>>((resolve, reject) => {
      child.stdout.once('data', (chunk: Buffer) => resolve(JSON.parse(chunk.toString().split('\n')[0])))
      child.once('exit', () => reject(new Error('serve exited before it was ready')))
    })
    assertMatchesSchema(ready, 'serve')
    const url = ready.url as string
    const inFlight = [1, 2, 3].map((i) =>
      fetch(`${url}/v1/predict`, {
        method: 'POST',
        headers: {'content-type': 'application/json'},
        body: JSON.stringify({instances: [{X: [i, 1, 2, 3]}]}),
      }),
    )
    await new Promise((resolve) => setTimeout(resolve, 300))
    child.kill('SIGTERM')
    const answers = await Promise.all(inFlight)
    assert.deepEqual(
      answers.map((a) => a.status),
      [200, 200, 200],
    )
    const result = await child
    assert.equal(result.exitCode, 0, String(result.stderr))
    await assert.rejects(fetch(`${url}/v2/health/live`), 'still accepting after SIGTERM')
  })

  it('with --workers 2 serves from two processes on one port: /metrics counts both, a killed worker is replaced, SIGTERM stops all', async () => {
    const child = execa(
      'node',
      [
        ...CLI,
        'serve',
        '--model',
        join(MODELS_DIR, 'xgboost_regressor.onnx'),
        '--port',
        '0',
        '--json',
        '--workers',
        '2',
      ],
      {env: {CI: 'true'}, reject: false},
    )
    const ready = await new Promise<{url: string; pid: number; workers: number}>((resolve, reject) => {
      child.stdout.once('data', (chunk: Buffer) => resolve(JSON.parse(chunk.toString().split('\n')[0])))
      child.once('exit', () => reject(new Error('serve exited before it was ready')))
    })
    assertMatchesSchema(ready, 'serve')
    assert.equal(ready.workers, 2)
    const workers = () =>
      readFileSync(`/proc/${ready.pid}/task/${ready.pid}/children`, 'utf8')
        .trim()
        .split(/\s+/)
        .filter(Boolean)
        .map(Number)
    assert.equal(workers().length, 2)
    // A new connection each: the one port hands each to a worker in turn.
    const predict = async () => {
      const res = await request(`${ready.url}/v1/predict`, {
        method: 'POST',
        headers: {'content-type': 'application/json'},
        body: JSON.stringify({instances: [{X: [1, 2, 3, 4]}]}),
        reset: true,
        headersTimeout: 10_000,
      })
      await res.body.dump()
      return res.statusCode
    }
    for (let i = 0; i < 10; i++) assert.equal(await predict(), 200)
    const metrics = await (await request(`${ready.url}/metrics`, {reset: true})).body.text()
    assert.match(metrics, /^mlops_requests_total\{route="\/v1\/predict",status="200",version="0\.0\.0"\} 10$/m)
    const [victim] = workers()
    process.kill(victim, 'SIGKILL')
    // Once the primary has seen it go (a connection handed over in that instant is lost: node:cluster's round robin).
    const gone = async (done: () => boolean) => {
      for (let i = 0; i < 200 && !done(); i++) await new Promise((resolve) => setTimeout(resolve, 50))
    }
    await gone(() => !workers().includes(victim))
    for (let i = 0; i < 5; i++) assert.equal(await predict(), 200, 'the other worker serves meanwhile')
    await gone(() => workers().length === 2)
    assert.equal(workers().length, 2, 'the killed worker was replaced')
    const all = workers()
    child.kill('SIGTERM')
    const result = await child
    assert.equal(result.exitCode, 0, String(result.stderr))
    for (const pid of all) assert.throws(() => process.kill(pid, 0), 'no worker outlives its primary')
  })

  it("an address that is not this machine's, or a model path that is a folder, is a usage error naming it, not a stack trace", async () => {
    const folder = await execa('node', [...CLI, 'serve', '--model', MODELS_DIR, '--port', '0', '--json'], {
      env: {CI: 'true'},
      reject: false,
    })
    assert.equal(folder.exitCode, 2, String(folder.stderr))
    assert.equal((JSON.parse(String(folder.stdout)) as {error: {code: string}}).error.code, 'MODEL_NOT_A_FILE')
    // With workers too: the primary hung, waiting for workers that had failed but did not exit.
    for (const workers of ['1', '2']) {
      const args = ['--host', '192.0.2.1', '--port', '0', '--workers', workers]
      const model = ['--model', join(MODELS_DIR, 'xgboost_regressor.onnx')]
      const options = {env: {CI: 'true'}, reject: false, timeout: 60_000}
      const result = await execa('node', [...CLI, 'serve', ...model, ...args, '--json'], options)
      assert.equal(result.exitCode, 2, `--workers ${workers}: ${String(result.stderr)}`)
      const {error} = JSON.parse(String(result.stdout)) as {error: {code: string; message: string; hint: string}}
      assert.equal(error.code, 'HOST_NOT_LOCAL')
      assert.match(error.message, /192\.0\.2\.1 is not an address of this machine/)
      assert.match(error.hint, /Pass --host .* 127\.0\.0\.1/)
      if (workers === '1') continue
      const human = await execa('node', [...CLI, 'serve', ...model, ...args], options)
      assert.equal(human.exitCode, 2)
      assert.equal(String(human.stderr).match(/^Error: /gm)?.length, 1, `said once: ${String(human.stderr)}`)
    }
  }).timeout(180_000)

  it('predicts 100k CSV rows in input order, reports the bad rows by line and exits 1', async () => {
    const dir = await tempDir()
    try {
      const input = join(dir.path, 'passengers.csv')
      const bad = new Map([
        [1234, 'abc'],
        [50_000, 'NaN?'],
        [99_999, 'x'],
      ])
      const lines = ['pclass,sex,age,fare,embarked']
      for (let i = 1; i <= 100_000; i++) {
        const line = i + 1 // the header is line 1
        const fare = bad.get(line) ?? String(5 + (i % 200))
        lines.push(`${1 + (i % 3)},${i % 2 ? 'male' : 'female'},${i % 17 === 0 ? '' : 20 + (i % 50)},${fare},S`)
      }
      writeFileSync(input, lines.join('\n') + '\n')
      const output = join(dir.path, 'out', 'predictions.jsonl')
      const result = await execa(
        'node',
        [...CLI, 'predict', '--model', TITANIC, '--input', input, '--output', output, '--json'],
        {env: {CI: 'true'}, reject: false},
      )
      assert.equal(result.exitCode, 1, String(result.stderr).slice(0, 2000))
      const json = JSON.parse(String(result.stdout))
      assertMatchesSchema(json, 'predict')
      assert.equal(json.rows, 100_000)
      assert.equal(json.failed, 3)
      assert.equal(json.ok, 99_997)
      assert.deepEqual(
        json.errors.map((e: {line: number}) => e.line),
        [1234, 50_000, 99_999],
      )
      assert.match(json.errors[0].message, /fare.*"abc" is not a number/)
      let count = 0
      let previous = 1
      for await (const text of createInterface({input: createReadStream(output)})) {
        const row = JSON.parse(text)
        assert.ok(row.line > previous, 'output out of order')
        previous = row.line
        assert.ok(
          bad.has(row.line) ? typeof row.error === 'string' : [0, 1].includes(row.prediction.output_label),
          text,
        )
        count++
      }
      assert.equal(count, 100_000)
    } finally {
      await dir.remove()
    }
  })

  it('stops at the first bad row with --fail-fast, reading JSONL from stdin', async () => {
    const rows = [
      {pclass: '1', sex: 'female', age: 29, fare: 211.3, embarked: 'S'},
      {pclass: '3', sex: 'male', age: 40, fare: 'cheap', embarked: 'S'},
      {pclass: '3', sex: 'male', age: 40, fare: 7, embarked: 'S'},
    ]
    const result = await execa(
      'node',
      [...CLI, 'predict', '--model', TITANIC, '--input', '-', '--output', '-', '--fail-fast', '--batch-size', '1'],
      {env: {CI: 'true'}, input: rows.map((r) => JSON.stringify(r)).join('\n'), reject: false},
    )
    assert.equal(result.exitCode, 1)
    const out = String(result.stdout)
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
    assert.deepEqual(out[0], {line: 1, prediction: {output_label: 1}})
    assert.equal(out[1].line, 2)
    assert.match(out[1].error, /"cheap" is not a number/)
    assert.equal(out.length, 2, 'went on past the bad row')
    // In one batch, and with rows the reader refuses: still nothing past the first bad row, written or counted.
    const lines = [rows[0], rows[1], rows[1], rows[2]].map((r) => JSON.stringify(r))
    lines.splice(2, 0, '{not json')
    const batch = await execa(
      'node',
      [...CLI, 'predict', '--model', TITANIC, '--input', '-', '--output', '-', '--fail-fast'],
      {env: {CI: 'true'}, input: lines.join('\n'), reject: false},
    )
    assert.deepEqual(
      String(batch.stdout)
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).line),
      [1, 2],
    )
    assert.equal(
      String(batch.stderr),
      '  line 2: fare: "cheap" is not a number (float32)',
      'the first bad row alone is reported',
    )
    const reader = await execa(
      'node',
      [...CLI, 'predict', '--model', TITANIC, '--input', '-', '--output', '-', '--fail-fast'],
      {env: {CI: 'true'}, input: ['{not json', '{also not', lines[0]].join('\n'), reject: false},
    )
    assert.deepEqual(
      String(reader.stdout)
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).line),
      [1],
    )
  })

  it('says so in one line, without a stack trace, when the reader of stdout goes away (| head)', async () => {
    const rows = Array.from({length: 20_000}, (_, i) =>
      JSON.stringify({pclass: '1', sex: 'female', age: 20 + (i % 40), fare: 7 + i, embarked: 'S'}),
    ).join('\n')
    const result = await execa(
      'bash',
      ['-o', 'pipefail', '-c', `node ${CLI.join(' ')} predict --model ${TITANIC} --input - --output - | head -n 1`],
      {env: {CI: 'true'}, input: rows, reject: false},
    )
    assert.equal(result.exitCode, 1)
    assert.equal(String(result.stdout).split('\n').length, 1)
    assert.match(String(result.stderr), /stdout was closed by its reader/)
    assert.doesNotMatch(String(result.stderr), /\n\s+at /)
  })

  it('never loses a file: refuses the input as --output, and a run that fails or is killed leaves the previous output whole', async () => {
    const dir = await tempDir()
    try {
      const input = join(dir.path, 'passengers.csv')
      const lines = [
        'pclass,sex,age,fare,embarked',
        ...Array.from({length: 300_000}, (_, i) => `1,female,${20 + (i % 40)},${7 + (i % 100)},S`),
      ]
      writeFileSync(input, lines.join('\n') + '\n')
      const same = await execa(
        'node',
        [...CLI, 'predict', '--model', TITANIC, '--input', input, '--output', input, '--json'],
        {env: {CI: 'true'}, reject: false},
      )
      assert.equal(same.exitCode, 2)
      assert.equal(JSON.parse(String(same.stdout)).error.code, 'OUTPUT_IS_INPUT')
      assert.equal(readFileSync(input, 'utf8').split('\n').length, 300_002, 'the input is untouched')

      const output = join(dir.path, 'predictions.jsonl')
      writeFileSync(output, '{"line": 1, "prediction": "from last week"}\n')
      const missing = await execa(
        'node',
        [...CLI, 'predict', '--model', TITANIC, '--input', join(dir.path, 'nope.csv'), '--output', output, '--json'],
        {env: {CI: 'true'}, reject: false},
      )
      assert.equal(missing.exitCode, 2)
      const folder = await execa(
        'node',
        [...CLI, 'predict', '--model', TITANIC, '--input', dir.path, '--output', output, '--json'],
        {env: {CI: 'true'}, reject: false},
      )
      assert.deepEqual([folder.exitCode, JSON.parse(String(folder.stdout)).error.code], [2, 'INPUT_IS_DIRECTORY'])
      const killed = execa('node', [...CLI, 'predict', '--model', TITANIC, '--input', input, '--output', output], {
        env: {CI: 'true'},
        reject: false,
      })
      // Killed once the predictions are being written.
      while (!readdirSync(dir.path).some((name) => name.endsWith('.partial')))
        await new Promise((resolve) => setTimeout(resolve, 20))
      killed.kill('SIGKILL')
      await killed
      assert.equal(readFileSync(output, 'utf8'), '{"line": 1, "prediction": "from last week"}\n')

      const done = await execa('node', [...CLI, 'predict', '--model', TITANIC, '--input', input, '--output', output], {
        env: {CI: 'true'},
        reject: false,
      })
      assert.equal(done.exitCode, 0, String(done.stderr))
      assert.equal(readFileSync(output, 'utf8').trim().split('\n').length, 300_000)

      // What is not a plain file is written in place, never replaced: a pipe (think /dev/null) stays a pipe, and a
      // symbolic link keeps pointing at the file that now holds the predictions.
      const one = '{"pclass":"1","sex":"female","age":29,"fare":211.3,"embarked":"S"}\n'
      const fifo = join(dir.path, 'pipe')
      await execa('mkfifo', [fifo])
      const reader = execa('cat', [fifo])
      await execa('node', [...CLI, 'predict', '--model', TITANIC, '--input', '-', '--output', fifo], {
        env: {CI: 'true'},
        input: one,
      })
      assert.match(String((await reader).stdout), /"output_label":1/)
      assert.ok(lstatSync(fifo).isFIFO())
      const link = join(dir.path, 'latest.jsonl')
      symlinkSync(output, link)
      await execa('node', [...CLI, 'predict', '--model', TITANIC, '--input', '-', '--output', link], {
        env: {CI: 'true'},
        input: one,
      })
      assert.ok(lstatSync(link).isSymbolicLink())
      assert.equal(readFileSync(output, 'utf8'), '{"line":1,"prediction":{"output_label":1}}\n')
    } finally {
      await dir.remove()
    }
  })
})
