// The Open Inference Protocol (KServe v2 / Triton) REST encoding: datatypes, request decoding and exact response encoding.
import {type Dim, type ModelSignature, formatShape} from '../model/signature.js'
import {type Dtype, type OrtTensor, TensorValueError, fromHalf, makeTensor, typedFromJson} from '../model/tensor.js'
import {badRequest} from './errors.js'

const TO_DTYPE: Record<string, Dtype> = {
  BOOL: 'bool', UINT8: 'uint8', UINT16: 'uint16', UINT32: 'uint32', UINT64: 'uint64',
  INT8: 'int8', INT16: 'int16', INT32: 'int32', INT64: 'int64',
  FP16: 'float16', FP32: 'float32', FP64: 'float64', BYTES: 'string',
}
const TO_DATATYPE = Object.fromEntries(Object.entries(TO_DTYPE).map(([k, v]) => [v, k])) as Record<Dtype, string>

export function datatypeOf(dtype: Dtype): string {
  return TO_DATATYPE[dtype]
}

export interface TensorMetadata {
  name: string
  datatype: string
  shape: number[]
}

/** Dynamic dims are -1, as KServe and Triton clients expect. */
function metadataShape(shape: readonly Dim[]): number[] {
  return shape.map((d) => (typeof d === 'number' && d >= 0 ? d : -1))
}

export function modelMetadata(name: string, version: string, signature: ModelSignature): {name: string; versions: string[]; platform: string; inputs: TensorMetadata[]; outputs: TensorMetadata[]} {
  return {
    name,
    versions: [version],
    platform: 'onnxruntime_onnx',
    inputs: signature.inputs.map((i) => ({name: i.name, datatype: datatypeOf(i.dtype), shape: metadataShape(i.shape)})),
    outputs: signature.outputs.filter((o) => o.isTensor).map((o) => ({name: o.name, datatype: datatypeOf(o.dtype!), shape: metadataShape(o.shape ?? [])})),
  }
}

export interface InferRequest {
  id?: string
  feeds: Record<string, OrtTensor>
  /** Outputs asked for, in order; all tensor outputs when the request names none. */
  outputs: string[]
  parameters?: Record<string, unknown>
}

const REQUEST_KEYS = new Set(['id', 'parameters', 'inputs', 'outputs'])
const INPUT_KEYS = new Set(['name', 'shape', 'datatype', 'parameters', 'data'])

/** Decodes an inference request; every problem is a 400 naming the field, e.g. `inputs[0].shape`. */
export function decodeInferRequest(body: unknown, signature: ModelSignature, fetches: readonly string[]): InferRequest {
  if (!isObject(body)) throw badRequest('BAD_REQUEST', 'the body must be a JSON object {"inputs": [...]}')
  for (const key of Object.keys(body)) if (!REQUEST_KEYS.has(key)) throw badRequest('UNKNOWN_FIELD', `unknown field "${key}"; an inference request has id, parameters, inputs and outputs`, key)
  const {id, parameters, inputs, outputs} = body
  if (id !== undefined && typeof id !== 'string') throw badRequest('BAD_FIELD', 'must be a string', 'id')
  if (parameters !== undefined && !isObject(parameters)) throw badRequest('BAD_FIELD', 'must be an object', 'parameters')
  if (!Array.isArray(inputs) || inputs.length === 0) throw badRequest('BAD_FIELD', 'must be a non-empty array of input tensors', 'inputs')
  const specs = new Map(signature.inputs.map((s) => [s.name, s]))
  const feeds: Record<string, OrtTensor> = {}
  inputs.forEach((input, i) => {
    const where = `inputs[${i}]`
    if (!isObject(input)) throw badRequest('BAD_FIELD', 'must be an object {name, shape, datatype, data}', where)
    for (const key of Object.keys(input)) if (!INPUT_KEYS.has(key)) throw badRequest('UNKNOWN_FIELD', `unknown field "${key}"`, `${where}.${key}`)
    const {name, shape, datatype, data} = input
    if (typeof name !== 'string') throw badRequest('BAD_FIELD', 'must be the input name (a string)', `${where}.name`)
    const spec = specs.get(name)
    if (!spec) throw badRequest('UNKNOWN_INPUT', `the model has no input "${name}"; it takes ${[...specs.keys()].join(', ')}`, `${where}.name`)
    if (feeds[name]) throw badRequest('DUPLICATE_INPUT', `input "${name}" is given twice`, `${where}.name`)
    if (typeof datatype !== 'string' || !(datatype in TO_DTYPE)) throw badRequest('BAD_FIELD', `must be one of ${Object.keys(TO_DTYPE).join(', ')}`, `${where}.datatype`)
    if (TO_DTYPE[datatype] !== spec.dtype) throw badRequest('WRONG_DATATYPE', `input "${name}" is ${datatypeOf(spec.dtype)}, not ${datatype}`, `${where}.datatype`)
    if (!Array.isArray(shape) || shape.some((d) => !Number.isSafeInteger(d) || d < 0)) throw badRequest('BAD_FIELD', 'must be an array of non-negative integers', `${where}.shape`)
    if (shape.length !== spec.shape.length) throw badRequest('WRONG_SHAPE', `input "${name}" has rank ${spec.shape.length} ${formatShape(spec.shape)}, not ${shape.length}`, `${where}.shape`)
    if (!Array.isArray(data)) throw badRequest('BAD_FIELD', 'must be an array of values, flat or nested', `${where}.data`)
    const values = flatten(data, shape.length, `${where}.data`)
    const count = shape.reduce((a: number, b: number) => a * b, 1)
    if (values.length !== count) throw badRequest('WRONG_SHAPE', `shape [${shape.join(',')}] needs ${count} values, got ${values.length}`, `${where}.data`)
    try {
      feeds[name] = makeTensor(spec.dtype, typedFromJson(spec.dtype, spec.dtype === 'int64' || spec.dtype === 'uint64' ? values : values.map(unBig), `${where}.data`), shape as number[])
    } catch (error) {
      if (error instanceof TensorValueError) throw badRequest('BAD_VALUE', error.message.replace(/^[^:]*: /, ''), String(error.message.split(':')[0]))
      throw error
    }
  })
  return {id, feeds, outputs: requestedOutputs(outputs, signature, fetches), parameters: parameters as Record<string, unknown> | undefined}
}

