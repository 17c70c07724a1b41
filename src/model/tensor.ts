// Tensors on the wire and on disk, and their onnxruntime-node form: int64 as BigInt, float16 as half bits, NaN as strings.
import * as ort from 'onnxruntime-node'

import {ExitCode, MlopsError} from '../errors.js'

export const SUPPORTED_DTYPES = [
  'bool',
  'uint8',
  'int8',
  'uint16',
  'int16',
  'uint32',
  'int32',
  'uint64',
  'int64',
  'float16',
  'float32',
  'float64',
  'string',
] as const
export type Dtype = (typeof SUPPORTED_DTYPES)[number]

/** A dimension: a fixed size, or a dynamic one (its symbolic name, or "" when unnamed), as onnxruntime-node reports it. */
export type Dim = number | string

export type JsonScalar = number | string | boolean | null

/** A tensor as JSON: the format of golden cases, of `../shared/models/*.json` samples and of `mlops predict` raw mode. */
export interface TensorJson {
  dtype: Dtype
  shape: number[]
  data?: JsonScalar[]
  /** Raw little-endian bytes of the typed array, base64: used for large tensors. */
  data_b64?: string
}

export type OrtTensor = ort.Tensor

export function isSupportedDtype(dtype: string): dtype is Dtype {
  return (SUPPORTED_DTYPES as readonly string[]).includes(dtype)
}

export function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1)
}

export class TensorValueError extends MlopsError {
  constructor(
    message: string,
    readonly field?: string,
  ) {
    super('TENSOR_INVALID', message, {exitCode: ExitCode.usage, details: {field}})
  }
}

// ---------- float16 ----------

const f32 = new Float32Array(1)
const u32 = new Uint32Array(f32.buffer)

/** IEEE 754 half bits from a number (round to nearest even). */
export function toHalf(value: number): number {
  f32[0] = value
  const x = u32[0]
  const sign = (x >>> 16) & 0x8000
  const exp = (x >>> 23) & 0xff
  let mant = x & 0x7fffff
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0)
  let e = exp - 127 + 15
  if (e >= 0x1f) return sign | 0x7c00
  if (e <= 0) {
    if (e < -10) return sign
    mant |= 0x800000
    const shift = 14 - e
    let half = mant >>> shift
    const rem = mant & ((1 << shift) - 1)
    const halfway = 1 << (shift - 1)
    if (rem > halfway || (rem === halfway && half & 1)) half++
    return sign | half
  }
  let half = (e << 10) | (mant >>> 13)
  const rem = mant & 0x1fff
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++
  e = half >>> 10
  return sign | half
}

export function fromHalf(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1
  const exp = (bits >>> 10) & 0x1f
  const mant = bits & 0x3ff
  if (exp === 0) return sign * mant * 2 ** -24
  if (exp === 0x1f) return mant ? Number.NaN : sign * Number.POSITIVE_INFINITY
  return sign * (1 + mant / 1024) * 2 ** (exp - 15)
}

// ---------- JSON <-> number ----------

/** JSON has no NaN or Infinity: null and the strings "NaN", "Infinity", "-Infinity" stand for them. */
export function jsonToFloat(value: unknown, where: string): number {
  if (typeof value === 'number') return value
  if (value === null || value === 'NaN' || value === 'nan') return Number.NaN
  if (value === 'Infinity' || value === 'inf' || value === '+Infinity') return Number.POSITIVE_INFINITY
  if (value === '-Infinity' || value === '-inf') return Number.NEGATIVE_INFINITY
  if (typeof value === 'boolean') return value ? 1 : 0
  throw new TensorValueError(
    `${where}: expected a number (or null, "NaN", "Infinity", "-Infinity"), got ${describe(value)}`,
    where,
  )
}

export function floatToJson(value: number): number | string {
  if (Number.isNaN(value)) return 'NaN'
  if (value === Number.POSITIVE_INFINITY) return 'Infinity'
  if (value === Number.NEGATIVE_INFINITY) return '-Infinity'
  return value
}

