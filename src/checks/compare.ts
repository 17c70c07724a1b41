// Compares what a model gave with what was expected: floats within tolerance, labels and strings exactly.
import {type TensorJson, fromHalf, jsonToFloat, typedFromJson} from '../model/tensor.js'
import type {Tolerance} from './golden.types.js'

export const DEFAULT_TOLERANCE: Required<Tolerance> = {rtol: 1e-4, atol: 1e-5}
export const FLOAT16_TOLERANCE: Required<Tolerance> = {rtol: 1e-3, atol: 1e-3}

export interface Mismatch {
  /** Where, e.g. `outputs.probability[3]` or `predictions[0].label`. */
  field: string
  expected: unknown
  actual: unknown
  message: string
}

export function numbersClose(expected: number, actual: number, tol: Required<Tolerance>): boolean {
  if (Number.isNaN(expected) || Number.isNaN(actual)) return Number.isNaN(expected) && Number.isNaN(actual)
  if (!Number.isFinite(expected) || !Number.isFinite(actual)) return expected === actual
  return Math.abs(actual - expected) <= tol.atol + tol.rtol * Math.abs(expected)
}

const FLOAT_DTYPES = new Set(['float16', 'float32', 'float64'])

/** At most `limit` mismatches are listed; a tensor with a million wrong values reports the first few. */
export function compareTensor(
  field: string,
  expected: TensorJson,
  actual: TensorJson,
  tolerance: Tolerance = {},
  limit = 5,
): Mismatch[] {
  const out: Mismatch[] = []
  if (expected.dtype !== actual.dtype)
    return [
      {
        field,
        expected: expected.dtype,
        actual: actual.dtype,
        message: `dtype ${actual.dtype}, expected ${expected.dtype}`,
      },
    ]
  if (expected.shape.join(',') !== actual.shape.join(','))
    return [
      {
        field,
        expected: expected.shape,
        actual: actual.shape,
        message: `shape [${actual.shape.join(',')}], expected [${expected.shape.join(',')}]`,
      },
    ]
  const base = expected.dtype === 'float16' ? FLOAT16_TOLERANCE : DEFAULT_TOLERANCE
  const tol = {rtol: tolerance.rtol ?? base.rtol, atol: tolerance.atol ?? base.atol}
  const e = valuesOf(expected)
  const a = valuesOf(actual)
  for (let i = 0; i < e.length && out.length < limit; i++) {
    const ok = FLOAT_DTYPES.has(expected.dtype) ? numbersClose(e[i] as number, a[i] as number, tol) : e[i] === a[i]
    if (!ok)
      out.push({
        field: `${field}[${i}]`,
        expected: e[i],
        actual: a[i],
        message: FLOAT_DTYPES.has(expected.dtype)
          ? `|${String(a[i])} - ${String(e[i])}| exceeds atol ${tol.atol} + rtol ${tol.rtol}`
          : `${String(a[i])} is not ${String(e[i])}`,
      })
  }
  return out
}

function valuesOf(t: TensorJson): (number | string | bigint | boolean | null)[] {
  if (t.data_b64 !== undefined) return decodeB64(t.dtype, Buffer.from(t.data_b64, 'base64'))
  const data = t.data ?? []
  if (FLOAT_DTYPES.has(t.dtype)) return data.map((v, i) => jsonToFloat(v, `data[${i}]`))
  if (t.dtype === 'int64' || t.dtype === 'uint64') return Array.from(typedFromJson(t.dtype, data) as BigInt64Array)
  return [...data]
}

function decodeB64(dtype: string, bytes: Buffer): (number | bigint)[] {
  const buffer = new Uint8Array(bytes).buffer
  switch (dtype) {
    case 'float32':
      return Array.from(new Float32Array(buffer))
    case 'float64':
      return Array.from(new Float64Array(buffer))
    case 'float16':
      return Array.from(new Uint16Array(buffer), fromHalf)
    case 'int64':
      return Array.from(new BigInt64Array(buffer))
    case 'uint64':
      return Array.from(new BigUint64Array(buffer))
    case 'int32':
      return Array.from(new Int32Array(buffer))
    case 'uint32':
      return Array.from(new Uint32Array(buffer))
    case 'int16':
      return Array.from(new Int16Array(buffer))
    case 'uint16':
      return Array.from(new Uint16Array(buffer))
    case 'int8':
      return Array.from(new Int8Array(buffer))
    default:
      return Array.from(new Uint8Array(buffer))
  }
}

/** Deep comparison of predictions (plain JSON): numbers within tolerance, everything else exactly. */
export function compareJson(
  field: string,
  expected: unknown,
  actual: unknown,
  tolerance: Tolerance = {},
  out: Mismatch[] = [],
  limit = 5,
): Mismatch[] {
  if (out.length >= limit) return out
  const tol = {rtol: tolerance.rtol ?? DEFAULT_TOLERANCE.rtol, atol: tolerance.atol ?? DEFAULT_TOLERANCE.atol}
  const asNumber = (v: unknown) =>
    typeof v === 'number'
      ? v
      : v === 'NaN'
        ? Number.NaN
        : v === 'Infinity'
          ? Infinity
          : v === '-Infinity'
            ? -Infinity
            : undefined
  const en = asNumber(expected)
  const an = asNumber(actual)
  if (en !== undefined && an !== undefined) {
    if (!numbersClose(en, an, tol))
      out.push({
        field,
        expected,
        actual,
        message: `|${String(actual)} - ${String(expected)}| exceeds atol ${tol.atol} + rtol ${tol.rtol}`,
      })
    return out
  }
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual) || actual.length !== expected.length) {
      out.push({
        field,
        expected,
        actual,
        message: Array.isArray(actual) ? `${actual.length} items, expected ${expected.length}` : 'expected an array',
      })
      return out
    }
    expected.forEach((e, i) => compareJson(`${field}[${i}]`, e, actual[i], tolerance, out, limit))
    return out
  }
  if (expected !== null && typeof expected === 'object') {
    if (actual === null || typeof actual !== 'object' || Array.isArray(actual)) {
      out.push({field, expected, actual, message: 'expected an object'})
      return out
    }
    for (const key of Object.keys(expected))
      compareJson(
        field ? `${field}.${key}` : key,
        (expected as Record<string, unknown>)[key],
        (actual as Record<string, unknown>)[key],
        tolerance,
        out,
        limit,
      )
    return out
  }
  if (expected !== actual)
    out.push({field, expected, actual, message: `${JSON.stringify(actual)} is not ${JSON.stringify(expected)}`})
  return out
}
