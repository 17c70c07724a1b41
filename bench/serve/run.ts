// Serving bench: HTTP path (load from a separate process) against an in-process session.run loop, in one run, with PASS/FAIL per target.
import {writeFileSync} from 'node:fs'
import {cpus, tmpdir} from 'node:os'
import {join} from 'node:path'

import {execa} from 'execa'

import {type LoadedModel, loadModel, runModel} from '../../src/model/signature.js'
import {type OrtTensor, type TensorJson, tensorFromJson, tensorToJson} from '../../src/model/tensor.js'
import {HttpServer} from '../../src/http/server.js'
import {serveSettings} from '../../src/serve/config.js'
import {createModelServer} from '../../src/serve/server.js'
import {tensorBytes} from '../../src/serve/v2.js'
import {DATATYPE, modelInfo} from '../../test/serve/helpers.js'
import {BIN, MODELS_DIR} from '../../test/support/cli.js'

const SECONDS = Number(process.env.BENCH_SECONDS ?? 3)
const LOAD = join(import.meta.dirname, 'load.ts')

/** Starts counting the machine's busy CPU time; the function returned gives the cores busy on average since then. */
function machineCpu(): () => number {
  const total = () =>
    cpus().reduce(
      (sum, {times}) => ({
        busy: sum.busy + times.user + times.nice + times.sys + times.irq,
        all: sum.all + times.user + times.nice + times.sys + times.irq + times.idle,
      }),
      {busy: 0, all: 0},
    )
  const start = total()
  return () => {
    const end = total()
    return ((end.busy - start.busy) / (end.all - start.all)) * cpus().length
  }
}

interface Measure {
  rps: number
  p50: number
  p99: number
}

function sampleFeeds(id: string): Record<string, TensorJson> {
  return modelInfo(id).samples[0].inputs
}

/** `concurrency` loops calling session.run back to back for SECONDS: the ceiling the HTTP path is compared with. */
async function inProcess(
  model: LoadedModel,
  inputs: Record<string, TensorJson>,
  concurrency: number,
): Promise<Measure> {
  const feeds = Object.fromEntries(Object.entries(inputs).map(([name, json]) => [name, tensorFromJson(json)]))
  const latencies: number[] = []
  const end = performance.now() + SECONDS * 1000
  await Promise.all(
    Array.from({length: concurrency}, async () => {
      while (performance.now() < end) {
        const started = performance.now()
        await runModel(model, feeds)
        latencies.push(performance.now() - started)
      }
    }),
  )
  latencies.sort((a, b) => a - b)
  return {
    rps: latencies.length / SECONDS,
    p50: latencies[Math.floor(latencies.length / 2)],
    p99: latencies[Math.floor(latencies.length * 0.99)],
  }
}

type Wire = 'json' | 'binary'

/** The request body: every input as JSON data, or (as tritonclient sends it) as binary tensor data after a JSON header. */
function requestBody(inputs: Record<string, TensorJson>, wire: Wire): {body: Buffer; headers: Record<string, string>} {
  if (wire === 'json') {
    return {
      body: Buffer.from(
        JSON.stringify({
          inputs: Object.entries(inputs).map(([name, json]) => {
            const t = json.data_b64 === undefined ? json : tensorToJson(tensorFromJson(json))
            return {name, shape: t.shape, datatype: DATATYPE[t.dtype], data: t.data}
          }),
        }),
      ),
      headers: {},
    }
  }
  const tensors: [string, OrtTensor][] = Object.entries(inputs).map(([name, json]) => [name, tensorFromJson(json)])
  const bytes = tensors.map(([, tensor]) => tensorBytes(tensor))
  const head = Buffer.from(
    JSON.stringify({
      inputs: tensors.map(([name, tensor], i) => ({
        name,
        shape: tensor.dims,
        datatype: DATATYPE[tensor.type],
        parameters: {binary_data_size: bytes[i].length},
      })),
      parameters: {binary_data_output: true},
    }),
  )
  return {
    body: Buffer.concat([head, ...bytes]),
    headers: {'content-type': 'application/octet-stream', 'inference-header-content-length': String(head.length)},
  }
}