function jsonToBigInt(value: unknown, where: string, unsigned: boolean): bigint {
  let result: bigint
  if (typeof value === 'number' && Number.isInteger(value)) result = BigInt(value)
  else if (typeof value === 'string' && /^-?\d+$/.test(value.trim())) result = BigInt(value.trim())
  else if (typeof value === 'bigint') result = value
  else if (typeof value === 'boolean') result = value ? 1n : 0n
  else
    throw new TensorValueError(
      `${where}: expected an integer (a number, or a string of digits past 2^53), got ${describe(value)}`,
      where,
    )
  const [lo, hi] = unsigned ? [0n, 2n ** 64n - 1n] : [-(2n ** 63n), 2n ** 63n - 1n]
  if (result < lo || result > hi)
    throw new TensorValueError(`${where}: ${result} is out of range for ${unsigned ? 'uint64' : 'int64'}`, where)
  return result
}

const INT_RANGES: Record<string, [number, number]> = {
  int8: [-128, 127],
  uint8: [0, 255],
  int16: [-32768, 32767],
  uint16: [0, 65535],
  int32: [-2147483648, 2147483647],
  uint32: [0, 4294967295],
}

function jsonToInt(value: unknown, where: string, dtype: string): number {
  const n = typeof value === 'boolean' ? (value ? 1 : 0) : value
  if (typeof n !== 'number' || !Number.isInteger(n))
    throw new TensorValueError(`${where}: expected an integer, got ${describe(value)}`, where)
  const [lo, hi] = INT_RANGES[dtype]
  if (n < lo || n > hi) throw new TensorValueError(`${where}: ${n} is out of range for ${dtype} [${lo}, ${hi}]`, where)
  return n
}

function describe(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  if (typeof value === 'string')
    return `the string ${JSON.stringify(value.length > 40 ? value.slice(0, 40) + '…' : value)}`
  return `${typeof value} ${typeof value === 'object' ? '' : String(value)}`.trim()
}

// ---------- build ORT tensors ----------

export type TypedData =
  | Float32Array
  | Float64Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array
  | string[]

/** Allocates the typed array ORT expects for a dtype and fills it from JSON values. */
export function typedFromJson(dtype: Dtype, values: readonly unknown[], where = 'data'): TypedData {
  const n = values.length
  switch (dtype) {
    case 'float32':
    case 'float64': {
      const out = dtype === 'float32' ? new Float32Array(n) : new Float64Array(n)
      for (let i = 0; i < n; i++) out[i] = jsonToFloat(values[i], `${where}[${i}]`)
      return out
    }
    case 'float16': {
      const out = new Uint16Array(n)
      for (let i = 0; i < n; i++) out[i] = toHalf(jsonToFloat(values[i], `${where}[${i}]`))
      return out
    }
    case 'int64':
    case 'uint64': {
      const out = dtype === 'int64' ? new BigInt64Array(n) : new BigUint64Array(n)
      for (let i = 0; i < n; i++) out[i] = jsonToBigInt(values[i], `${where}[${i}]`, dtype === 'uint64')
      return out
    }
    case 'bool': {
      const out = new Uint8Array(n)
      for (let i = 0; i < n; i++) {
        const v = values[i]
        if (v === true || v === 1) out[i] = 1
        else if (v === false || v === 0) out[i] = 0
        else throw new TensorValueError(`${where}[${i}]: expected true or false, got ${describe(v)}`, where)
      }
      return out
    }
    case 'string': {
      const out = new Array<string>(n)
      for (let i = 0; i < n; i++) {
        const v = values[i]
        if (typeof v !== 'string')
          throw new TensorValueError(`${where}[${i}]: expected a string, got ${describe(v)}`, where)
        out[i] = v
      }
      return out
    }
    default: {
      const Ctor = {
        int8: Int8Array,
        uint8: Uint8Array,
        int16: Int16Array,
        uint16: Uint16Array,
        int32: Int32Array,
        uint32: Uint32Array,
      }[dtype]
      const out = new Ctor(n)
      for (let i = 0; i < n; i++) out[i] = jsonToInt(values[i], `${where}[${i}]`, dtype)
      return out
    }
  }
}

const BYTES_PER: Record<string, number> = {
  float32: 4,
  float64: 8,
  float16: 2,
  int8: 1,
  uint8: 1,
  int16: 2,
  uint16: 2,
  int32: 4,
  uint32: 4,
  int64: 8,
  uint64: 8,
  bool: 1,
}