function requestedOutputs(outputs: unknown, signature: ModelSignature, fetches: readonly string[]): string[] {
  if (outputs === undefined) return [...fetches]
  if (!Array.isArray(outputs)) throw badRequest('BAD_FIELD', 'must be an array of {name}', 'outputs')
  return outputs.map((o, i) => {
    const name = isObject(o) ? o.name : undefined
    if (typeof name !== 'string') throw badRequest('BAD_FIELD', 'must be an object with the output name', `outputs[${i}].name`)
    if (!fetches.includes(name)) {
      const nonTensor = signature.outputs.some((s) => s.name === name && !s.isTensor)
      throw badRequest('UNKNOWN_OUTPUT', nonTensor ? `output "${name}" is a map or sequence (ZipMap), which onnxruntime-node cannot return` : `the model has no output "${name}"; it has ${fetches.join(', ')}`, `outputs[${i}].name`)
    }
    return name
  })
}

/** Flat or nested data (at most `rank` levels) to one flat list. */
function flatten(data: unknown[], rank: number, where: string): unknown[] {
  let flat = data
  for (let level = 0; flat.some(Array.isArray); level++) {
    if (level >= rank) throw badRequest('WRONG_SHAPE', `is nested deeper than the tensor's rank ${rank}`, where)
    if (!flat.every(Array.isArray)) throw badRequest('WRONG_SHAPE', 'mixes arrays and values at one nesting level', where)
    flat = flat.flat()
  }
  return flat
}

/** Exact big integers only matter for 64-bit tensors; elsewhere they are ordinary numbers. */
function unBig(value: unknown): unknown {
  return typeof value === 'bigint' ? Number(value) : value
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

/**
 * One output as JSON text. Written by hand so int64/uint64 values past 2^53 go out as exact integer literals
 * (JSON.stringify cannot print BigInt), and NaN/±Infinity as the strings "NaN", "Infinity", "-Infinity".
 */
export function encodeOutput(name: string, tensor: OrtTensor): string {
  return `{"name":${JSON.stringify(name)},"datatype":"${datatypeOf(tensor.type as Dtype)}","shape":[${tensor.dims.join(',')}],"data":${encodeData(tensor)}}`
}

export function encodeData(tensor: OrtTensor): string {
  const data = tensor.data as ArrayLike<unknown>
  switch (tensor.type) {
    case 'string':
      return JSON.stringify(data)
    case 'bool':
      return `[${Array.from(data as Uint8Array, (v) => (v ? 'true' : 'false')).join(',')}]`
    case 'float16':
      return floats(Array.from(data as Uint16Array, fromHalf))
    case 'float32':
    case 'float64':
      return floats(data as Float32Array)
    default:
      // Integer typed arrays (BigInt ones too) print their exact decimal digits.
      return `[${(data as Int32Array).join(',')}]`
  }
}

function floats(values: ArrayLike<number>): string {
  let finite = true
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i])) {
      finite = false
      break
    }
  }
  if (finite) return `[${Array.prototype.join.call(values, ',')}]`
  return `[${Array.from(values, (v) => (Number.isNaN(v) ? '"NaN"' : v === Infinity ? '"Infinity"' : v === -Infinity ? '"-Infinity"' : String(v))).join(',')}]`
}
