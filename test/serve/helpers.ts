// Shared by the serve tests: the shared models and their samples, a server on 127.0.0.1:0, and tolerant comparison.
import {readFileSync} from 'node:fs'
import {join} from 'node:path'

import {type LoadedModel, loadModel} from '../../src/model/signature.js'
import {type TensorJson, tensorFromJson, tensorToJson} from '../../src/model/tensor.js'
import {type ServeSettings, serveSettings} from '../../src/serve/config.js'
import {type ModelServer, type ModelServerOptions, createModelServer} from '../../src/serve/server.js'
import {MODELS_DIR} from '../support/cli.js'

export interface Sample {
  name: string
  inputs: Record<string, TensorJson>
  expected_outputs: Record<string, TensorJson>
}

export interface ModelInfo {
  id: string
  model_file: string
  run_fetches: string[]
  samples: Sample[]
}

export function modelInfo(id: string): ModelInfo {
  return JSON.parse(readFileSync(join(MODELS_DIR, `${id}.json`), 'utf8')) as ModelInfo
}

export function modelIds(): string[] {
  return (JSON.parse(readFileSync(join(MODELS_DIR, 'manifest.json'), 'utf8')) as {id: string}[]).map((m) => m.id)
}

export async function load(id: string): Promise<LoadedModel> {
  return loadModel(join(MODELS_DIR, `${id}.onnx`))
}

export interface Running {
  server: ModelServer
  url: string
  model: LoadedModel
}

export async function start(
  id: string,
  settings: Partial<ServeSettings> = {},
  options: Partial<ModelServerOptions> = {},
): Promise<Running> {
  const model = options.model ?? (await load(id))
  const server = createModelServer({
    model,
    identity: {name: id, version: '1.0.0'},
    settings: serveSettings({}, settings),
    faults: {latencyMs: 0, errorRate: 0, wrong: false},
    ...options,
  })
  const url = await server.listen(0, '127.0.0.1')
  return {server, url, model}
}

/** A sample tensor as plain JSON values (base64 decoded, float16 as numbers). */
export function plain(json: TensorJson): TensorJson {
  return json.data_b64 === undefined ? json : tensorToJson(tensorFromJson(json))
}

export const DATATYPE: Record<string, string> = {
  bool: 'BOOL',
  uint8: 'UINT8',
  int8: 'INT8',
  uint16: 'UINT16',
  int16: 'INT16',
  uint32: 'UINT32',
  int32: 'INT32',
  uint64: 'UINT64',
  int64: 'INT64',
  float16: 'FP16',
  float32: 'FP32',
  float64: 'FP64',
  string: 'BYTES',
}

export function inferBody(sample: Sample, id?: string): unknown {
  return {
    ...(id ? {id} : {}),
    inputs: Object.entries(sample.inputs).map(([name, json]) => {
      const t = plain(json)
      return {name, shape: t.shape, datatype: DATATYPE[t.dtype], data: t.data}
    }),
  }
}

/** rtol 1e-4, atol 1e-5 (1e-3 for float16); labels and strings exact. Returns the first difference, or undefined. */
export function difference(actual: unknown[], expected: TensorJson): string | undefined {
  const want = plain(expected).data!
  if (actual.length !== want.length) return `length ${actual.length} != ${want.length}`
  const atol = expected.dtype === 'float16' ? 1e-3 : 1e-5
  for (let i = 0; i < want.length; i++) {
    const a = actual[i]
    const e = want[i]
    if (typeof e === 'number' && expected.dtype.startsWith('float')) {
      if (typeof a !== 'number' || Math.abs(a - e) > atol + 1e-4 * Math.abs(e)) return `[${i}] ${String(a)} != ${e}`
    } else if (String(a) !== String(e)) return `[${i}] ${String(a)} != ${String(e)}`
  }
  return undefined
}

export async function post(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{status: number; json: any; headers: Headers; text: string}> {
  const response = await fetch(url, {
    method: 'POST',
    body: typeof body === 'string' ? body : JSON.stringify(body),
    headers: {'content-type': 'application/json', ...headers},
  })
  const text = await response.text()
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    json = undefined
  }
  return {status: response.status, json, headers: response.headers, text}
}

/** Every request logged with its inputs to `path`, for tests that read the log back. */
export function logEverything(path: string): ServeSettings['requestLog'] {
  return {path, inputs: 'all', sampleRate: 1, maxBytes: 1e7, maxFiles: 1, buffer: 1000}
}