function typedFromBase64(dtype: Dtype, b64: string): TypedData {
  if (dtype === 'string') throw new TensorValueError('data_b64 cannot hold a string tensor; use data')
  const bytes = Buffer.from(b64, 'base64')
  const size = BYTES_PER[dtype]
  if (bytes.length % size !== 0)
    throw new TensorValueError(`data_b64 has ${bytes.length} bytes, not a multiple of ${size} for ${dtype}`)
  const copy = new Uint8Array(bytes).buffer // aligned copy
  const Ctor = {
    float32: Float32Array,
    float64: Float64Array,
    float16: Uint16Array,
    int8: Int8Array,
    uint8: Uint8Array,
    int16: Int16Array,
    uint16: Uint16Array,
    int32: Int32Array,
    uint32: Uint32Array,
    int64: BigInt64Array,
    uint64: BigUint64Array,
    bool: Uint8Array,
  }[dtype]
  return new Ctor(copy)
}

export function makeTensor(dtype: Dtype, data: TypedData, shape: readonly number[]): OrtTensor {
  return new ort.Tensor(dtype, data, shape)
}

export function tensorFromJson(json: TensorJson, where = 'tensor'): OrtTensor {
  if (!isSupportedDtype(json.dtype))
    throw new TensorValueError(
      `${where}.dtype: ${String(json.dtype)} is not one of ${SUPPORTED_DTYPES.join(', ')}`,
      `${where}.dtype`,
    )
  if (!Array.isArray(json.shape) || json.shape.some((d) => !Number.isInteger(d) || d < 0))
    throw new TensorValueError(`${where}.shape: must be an array of non-negative integers`, `${where}.shape`)
  const data =
    json.data_b64 === undefined
      ? typedFromJson(json.dtype, json.data ?? [], `${where}.data`)
      : typedFromBase64(json.dtype, json.data_b64)
  const expected = elementCount(json.shape)
  if (data.length !== expected)
    throw new TensorValueError(
      `${where}: shape [${json.shape.join(',')}] needs ${expected} values, got ${data.length}`,
      `${where}.data`,
    )
  return makeTensor(json.dtype, data, json.shape)
}

// ---------- read ORT tensors ----------

/** The one JSON rule for a 64-bit integer: a number when exact, else a string of its digits. */
export function bigintToJson(value: bigint): number | string {
  return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER)
    ? Number(value)
    : value.toString()
}

/** A JSON.stringify replacer for values that may hold BigInts (predictions, log entries): `bigintToJson`. */
export function bigintReplacer(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? bigintToJson(value) : value
}

/** A plain-JSON copy of a tensor's values: int64 as numbers when exact, else strings; float16 decoded; NaN as "NaN". */
export function valuesToJson(dtype: string, data: unknown): JsonScalar[] {
  const out: JsonScalar[] = []
  if (dtype === 'string') return [...(data as string[])]
  if (dtype === 'int64' || dtype === 'uint64') {
    for (const v of data as BigInt64Array) out.push(bigintToJson(v))
    return out
  }
  if (dtype === 'bool') {
    for (const v of data as Uint8Array) out.push(v !== 0)
    return out
  }
  if (dtype === 'float16') {
    for (const v of data as Uint16Array) out.push(floatToJson(fromHalf(v)))
    return out
  }
  if (dtype === 'float32' || dtype === 'float64') {
    for (const v of data as Float32Array) out.push(floatToJson(v))
    return out
  }
  for (const v of data as Int32Array) out.push(v)
  return out
}

export function tensorToJson(tensor: OrtTensor): TensorJson {
  return {dtype: tensor.type as Dtype, shape: [...tensor.dims], data: valuesToJson(tensor.type, tensor.data)}
}

/** Numbers as JS numbers for post-processing: int64 become Number (may round past 2^53), float16 decoded. */
export function tensorNumbers(tensor: OrtTensor): number[] {
  const {type, data} = tensor
  if (type === 'string') throw new TensorValueError('a string tensor has no numeric values')
  if (type === 'float16') return Array.from(data as Uint16Array, fromHalf)
  if (type === 'int64' || type === 'uint64') return Array.from(data as BigInt64Array, Number)
  return Array.from(data as Float32Array)
}
