// The Open Inference Protocol (KServe v2 / Triton) REST encoding: datatypes, request decoding and exact response encoding,
// with JSON values or with the binary tensor data extension (raw little-endian bytes after the JSON).
import {endianness} from 'node:os'

import {type Dim, type ModelSignature, type TensorSpec, formatShape} from '../model/signature.js'
import {
  type Dtype,
  type OrtTensor,
  TensorValueError,
  type TypedData,
  fromHalf,
  makeTensor,
  typedFromJson,
} from '../model/tensor.js'
import {HttpError, badRequest} from './errors.js'

const TO_DTYPE: Record<string, Dtype> = {
  BOOL: 'bool',
  UINT8: 'uint8',
  UINT16: 'uint16',
  UINT32: 'uint32',
  UINT64: 'uint64',
  INT8: 'int8',
  INT16: 'int16',
  INT32: 'int32',
  INT64: 'int64',
  FP16: 'float16',
  FP32: 'float32',
  FP64: 'float64',
  BYTES: 'string',
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

export function modelMetadata(
  name: string,
  version: string,
  signature: ModelSignature,
): {name: string; versions: string[]; platform: string; inputs: TensorMetadata[]; outputs: TensorMetadata[]} {
  return {
    name,
    versions: [version],
    platform: 'onnxruntime_onnx',
    inputs: signature.inputs.map((i) => ({name: i.name, datatype: datatypeOf(i.dtype), shape: metadataShape(i.shape)})),
    outputs: signature.outputs
      .filter((o) => o.isTensor)
      .map((o) => ({name: o.name, datatype: datatypeOf(o.dtype!), shape: metadataShape(o.shape ?? [])})),
  }
}

export interface RequestedOutput {
  name: string
  /** Sent back as raw bytes after the JSON (the binary tensor data extension) rather than as JSON values. */
  binary: boolean
}

export interface InferRequest {
  id?: string
  feeds: Record<string, OrtTensor>
  /** Outputs asked for, in order; all tensor outputs when the request names none. */
  outputs: RequestedOutput[]
  /** `parameters.binary_data_output`: how outputs the request does not name go back (the fallback's, for one). */
  binaryOutputs: boolean
  parameters?: Record<string, unknown>
}

const REQUEST_KEYS = new Set(['id', 'parameters', 'inputs', 'outputs'])
const INPUT_KEYS = new Set(['name', 'shape', 'datatype', 'parameters', 'data'])

/**
 * Decodes an inference request; every problem is a 400 naming the field, e.g. `inputs[0].shape`.
 * `binary` is what follows the JSON in a binary tensor data request: the inputs with `parameters.binary_data_size`
 * take their bytes from it, in order, and together they must use it up exactly.
 */
export function decodeInferRequest(
  body: unknown,
  signature: ModelSignature,
  fetches: readonly string[],
  binary?: Buffer,
): InferRequest {
  if (!isObject(body)) throw badRequest('BAD_REQUEST', 'the body must be a JSON object {"inputs": [...]}')
  for (const key of Object.keys(body))
    if (!REQUEST_KEYS.has(key))
      throw badRequest(
        'UNKNOWN_FIELD',
        `unknown field "${key}"; an inference request has id, parameters, inputs and outputs`,
        key,
      )
  const {id, parameters, inputs, outputs} = body
  if (id !== undefined && typeof id !== 'string') throw badRequest('BAD_FIELD', 'must be a string', 'id')
  if (parameters !== undefined && !isObject(parameters))
    throw badRequest('BAD_FIELD', 'must be an object', 'parameters')
  const binaryOutputs = parameters?.binary_data_output ?? false
  if (typeof binaryOutputs !== 'boolean')
    throw badRequest('BAD_FIELD', 'must be true or false', 'parameters.binary_data_output')
  // A model without inputs (a constant, a generator) is called with an empty list; any other model needs its inputs.
  if (!Array.isArray(inputs) || (inputs.length === 0 && signature.inputs.length > 0))
    throw badRequest('BAD_FIELD', 'must be a non-empty array of input tensors', 'inputs')
  const specs = inputSpecs(signature)
  const feeds: Record<string, OrtTensor> = {}
  let offset = 0
  inputs.forEach((input, i) => {
    const where = `inputs[${i}]`
    if (!isObject(input)) throw badRequest('BAD_FIELD', 'must be an object {name, shape, datatype, data}', where)
    for (const key of Object.keys(input))
      if (!INPUT_KEYS.has(key)) throw badRequest('UNKNOWN_FIELD', `unknown field "${key}"`, `${where}.${key}`)
    const {name, shape, datatype, data} = input
    if (typeof name !== 'string') throw badRequest('BAD_FIELD', 'must be the input name (a string)', `${where}.name`)
    const spec = specs.get(name)
    if (!spec)
      throw badRequest(
        'UNKNOWN_INPUT',
        `the model has no input "${name}"; it takes ${[...specs.keys()].join(', ')}`,
        `${where}.name`,
      )
    if (feeds[name]) throw badRequest('DUPLICATE_INPUT', `input "${name}" is given twice`, `${where}.name`)
    if (typeof datatype !== 'string' || !(datatype in TO_DTYPE))
      throw badRequest('BAD_FIELD', `must be one of ${Object.keys(TO_DTYPE).join(', ')}`, `${where}.datatype`)
    if (TO_DTYPE[datatype] !== spec.dtype)
      throw badRequest(
        'WRONG_DATATYPE',
        `input "${name}" is ${datatypeOf(spec.dtype)}, not ${datatype}`,
        `${where}.datatype`,
      )
    if (!Array.isArray(shape) || shape.some((d) => !Number.isSafeInteger(d) || d < 0))
      throw badRequest('BAD_FIELD', 'must be an array of non-negative integers', `${where}.shape`)
    const dims = shape as number[]
    if (dims.length !== spec.shape.length)
      throw badRequest(
        'WRONG_SHAPE',
        `input "${name}" has rank ${spec.shape.length} ${formatShape(spec.shape)}, not ${dims.length}`,
        `${where}.shape`,
      )
    const count = dims.reduce((a, b) => a * b, 1)
    const size = binaryDataSize(input.parameters, where)
    if (size !== undefined) {
      if (data !== undefined)
        throw badRequest(
          'BAD_FIELD',
          'give the values either in data or as binary data (parameters.binary_data_size), not both',
          `${where}.data`,
        )
      if (binary === undefined)
        throw badRequest(
          'NO_BINARY_DATA',
          'parameters.binary_data_size is set, but the request has no binary part: send the JSON length in the Inference-Header-Content-Length header and the tensor bytes after the JSON',
          `${where}.parameters.binary_data_size`,
        )
      if (offset + size > binary.length)
        throw badRequest(
          'BINARY_SIZE_MISMATCH',
          `binary_data_size ${size} runs past the end of the binary data (${binary.length - offset} bytes left after the inputs before it)`,
          `${where}.parameters.binary_data_size`,
        )
      feeds[name] = makeTensor(
        spec.dtype,
        typedFromBytes(
          spec.dtype,
          count,
          dims,
          binary.subarray(offset, offset + size),
          `${where}.parameters.binary_data_size`,
        ),
        dims,
      )
      offset += size
      return
    }
    if (!Array.isArray(data))
      throw badRequest('BAD_FIELD', 'must be an array of values, flat or nested', `${where}.data`)
    feeds[name] = makeTensor(spec.dtype, typedFromData(spec.dtype, data, dims, count, where), dims)
  })
  if (binary !== undefined && offset !== binary.length)
    throw badRequest(
      'BINARY_SIZE_MISMATCH',
      `the binary data after the JSON is ${binary.length} bytes, but the inputs' binary_data_size add up to ${offset}`,
      'inputs',
    )
  return {
    id,
    feeds,
    outputs: requestedOutputs(outputs, signature, fetches, binaryOutputs),
    binaryOutputs,
    parameters: parameters,
  }
}

const specsBySignature = new WeakMap<ModelSignature, Map<string, TensorSpec>>()

function inputSpecs(signature: ModelSignature): Map<string, TensorSpec> {
  let specs = specsBySignature.get(signature)
  if (!specs) specsBySignature.set(signature, (specs = new Map(signature.inputs.map((s) => [s.name, s]))))
  return specs
}

/** Whether every input is there with the model's dtype, rank and fixed dims: what checkFeeds checks, without building messages. */
export function feedsFit(signature: ModelSignature, feeds: Record<string, OrtTensor>): boolean {
  let count = 0
  for (const spec of signature.inputs) {
    const tensor = feeds[spec.name]
    if (tensor === undefined || tensor.type !== spec.dtype || tensor.dims.length !== spec.shape.length) return false
    for (let d = 0; d < spec.shape.length; d++) {
      const dim = spec.shape[d]
      if (typeof dim === 'number' && dim >= 0 && tensor.dims[d] !== dim) return false
    }
    count++
  }
  for (const _ in feeds) count--
  return count === 0
}

function binaryDataSize(parameters: unknown, where: string): number | undefined {
  if (parameters === undefined) return undefined
  if (!isObject(parameters)) throw badRequest('BAD_FIELD', 'must be an object', `${where}.parameters`)
  const size = parameters.binary_data_size
  if (size === undefined) return undefined
  if (!Number.isSafeInteger(size) || (size as number) < 0)
    throw badRequest(
      'BAD_FIELD',
      "must be a non-negative integer (the tensor's size in bytes)",
      `${where}.parameters.binary_data_size`,
    )
  return size as number
}

/** JSON values to a typed array: flat numbers go straight in, anything else (nesting, "NaN", 64-bit, bool) the careful way. */
function typedFromData(dtype: Dtype, data: unknown[], shape: number[], count: number, where: string): TypedData {
  const fast = flatFloats(dtype, data, count)
  if (fast) return fast
  const values = flatten(data, shape.length, `${where}.data`)
  if (values.length !== count)
    throw badRequest(
      'WRONG_SHAPE',
      `shape [${shape.join(',')}] needs ${count} values, got ${values.length}`,
      `${where}.data`,
    )
  try {
    return typedFromJson(dtype, dtype === 'int64' || dtype === 'uint64' ? values : values.map(unBig), `${where}.data`)
  } catch (error) {
    if (error instanceof TensorValueError)
      throw badRequest('BAD_VALUE', error.message.replace(/^[^:]*: /, ''), String(error.message.split(':')[0]))
    throw error
  }
}

/** An image of floats as JSON is hundreds of thousands of plain numbers: one tight loop, no message built per value. */
function flatFloats(dtype: Dtype, data: unknown[], count: number): Float32Array | Float64Array | undefined {
  if ((dtype !== 'float32' && dtype !== 'float64') || data.length !== count) return undefined
  const out = dtype === 'float32' ? new Float32Array(count) : new Float64Array(count)
  for (let i = 0; i < count; i++) {
    const value = data[i]
    if (typeof value !== 'number') return undefined
    out[i] = value
  }
  return out
}

const ARRAY_OF = {
  bool: Uint8Array,
  uint8: Uint8Array,
  int8: Int8Array,
  uint16: Uint16Array,
  int16: Int16Array,
  float16: Uint16Array,
  uint32: Uint32Array,
  int32: Int32Array,
  float32: Float32Array,
  uint64: BigUint64Array,
  int64: BigInt64Array,
  float64: Float64Array,
}
// Typed arrays read and write in the host's byte order; the wire's is little-endian.
const LITTLE_ENDIAN = endianness() === 'LE'
const utf8 = new TextDecoder('utf-8', {fatal: true})

/** One input's binary data: little-endian values in their native size, BOOL one byte, BYTES a 4-byte length before each element. */
function typedFromBytes(dtype: Dtype, count: number, shape: number[], bytes: Buffer, field: string): TypedData {
  if (!LITTLE_ENDIAN)
    throw new HttpError(
      501,
      'NOT_IMPLEMENTED',
      'binary tensor data needs a little-endian host; send the values as JSON data',
    )
  if (dtype === 'string') return stringsFromBytes(count, bytes, field)
  const Ctor = ARRAY_OF[dtype]
  const size = Ctor.BYTES_PER_ELEMENT
  if (bytes.length !== count * size)
    throw badRequest(
      'BINARY_SIZE_MISMATCH',
      `binary_data_size is ${bytes.length} bytes, but shape [${shape.join(',')}] of ${datatypeOf(dtype)} takes ${count * size}`,
      field,
    )
  // A view when the bytes sit on an element boundary (the server aligns the first binary input), else one copy.
  const data =
    bytes.byteOffset % size === 0
      ? new Ctor(bytes.buffer as ArrayBuffer, bytes.byteOffset, count)
      : new Ctor(new Uint8Array(bytes).buffer)
  if (dtype === 'bool') {
    const index = (data as Uint8Array).findIndex((v) => v > 1)
    if (index >= 0)
      throw badRequest(
        'BAD_VALUE',
        `element ${index} is ${(data as Uint8Array)[index]}; a BOOL is one byte, 0 or 1`,
        field,
      )
  }
  return data
}

function stringsFromBytes(count: number, bytes: Buffer, field: string): string[] {
  // Every element takes 4 bytes at least: a shape too large for the bytes is refused before anything is allocated for it.
  if (count * 4 > bytes.length)
    throw badRequest(
      'BINARY_SIZE_MISMATCH',
      `shape of ${count} BYTES elements needs at least ${count * 4} bytes (a 4-byte length each), but binary_data_size is ${bytes.length}`,
      field,
    )
  const out = new Array<string>(count)
  let offset = 0
  for (let i = 0; i < count; i++) {
    const length = offset + 4 <= bytes.length ? bytes.readUInt32LE(offset) : -1
    if (length < 0 || offset + 4 + length > bytes.length)
      throw badRequest(
        'BINARY_SIZE_MISMATCH',
        `BYTES element ${i} runs past the end of the ${bytes.length} bytes of binary_data_size (each element is a 4-byte little-endian length, then the bytes)`,
        field,
      )
    offset += 4
    try {
      out[i] = utf8.decode(bytes.subarray(offset, offset + length))
    } catch {
      throw badRequest(
        'BAD_VALUE',
        `BYTES element ${i} is not valid UTF-8, which onnxruntime's string tensors need`,
        field,
      )
    }
    offset += length
  }
  if (offset !== bytes.length)
    throw badRequest(
      'BINARY_SIZE_MISMATCH',
      `the ${count} BYTES elements take ${offset} bytes, but binary_data_size is ${bytes.length}`,
      field,
    )
  return out
}

function requestedOutputs(
  outputs: unknown,
  signature: ModelSignature,
  fetches: readonly string[],
  binaryDefault: boolean,
): RequestedOutput[] {
  if (outputs === undefined) return fetches.map((name) => ({name, binary: binaryDefault}))
  if (!Array.isArray(outputs)) throw badRequest('BAD_FIELD', 'must be an array of {name}', 'outputs')
  return outputs.map((o, i) => {
    const name = isObject(o) ? o.name : undefined
    if (typeof name !== 'string')
      throw badRequest('BAD_FIELD', 'must be an object with the output name', `outputs[${i}].name`)
    if (!fetches.includes(name)) {
      const nonTensor = signature.outputs.some((s) => s.name === name && !s.isTensor)
      throw badRequest(
        'UNKNOWN_OUTPUT',
        nonTensor
          ? `output "${name}" is a map or sequence (ZipMap), which onnxruntime-node cannot return`
          : `the model has no output "${name}"; it has ${fetches.join(', ')}`,
        `outputs[${i}].name`,
      )
    }
    const parameters = (o as {parameters?: unknown}).parameters
    if (parameters !== undefined && !isObject(parameters))
      throw badRequest('BAD_FIELD', 'must be an object', `outputs[${i}].parameters`)
    const binary = parameters?.binary_data ?? binaryDefault
    if (typeof binary !== 'boolean')
      throw badRequest('BAD_FIELD', 'must be true or false', `outputs[${i}].parameters.binary_data`)
    return {name, binary}
  })
}

/** Flat or nested data (at most `rank` levels) to one flat list. */
function flatten(data: unknown[], rank: number, where: string): unknown[] {
  let flat = data
  for (let level = 0; flat.some(Array.isArray); level++) {
    if (level >= rank) throw badRequest('WRONG_SHAPE', `is nested deeper than the tensor's rank ${rank}`, where)
    if (!flat.every(Array.isArray))
      throw badRequest('WRONG_SHAPE', 'mixes arrays and values at one nesting level', where)
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
  // String(-0) is "0": a negative zero (a sign the model computed) is written out as -0, which JSON allows.
  let plain = true
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i]) || isNegativeZero(values[i])) {
      plain = false
      break
    }
  }
  if (plain) return `[${Array.prototype.join.call(values, ',')}]`
  return `[${Array.from(values, floatText).join(',')}]`
}