/** The server runs in this process: its CPU time over the run, in cores, shows whether its one JS thread was the limit. */
async function overHttp(
  id: string,
  model: LoadedModel,
  inputs: Record<string, TensorJson>,
  concurrency: number,
  batching: boolean,
  wire: Wire = 'json',
): Promise<Measure & {failed: number; meanBatch: number; cores: number; machineCores: number}> {
  const server = createModelServer({
    model,
    identity: {name: id, version: '1.0.0'},
    settings: serveSettings({batching: {enabled: batching}}),
    faults: {latencyMs: 0, errorRate: 0, wrong: false},
  })
  const url = await server.listen(0, '127.0.0.1')
  const {body, headers} = requestBody(inputs, wire)
  const file = join(tmpdir(), `mlops-bench-${id}-${wire}.body`)
  writeFileSync(file, body)
  try {
    const cpu = process.cpuUsage()
    const machine = machineCpu()
    const started = performance.now()
    const {stdout} = await execa('node', [
      '--import',
      'tsx',
      LOAD,
      `${url}/v2/models/${id}/infer`,
      file,
      String(concurrency),
      String(SECONDS),
      JSON.stringify(headers),
    ])
    const used = process.cpuUsage(cpu)
    const cores = (used.user + used.system) / 1000 / (performance.now() - started)
    const machineCores = machine()
    const {values} = await server.metrics.batchSize.get()
    const total = (name: string) => values.find((v) => v.metricName === name)?.value ?? 0
    return {
      ...JSON.parse(stdout),
      meanBatch: total('mlops_batch_size_sum') / total('mlops_batch_size_count'),
      cores,
      machineCores,
    }
  } finally {
    await server.close()
  }
}

/** `mlops serve` as users run it (the build), at its default serving.workers: one process per core, batching on. */
async function overServe(
  id: string,
  inputs: Record<string, TensorJson>,
  concurrency: number,
): Promise<Measure & {failed: number; machineCores: number; workers: number}> {
  const args = ['serve', '--model', join(MODELS_DIR, `${id}.onnx`), '--model-version', '1.0.0', '--port', '0', '--json']
  const server = execa('node', [BIN, ...args], {reject: false, env: {CI: 'true'}})
  try {
    const ready = await new Promise<{url: string; workers: number}>((resolve, reject) => {
      server.stdout.once('data', (chunk: Buffer) => resolve(JSON.parse(chunk.toString().split('\n')[0])))
      void server.then((result) => reject(new Error(`mlops serve exited: ${result.stderr}`)))
    })
    const {body, headers} = requestBody(inputs, 'json')
    const file = join(tmpdir(), `mlops-bench-${id}-serve.body`)
    writeFileSync(file, body)
    const machine = machineCpu()
    const {stdout} = await execa('node', [
      '--import',
      'tsx',
      LOAD,
      `${ready.url}/v2/models/${id}/infer`,
      file,
      String(concurrency),
      String(SECONDS),
      JSON.stringify(headers),
    ])
    return {...JSON.parse(stdout), machineCores: machine(), workers: ready.workers}
  } finally {
    server.kill('SIGTERM')
    await server
  }
}

/**
 * The model server's own HTTP server (src/http/server.ts) reading each body and answering a fixed JSON, no model: the
 * ceiling of the HTTP path on this machine.
 */
async function bareHttp(concurrency: number): Promise<Measure> {
  const answer = {status: 200, headers: ['content-type', 'application/json'], body: '{"ok":true}'}
  const server = new HttpServer({maxBodyBytes: 1024 * 1024}, (_req, respond) => respond(answer))
  const {port} = await server.listen(0, '127.0.0.1')
  const file = join(tmpdir(), 'mlops-bench-bare.json')
  writeFileSync(file, '{"inputs":[]}')
  try {
    const {stdout} = await execa('node', [
      '--import',
      'tsx',
      LOAD,
      `http://127.0.0.1:${port}/`,
      file,
      String(concurrency),
      String(SECONDS),
    ])
    return JSON.parse(stdout)
  } finally {
    server.destroyAll()
    await server.close()
  }
}

