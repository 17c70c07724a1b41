// Records to one model input: table features concatenated into [N,k] (or [N]) of the input's dtype, or one tensor feature stacked along the batch.
import {closest} from 'fastest-levenshtein'

import {type TensorSpec, formatShape, isDynamic} from '../model/signature.js'
import {
  type Dtype,
  type OrtTensor,
  type TensorJson,
  type TypedData,
  makeTensor,
  tensorFromJson,
  toHalf,
  typedFromJson,
} from '../model/tensor.js'
import {describeValue} from './coerce.js'
import {type CompiledFeature, type NumberSink, type TextSink, compileFeature} from './features.js'
import {FLOAT_DTYPES, isFixed, shapeText, tensorLayout} from './layout.js'
import type {FeatureSpec} from './spec.js'
import type {InputRecord, RecordIssue} from './types.js'

export interface CompiledInput {
  name: string
  /** The tensor for these records, or undefined when some record had a problem (added to `issues`). */
  build(records: readonly InputRecord[], issues: RecordIssue[]): OrtTensor | undefined
}

export function compileInput(input: TensorSpec, features: FeatureSpec[]): CompiledInput {
  if (features.length === 1 && features[0].type === 'tensor') return compileTensorInput(input, features[0])
  return input.dtype === 'string' ? compileTextInput(input, features) : compileNumberInput(input, features)
}

/** An input with a fixed first dim takes exactly that many records per run. */
function batchProblem(input: TensorSpec, n: number, field: string): RecordIssue | undefined {
  const first = input.shape[0]
  if (input.shape.length === 0)
    return n === 1
      ? undefined
      : {index: 1, field, message: `the model takes one record per run (input "${input.name}" is a scalar)`}
  if (isDynamic(first) || first === n) return undefined
  return {
    index: Math.min(n, first as number),
    field,
    message: `the model takes ${first} record${first === 1 ? '' : 's'} per run (input "${input.name}" is ${formatShape(input.shape)}); got ${n}`,
  }
}

function compileNumberInput(input: TensorSpec, features: FeatureSpec[]): CompiledInput {
  const nanAllowed = FLOAT_DTYPES.has(input.dtype)
  const compiled = features.map((f) => compileFeature(f, nanAllowed)) as Extract<CompiledFeature, {kind: 'numbers'}>[]
  const k = compiled.reduce((sum, c) => sum + c.width, 0)
  const rank1 = input.shape.length === 1
  const dtype = input.dtype
  // float32/float64 are written in place; other dtypes go through a float64 row buffer and are converted once.
  const direct = dtype === 'float32' || dtype === 'float64'
  return {
    name: input.name,
    build(records, issues) {
      const n = records.length
      const before = issues.length
      // A batch-size problem is reported with, not instead of, the records' own problems.
      const problem = batchProblem(input, n, compiled[0]?.name ?? '')
      if (problem) issues.push(problem)
      const out: NumberSink & {length: number} = dtype === 'float32' ? new Float32Array(n * k) : new Float64Array(n * k)
      for (let i = 0; i < n; i++) {
        const record = records[i]
        let offset = i * k
        for (const c of compiled) {
          const message = c.write(record[c.name], out, offset)
          if (message !== undefined) issues.push({index: i, field: c.name, message})
          offset += c.width
        }
      }
      if (issues.length > before) return undefined
      return makeTensor(
        dtype,
        direct ? (out as Float32Array) : convert(dtype, out as Float64Array),
        rank1 ? [n] : [n, k],
      )
    },
  }
}

function convert(dtype: Dtype, values: Float64Array): TypedData {
  switch (dtype) {
    case 'float16':
      return Uint16Array.from(values, toHalf)
    case 'int64':
      return BigInt64Array.from(values, (v) => BigInt(v))
    case 'uint64':
      return BigUint64Array.from(values, (v) => BigInt(v))
    case 'bool':
      return Uint8Array.from(values)
    default:
      return typedFromJson(dtype, Array.from(values))
  }
}

function compileTextInput(input: TensorSpec, features: FeatureSpec[]): CompiledInput {
  const compiled = features.map((f) => compileFeature(f, true)) as Extract<CompiledFeature, {kind: 'text'}>[]
  const k = compiled.length
  const rank1 = input.shape.length === 1
  return {
    name: input.name,
    build(records, issues) {
      const n = records.length
      const before = issues.length
      const problem = batchProblem(input, n, compiled[0]?.name ?? '')
      if (problem) issues.push(problem)
      const out: TextSink & string[] = new Array<string>(n * k)
      for (let i = 0; i < n; i++) {
        const record = records[i]
        for (let j = 0; j < k; j++) {
          const message = compiled[j].write(record[compiled[j].name], out, i * k + j)
          if (message !== undefined) issues.push({index: i, field: compiled[j].name, message})
        }
      }
      if (issues.length > before) return undefined
      return makeTensor('string', out, rank1 ? [n] : [n, k])
    },
  }
}

// ---------- tensor features ----------

function isTensorJson(value: unknown): value is TensorJson {
  return value !== null && typeof value === 'object' && !Array.isArray(value) && 'shape' in value && 'dtype' in value
}

