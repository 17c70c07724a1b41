// Adaptive batching, overload, timeouts, faults and fallbacks, metrics and the request log, on a live server.
import assert from 'node:assert/strict'
import {existsSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {runModel} from '../../src/model/signature.js'
import {tensorFromJson} from '../../src/model/tensor.js'
import {tempDir} from '../support/cli.js'
import {load, modelInfo, plain, post, start} from './helpers.js'

function metric(text: string, name: string): number {
  return text
    .split('\n')
    .filter((l) => l.startsWith(name))
    .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0)
}

describe('serve: batching, overload and faults', function () {
  it('merges concurrent requests into fewer runs and answers each exactly as an unbatched run', async () => {
    const model = await load('ppocr_mobile_v2_text_direction_cls')
    const sample = modelInfo('ppocr_mobile_v2_text_direction_cls').samples[0]
    const base = plain(sample.inputs.x)
    // Eight different images of one size, and one of another width that cannot join their batch.
    const images = Array.from({length: 8}, (_, k) => ({
      shape: base.shape,
      data: base.data!.map((v, i) => (i % 7 === k ? -Number(v) : v)),
    }))
    const narrow = {shape: [1, 3, 48, 96], data: base.data!.slice(0, 3 * 48 * 96)}
    const all = [...images, narrow]
    const expected: Awaited<ReturnType<typeof runModel>>[] = []
    for (const image of all)
      expected.push(
        await runModel(model, {x: tensorFromJson({dtype: 'float32', shape: image.shape, data: image.data})}),
      )
    const {server, url} = await start('ppocr', {batching: {enabled: true, maxBatchSize: 16, maxWaitMs: 50}}, {model})
    try {
      const answers = await Promise.all(
        all.map((image) => post(`${url}/v2/models/ppocr/infer`, {inputs: [{name: 'x', datatype: 'FP32', ...image}]})),
      )
      answers.forEach((answer, i) => {
        assert.equal(answer.status, 200, answer.text)
        const want = Array.from(expected[i]['softmax_0.tmp_0'].data as Float32Array)
        answer.json.outputs[0].data.forEach((v: number, j: number) =>
          assert.ok(Math.abs(v - want[j]) <= 1e-5, `request ${i}[${j}]: ${v} != ${want[j]}`),
        )
      })
      const text = await (await fetch(`${url}/metrics`)).text()
      const runs = metric(text, 'mlops_batch_size_count') - 1 // less the warm-up run
      assert.ok(runs < all.length && runs >= 2, `expected merged runs, got ${runs} runs for ${all.length} requests`)
    } finally {
      await server.close()
    }
  })

  it('answers 503 with Retry-After past the queue bound, and keeps serving', async () => {
    const sample = modelInfo('squeezenet1_1_fp16').samples[0]
    // Serialised once, and 40 at once: a queue forms only while every slot runs, and 12 requests each serialised on
    // their own arrived spaced out enough on a busy test process that none had to wait.
    const body = JSON.stringify({
      inputs: [{name: 'data_0', shape: [1, 3, 224, 224], datatype: 'FP16', data: plain(sample.inputs.data_0).data}],
    })
    const {server, url} = await start('squeezenet1_1_fp16', {maxQueue: 1})
    try {
      const answers = await Promise.all(
        Array.from({length: 40}, () => post(`${url}/v2/models/squeezenet1_1_fp16/infer`, body)),
      )
      const statuses = answers.map((a) => a.status)
      assert.ok(statuses.includes(503), `no 503 in ${statuses}`)
      assert.ok(statuses.includes(200), `no 200 in ${statuses}`)
      assert.ok(
        statuses.every((s) => s === 200 || s === 503),
        String(statuses),
      )
      assert.equal(answers.find((a) => a.status === 503)!.headers.get('retry-after'), '1')
      assert.equal((await fetch(`${url}/v2/health/ready`)).status, 200)
      assert.equal((await post(`${url}/v2/models/squeezenet1_1_fp16/infer`, body)).status, 200)
    } finally {
      await server.close()
    }
  })

  it('answers 504 past the timeout, or the fallback marked "fallback": true when one is configured', async () => {
    const faults = {latencyMs: 300, errorRate: 0, wrong: false}
    const plainServer = await start('xgboost_regressor', {timeoutMs: 50}, {faults})
    const withFallback = await start(
      'xgboost_regressor',
      {timeoutMs: 50, fallback: {prediction: {variable: 0}}},
      {faults},
    )
    try {
      const record = {instances: [{X: [5.1, 3.5, 1.4, 0.2]}]}
      const timedOut = await post(`${plainServer.url}/v1/predict`, record)
      assert.equal(timedOut.status, 504)
      assert.equal(timedOut.json.error.code, 'TIMEOUT')
      const fallback = await post(`${withFallback.url}/v1/predict`, record)
      assert.equal(fallback.status, 200)
      assert.deepEqual(fallback.json, {
        predictions: [{variable: 0}],
        model: 'xgboost_regressor',
        version: '1.0.0',
        fallback: true,
      })
      const text = await (await fetch(`${withFallback.url}/metrics`)).text()
      assert.equal(metric(text, 'mlops_fallbacks_total'), 1)
    } finally {
      await plainServer.server.close()
      await withFallback.server.close()
    }
  })

  it('becomes ready on its golden warm-up even when every client inference is set to fail by fault injection', async () => {
    const inputs = modelInfo('xgboost_regressor').samples[0].inputs
    const failing = await start(
      'xgboost_regressor',
      {},
      {faults: {latencyMs: 0, errorRate: 1, wrong: false}, warmup: {cases: [{name: 'sample', inputs, expected: {}}]}},
    )
    try {
      assert.equal(failing.server.warmupSource, 'golden')
      assert.equal(failing.server.ready, true)
      const failed = await post(`${failing.url}/v1/predict`, {instances: [{X: [5.1, 3.5, 1.4, 0.2]}]})
      assert.equal(failed.status, 500)
    } finally {
      await failing.server.close()
    }
  })

  it('turns a failed inference into a 500 with a safe message, and MLOPS_FAULT_WRONG changes the answers', async () => {
    const failing = await start('xgboost_regressor', {}, {faults: {latencyMs: 0, errorRate: 1, wrong: false}})
    const wrong = await start('xgboost_regressor', {}, {faults: {latencyMs: 0, errorRate: 0, wrong: true}})
    const right = await start('xgboost_regressor')
    try {
      const record = {instances: [{X: [5.1, 3.5, 1.4, 0.2]}]}
      const failed = await post(`${failing.url}/v1/predict`, record)
      assert.equal(failed.status, 500)
      assert.deepEqual(failed.json.error, {
        code: 'INFERENCE_FAILED',
        message: 'inference failed on the server; see the server log',
      })
      const a = await post(`${wrong.url}/v1/predict`, record)
      const b = await post(`${right.url}/v1/predict`, record)
      assert.notEqual(a.json.predictions[0].variable, b.json.predictions[0].variable)
    } finally {
      for (const r of [failing, wrong, right]) await r.server.close()
    }
  })

  it('logs each request as a JSON line with id, model, inputs, outputs and latency; rotates by size; hashes inputs on request', async () => {
    const dir = await tempDir()
    const path = join(dir.path, 'logs', 'requests.jsonl')
    const {server, url} = await start(
      'xgboost_regressor',
      {requestLog: {path, inputs: 'all', sampleRate: 1, maxBytes: 600, maxFiles: 2, buffer: 100}},
      {identity: {name: 'xgb', version: '2.0.0', digest: 'sha256:abc'}},
    )
    // A line torn by a crash of the previous server: the next entry still starts a line of its own.
    writeFileSync(join(dir.path, 'hashed.jsonl'), '{"id": "torn by a cra')
    const hashed = await start('xgboost_regressor', {
      requestLog: {
        path: join(dir.path, 'hashed.jsonl'),
        inputs: 'hashed',
        sampleRate: 1,
        maxBytes: 1e6,
        maxFiles: 1,
        buffer: 100,
      },
    })
    try {
      for (let i = 0; i < 6; i++)
        await post(`${url}/v1/predict`, {instances: [{X: [i, 1, 2, 3]}]}, {'x-request-id': `r${i}`})
      await post(`${hashed.url}/v1/predict`, {instances: [{X: [1, 1, 2, 3]}]})
    } finally {
      await server.close()
      await hashed.server.close()
    }
    try {
      assert.ok(existsSync(`${path}.1`), 'no rotated file')
      const lines = [path, `${path}.1`]
        .flatMap((p) => readFileSync(p, 'utf8').trim().split('\n'))
        .map((l) => JSON.parse(l))
      const last = lines.find((l) => l.id === 'r5')
      assert.ok(last, 'the last request is not in the log')
      assert.deepEqual(last.model, {name: 'xgb', version: '2.0.0', digest: 'sha256:abc'})
      assert.deepEqual(last.inputs, [{X: [5, 1, 2, 3]}])
      assert.equal(typeof last.outputs.predictions[0].variable, 'number')
      assert.ok(last.latency_ms >= 0 && last.status === 200)
      const [torn, logged] = readFileSync(join(dir.path, 'hashed.jsonl'), 'utf8').trim().split('\n')
      assert.equal(torn, '{"id": "torn by a cra')
      const entry = JSON.parse(logged)
      assert.match(entry.inputs_sha256, /^[0-9a-f]{64}$/)
      assert.equal(entry.inputs, undefined)
    } finally {
      await dir.remove()
    }
  })

  it('is not ready until the warm-up ran, and exposes Prometheus metrics', async () => {
    const {server, url} = await start('titanic_logreg_pipeline_zipmap')
    try {
      assert.equal(server.warmupSource, 'generated')
      assert.equal((await fetch(`${url}/v2/models/titanic_logreg_pipeline_zipmap/ready`)).status, 200)
      const answer = await post(`${url}/v1/predict`, {
        instances: [
          {pclass: '1', sex: 'female', age: 29, fare: 211.3375, embarked: 'S'},
          {pclass: '3', sex: 'male', age: null, fare: '7.25', embarked: 'S'},
        ],
      })
      assert.equal(answer.status, 200, answer.text)
      assert.deepEqual(answer.json.predictions, [{output_label: 1}, {output_label: 0}])
      const response = await fetch(`${url}/metrics`)
      assert.match(response.headers.get('content-type') ?? '', /text\/plain/)
      const text = await response.text()
      for (const name of [
        'mlops_requests_total counter',
        'mlops_request_duration_seconds histogram',
        'mlops_requests_in_flight gauge',
        'mlops_batch_size histogram',
        'mlops_queue_seconds histogram',
        'mlops_model_load_seconds gauge',
        'mlops_fallbacks_total counter',
      ])
        assert.ok(text.includes(`# TYPE ${name}`), `no ${name}`)
      assert.match(text, /mlops_requests_total\{route="\/v1\/predict",status="200",version="1.0.0"\} 1/)
    } finally {
      await server.close()
    }
  })
})