function isNegativeZero(v: number): boolean {
  return v === 0 && 1 / v < 0
}

function floatText(v: number): string {
  if (Number.isNaN(v)) return '"NaN"'
  if (v === Infinity) return '"Infinity"'
  if (v === -Infinity) return '"-Infinity"'
  return isNegativeZero(v) ? '-0' : String(v)
}

/** An output sent as binary data: its JSON (without data) and its bytes, which follow the JSON in the response body. */
export function encodeBinaryOutput(name: string, tensor: OrtTensor): {json: string; bytes: Buffer} {
  const bytes = tensorBytes(tensor)
  return {
    json: `{"name":${JSON.stringify(name)},"datatype":"${datatypeOf(tensor.type as Dtype)}","shape":[${tensor.dims.join(',')}],"parameters":{"binary_data_size":${bytes.length}}}`,
    bytes,
  }
}

/** A tensor's values as the binary tensor data extension sends them; numbers are the typed array's own bytes, not a copy. */
export function tensorBytes(tensor: OrtTensor): Buffer {
  if (!LITTLE_ENDIAN)
    throw new HttpError(501, 'NOT_IMPLEMENTED', 'binary tensor data needs a little-endian host; ask for JSON outputs')
  if (tensor.type !== 'string') {
    const data = tensor.data as Exclude<TypedData, string[]>
    return Buffer.from(data.buffer, data.byteOffset, data.byteLength)
  }
  const strings = (tensor.data as string[]).map((s) => Buffer.from(s, 'utf8'))
  const out = Buffer.allocUnsafe(strings.reduce((sum, s) => sum + 4 + s.length, 0))
  let offset = 0
  for (const s of strings) {
    offset = out.writeUInt32LE(s.length, offset)
    offset += s.copy(out, offset)
  }
  return out
}
