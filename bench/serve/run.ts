// Serving bench: HTTP path (load from a separate process) against an in-process session.run loop, in one run, with PASS/FAIL per target.
import {writeFileSync} from 'node:fs'
import {createServer} from 'node:http'
import type {AddressInfo} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {execa} from 'execa'

import {type LoadedModel, loadModel, runModel} from '../../src/model/signature.js'
import {type TensorJson, tensorFromJson, tensorToJson} from '../../src/model/tensor.js'
import {serveSettings} from '../../src/serve/config.js'
import {createModelServer} from '../../src/serve/server.js'
import {DATATYPE, modelInfo} from '../../test/serve/helpers.js'
import {MODELS_DIR} from '../../test/support/cli.js'

const SECONDS = Number(process.env.BENCH_SECONDS ?? 3)
const LOAD = join(import.meta.dirname, 'load.ts')

interface Measure {
  rps: number
  p50: number
  p99: number
}

function sampleFeeds(id: string): Record<string, TensorJson> {
  return modelInfo(id).samples[0].inputs
}

/** `concurrency` loops calling session.run back to back for SECONDS: the ceiling the HTTP path is compared with. */
async function inProcess(model: LoadedModel, inputs: Record<string, TensorJson>, concurrency: number): Promise<Measure> {
  const feeds = Object.fromEntries(Object.entries(inputs).map(([name, json]) => [name, tensorFromJson(json)]))
  const latencies: number[] = []
  const end = performance.now() + SECONDS * 1000
  await Promise.all(Array.from({length: concurrency}, async () => {
    while (performance.now() < end) {
      const started = performance.now()
      await runModel(model, feeds)
      latencies.push(performance.now() - started)
    }
  }))
  latencies.sort((a, b) => a - b)
  return {rps: latencies.length / SECONDS, p50: latencies[Math.floor(latencies.length / 2)], p99: latencies[Math.floor(latencies.length * 0.99)]}
}

async function overHttp(id: string, model: LoadedModel, inputs: Record<string, TensorJson>, concurrency: number, batching: boolean): Promise<Measure & {failed: number}> {
  const server = createModelServer({model, identity: {name: id, version: '1.0.0'}, settings: serveSettings({batching: {enabled: batching, max_batch_size: 64}}), faults: {latencyMs: 0, errorRate: 0, wrong: false}})
  const url = await server.listen(0, '127.0.0.1')
  const body = JSON.stringify({inputs: Object.entries(inputs).map(([name, json]) => {
    const t = json.data_b64 === undefined ? json : tensorToJson(tensorFromJson(json))
    return {name, shape: t.shape, datatype: DATATYPE[t.dtype], data: t.data}
  })})
  const file = join(tmpdir(), `mlops-bench-${id}.json`)
  writeFileSync(file, body)
  try {
    const {stdout} = await execa('node', ['--import', 'tsx', LOAD, `${url}/v2/models/${id}/infer`, file, String(concurrency), String(SECONDS)])
    return JSON.parse(stdout)
  } finally {
    await server.close()
  }
}

/** A bare node:http server that reads the body and answers a fixed JSON: the ceiling of any node:http server on this machine. */
async function bareHttp(concurrency: number): Promise<Measure> {
  const server = createServer((req, res) => {
    req.resume()
    req.on('end', () => res.writeHead(200, {'content-type': 'application/json'}).end('{"ok":true}'))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const file = join(tmpdir(), 'mlops-bench-bare.json')
  writeFileSync(file, '{"inputs":[]}')
  try {
    const {stdout} = await execa('node', ['--import', 'tsx', LOAD, `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, file, String(concurrency), String(SECONDS)])
    return JSON.parse(stdout)
  } finally {
    server.closeAllConnections()
    server.close()
  }
}

const fmt = (m: Measure) => `${Math.round(m.rps).toString().padStart(6)} req/s  p50 ${m.p50.toFixed(3)} ms  p99 ${m.p99.toFixed(3)} ms`
const results: {target: string; value: string; pass: boolean}[] = []

const bare = await bareHttp(16)
console.log(`bare node:http (no model, fixed answer) c=16  ${fmt(bare)}`)

for (const id of ['xgboost_regressor', 'titanic_logreg_pipeline_zipmap']) {
  const model = await loadModel(join(MODELS_DIR, `${id}.onnx`))
  const inputs = sampleFeeds(id)
  const in1 = await inProcess(model, inputs, 1)
  const in16 = await inProcess(model, inputs, 16)
  const http1 = await overHttp(id, model, inputs, 1, false)
  const http16 = await overHttp(id, model, inputs, 16, false)
  const http16b = await overHttp(id, model, inputs, 16, true)
  console.log(`\n${id}`)
  console.log(`  in-process  c=1   ${fmt(in1)}`)
  console.log(`  in-process  c=16  ${fmt(in16)}`)
  console.log(`  HTTP        c=1   ${fmt(http1)}  (batching off)`)
  console.log(`  HTTP        c=16  ${fmt(http16)}  (batching off, ${http16.failed} failed)`)
  console.log(`  HTTP        c=16  ${fmt(http16b)}  (batching on, ${http16b.failed} failed)`)
  const best16 = Math.max(http16.rps, http16b.rps)
  results.push({target: `${id}: HTTP c=16 ≥ 70% of in-process c=16 throughput`, value: `${((best16 / in16.rps) * 100).toFixed(0)}% (batching off ${((http16.rps / in16.rps) * 100).toFixed(0)}%, on ${((http16b.rps / in16.rps) * 100).toFixed(0)}%; bare node:http is ${((bare.rps / in16.rps) * 100).toFixed(0)}%)`, pass: best16 >= 0.7 * in16.rps})
  results.push({target: `${id}: HTTP c=1 adds ≤ 0.3 ms at p50`, value: `+${(http1.p50 - in1.p50).toFixed(3)} ms`, pass: http1.p50 - in1.p50 <= 0.3})
  await model.session.release()
}

{
  const id = 'ppocr_mobile_v2_text_direction_cls'
  const model = await loadModel(join(MODELS_DIR, `${id}.onnx`))
  const inputs = sampleFeeds(id)
  const off = await overHttp(id, model, inputs, 32, false)
  const on = await overHttp(id, model, inputs, 32, true)
  console.log(`\n${id}`)
  console.log(`  HTTP        c=32  ${fmt(off)}  (batching off)`)
  console.log(`  HTTP        c=32  ${fmt(on)}  (batching on)`)
  results.push({target: `${id}: batching on ≥ 1.5x batching off at c=32`, value: `${(on.rps / off.rps).toFixed(2)}x`, pass: on.rps >= 1.5 * off.rps})
  await model.session.release()
}

console.log('')
for (const r of results) console.log(`${r.pass ? 'PASS' : 'FAIL'}  ${r.target}: ${r.value}`)