const fmt = (m: Measure) =>
  `${Math.round(m.rps).toString().padStart(6)} req/s  p50 ${m.p50.toFixed(3)} ms  p99 ${m.p99.toFixed(3)} ms`
/** A target with PASS/FAIL; `pass` left out for a figure reported alongside one. */
const results: {target: string; value: string; pass?: boolean}[] = []

const bare = await bareHttp(16)
console.log(`bare HTTP server (no model, fixed answer) c=16  ${fmt(bare)}`)

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
  const serve16 = await overServe(id, inputs, 16)
  const busy = (m: {machineCores: number}) => `machine ${m.machineCores.toFixed(2)} of ${cpus().length} cores busy`
  console.log(
    `  HTTP        c=16  ${fmt(http16)}  (batching off, ${http16.failed} failed, server ${http16.cores.toFixed(2)} cores, ${busy(http16)})`,
  )
  console.log(
    `  HTTP        c=16  ${fmt(http16b)}  (batching on, ${http16b.failed} failed, server ${http16b.cores.toFixed(2)} cores, ${busy(http16b)})`,
  )
  console.log(
    `  mlops serve c=16  ${fmt(serve16)}  (default serving.workers: ${serve16.workers}, batching on, ${serve16.failed} failed, ${busy(serve16)})`,
  )
  const best16 = Math.max(http16.rps, http16b.rps)
  const pct = (m: Measure) => `${((m.rps / in16.rps) * 100).toFixed(0)}%`
  results.push({
    target: `${id}: HTTP c=16 ≥ 70% of in-process c=16 throughput`,
    value: `${((best16 / in16.rps) * 100).toFixed(0)}% (batching off ${pct(http16)}, on ${pct(http16b)}; bare HTTP server is ${pct(bare)})`,
    pass: best16 >= 0.7 * in16.rps,
  })
  // The target for the default workers: half of in-process for the bare model, 70% for the pipeline model.
  const share = id === 'xgboost_regressor' ? 0.5 : 0.7
  results.push({
    target: `${id}: mlops serve (default workers) c=16 ≥ ${share * 100}% of in-process c=16 throughput`,
    value: `${pct(serve16)} with ${serve16.workers} workers`,
    pass: serve16.rps >= share * in16.rps,
  })
  results.push({
    target: `${id}: HTTP c=1 adds ≤ 0.3 ms at p50`,
    value: `+${(http1.p50 - in1.p50).toFixed(3)} ms`,
    pass: http1.p50 - in1.p50 <= 0.3,
  })
  await model.session.release()
}

{
  // An image is ~110 KB as binary tensor data and ~500 KB as JSON, whose parsing alone takes longer than the model run.
  const id = 'ppocr_mobile_v2_text_direction_cls'
  const model = await loadModel(join(MODELS_DIR, `${id}.onnx`))
  const inputs = sampleFeeds(id)
  console.log(`\n${id}`)
  for (const wire of ['binary', 'json'] as const) {
    const off = await overHttp(id, model, inputs, 32, false, wire)
    const on = await overHttp(id, model, inputs, 32, true, wire)
    console.log(`  HTTP ${wire.padEnd(6)} c=32  ${fmt(off)}  (batching off)`)
    console.log(
      `  HTTP ${wire.padEnd(6)} c=32  ${fmt(on)}  (batching on, ${on.meanBatch.toFixed(1)} rows per run on average)`,
    )
    const ratio = `${(on.rps / off.rps).toFixed(2)}x`
    if (wire === 'binary')
      results.push({
        target: `${id}: batching on ≥ 1.5x batching off at c=32 (binary tensor data, as tritonclient sends it)`,
        value: ratio,
        pass: on.rps >= 1.5 * off.rps,
      })
    else results.push({target: `${id}: batching on against off at c=32 with JSON bodies`, value: ratio})
  }
  await model.session.release()
}

console.log('')
for (const r of results)
  console.log(`${r.pass === undefined ? 'INFO' : r.pass ? 'PASS' : 'FAIL'}  ${r.target}: ${r.value}`)