/** Flattens a nested array of the given rank, recording its dims; returns a problem for ragged or mis-nested arrays. */
function flatten(value: unknown, rank: number, depth: number, dims: number[], out: unknown[]): string | undefined {
  if (depth === rank) {
    if (Array.isArray(value)) return `has more than ${rank} dimension${rank === 1 ? '' : 's'}`
    out.push(value)
    return undefined
  }
  if (!Array.isArray(value))
    return depth === 0
      ? `expected a nested array of ${rank} dimension${rank === 1 ? '' : 's'} (or {dtype, shape, data}), got ${describeValue(value)}`
      : `has fewer than ${rank} dimensions (found ${describeValue(value)} at depth ${depth})`
  if (dims[depth] === -1) dims[depth] = value.length
  else if (dims[depth] !== value.length)
    return `is ragged: arrays of length ${dims[depth]} and ${value.length} at depth ${depth}`
  for (const item of value) {
    const problem = flatten(item, rank, depth + 1, dims, out)
    if (problem) return problem
  }
  return undefined
}

function compileTensorInput(input: TensorSpec, feature: FeatureSpec): CompiledInput {
  const {mode} = tensorLayout(input)
  const expected = feature.shape ?? tensorLayout(input).shape
  const rank = expected.length
  const dtype = input.dtype
  const name = feature.name

  /** One record's typed values and dims, or a problem. */
  const readRecord = (value: unknown): {data: TypedData; dims: number[]} | string => {
    let data: TypedData
    let dims: number[]
    try {
      if (isTensorJson(value)) {
        if (value.dtype !== dtype) return `dtype ${String(value.dtype)} does not match the model's ${dtype}`
        const tensor = tensorFromJson(value, name)
        dims = [...tensor.dims]
        // A whole-input tensor ([1, …]) pasted from a raw-feeds file is accepted for a single record.
        if (dims.length === rank + 1 && dims[0] === 1) dims = dims.slice(1)
        data = tensor.data
      } else {
        if (value === undefined || value === null) return 'is required'
        dims = new Array<number>(rank).fill(-1)
        const values: unknown[] = []
        const problem = flatten(value, rank, 0, dims, values)
        if (problem) return problem
        data = typedFromJson(dtype, values, name)
      }
    } catch (error) {
      return (error as Error).message
    }
    if (dims.length !== rank || dims.some((d, i) => isFixed(expected[i]) && d !== expected[i]))
      return `has shape [${dims.join(',')}] but the model needs ${shapeText(expected)}`
    return {data, dims}
  }

  return {
    name: input.name,
    build(records, issues) {
      const n = records.length
      const before = issues.length
      if (mode !== 'stack' && n > 1)
        issues.push({
          index: 1,
          field: name,
          message: `the model takes one record per run (input "${input.name}" is ${formatShape(input.shape)})`,
        })
      if (n === 0) return undefined
      const parts: TypedData[] = []
      let dims: number[] | undefined
      for (let i = 0; i < n; i++) {
        const read = readRecord(records[i][name])
        if (typeof read === 'string') {
          issues.push({index: i, field: name, message: read})
          continue
        }
        if (dims && read.dims.some((d, j) => d !== dims![j])) {
          issues.push({
            index: i,
            field: name,
            message: `has shape [${read.dims.join(',')}] but record 0 has [${dims.join(',')}]; records in one batch need the same shape`,
          })
          continue
        }
        dims ??= read.dims
        parts.push(read.data)
      }
      if (issues.length > before || !dims) return undefined
      const data = parts.length === 1 ? parts[0] : concat(parts)
      const shape = mode === 'stack' ? [n, ...dims] : mode === 'single' ? [1, ...dims] : dims
      return makeTensor(dtype, data, shape)
    },
  }
}

function concat(parts: TypedData[]): TypedData {
  if (Array.isArray(parts[0])) return (parts as string[][]).flat()
  const total = parts.reduce((sum, p) => sum + p.length, 0)
  const Ctor = parts[0].constructor as new (length: number) => Exclude<TypedData, string[]>
  const out = new Ctor(total)
  let offset = 0
  for (const p of parts as Exclude<TypedData, string[]>[]) {
    ;(out as Float32Array).set(p as Float32Array, offset)
    offset += p.length
  }
  return out
}

// ---------- record checks ----------

/** Records that are not objects, and fields no feature reads (with the nearest feature name). */
export function checkRecordFields(
  records: readonly InputRecord[],
  known: ReadonlySet<string>,
  issues: RecordIssue[],
): boolean {
  let objects = true
  const names = [...known]
  for (let i = 0; i < records.length; i++) {
    const record = records[i] as unknown
    if (record === null || typeof record !== 'object' || Array.isArray(record)) {
      issues.push({index: i, field: '', message: `expected an object of features, got ${describeValue(record)}`})
      objects = false
      continue
    }
    for (const key in record as InputRecord) {
      if (known.has(key)) continue
      const near = names.length > 0 ? closest(key, names) : undefined
      issues.push({
        index: i,
        field: key,
        message: `unknown field${near ? `; did you mean "${near}"?` : '.'} The features are ${names.join(', ')}`,
      })
    }
  }
  return objects
}
