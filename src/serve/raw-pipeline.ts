// The pipeline of a bare model (no `pipeline:` section): a record holds one row of each input, a prediction one row of each output.
import {ExitCode, MlopsError} from '../errors.js'
import {type ModelSignature, type TensorSpec, isDynamic, supportsBatching} from '../model/signature.js'
import {
  type Dtype,
  type OrtTensor,
  TensorValueError,
  type TypedData,
  makeTensor,
  typedFromJson,
  valuesToJson,
} from '../model/tensor.js'
import type {InputRecord, Pipeline, Prediction, RecordIssue} from '../pipeline/types.js'

export class RecordValueError extends MlopsError {
  constructor(
    readonly index: number,
    readonly field: string,
    message: string,
  ) {
    super('RECORD_INVALID', `instances[${index}].${field}: ${message}`, {
      exitCode: ExitCode.usage,
      details: {index, field},
    })
  }
}

const NUMERIC = new Set<Dtype>([
  'float16',
  'float32',
  'float64',
  'int8',
  'uint8',
  'int16',
  'uint16',
  'int32',
  'uint32',
  'int64',
  'uint64',
])

/**
 * A row is the input without its first dim when the model batches, or the whole input when it cannot (fixed batch of 1,
 * scalar inputs). A row of one value may be written as that value. Numeric strings (CSV cells) become numbers; null is NaN.
 */
export function rawPipeline(signature: ModelSignature): Pipeline {
  const batchable = supportsBatching(signature)
  // Without a batch dim (fixed batch of 1, scalar inputs) a row is the whole input.
  const rowShapes = new Map(signature.inputs.map((spec) => [spec.name, batchable ? spec.shape.slice(1) : spec.shape]))
  const outputNames = signature.outputs.filter((o) => o.isTensor).map((o) => o.name)

  const requestSchema = {
    type: 'object',
    additionalProperties: false,
    required: signature.inputs.map((i) => i.name),
    properties: Object.fromEntries(
      signature.inputs.map((spec) => [spec.name, valueSchema(spec, rowShapes.get(spec.name)!)]),
    ),
  }

  function validate(records: readonly InputRecord[]): RecordIssue[] {
    const issues: RecordIssue[] = []
    records.forEach((record, index) => {
      for (const spec of signature.inputs)
        if (!(spec.name in record)) issues.push({index, field: spec.name, message: 'is required'})
      for (const key of Object.keys(record))
        if (!rowShapes.has(key))
          issues.push({
            index,
            field: key,
            message: `unknown input; the model takes ${[...rowShapes.keys()].join(', ')}`,
          })
    })
    return issues
  }

  async function preprocess(records: readonly InputRecord[]): Promise<Record<string, OrtTensor>> {
    const feeds: Record<string, OrtTensor> = {}
    for (const spec of signature.inputs) {
      const rowShape = rowShapes.get(spec.name)!
      const values: unknown[] = []
      let shape: number[] | undefined
      records.forEach((record, index) => {
        if (!(spec.name in record)) throw new RecordValueError(index, spec.name, 'is required')
        const row = readRow(record[spec.name], rowShape, spec, index)
        if (shape && row.shape.join() !== shape.join())
          throw new RecordValueError(
            index,
            spec.name,
            `has shape [${row.shape}] but earlier records have [${shape}]; rows of one request must have the same shape`,
          )
        shape = row.shape
        for (const v of row.values) values.push(v)
      })
      const dims = batchable ? [records.length, ...shape!] : shape!
      feeds[spec.name] = makeTensor(spec.dtype, typed(spec, values, records.length), dims)
    }
    return feeds
  }

  async function postprocess(
    outputs: Record<string, OrtTensor>,
    records: readonly InputRecord[],
  ): Promise<Prediction[]> {
    const predictions: Prediction[] = records.map(() => ({}))
    for (const name of outputNames) {
      const tensor = outputs[name]
      if (!tensor) continue
      const values = valuesToJson(tensor.type, tensor.data)
      const perRow = tensor.dims.length > 0 && tensor.dims[0] === records.length
      const rowShape = perRow ? tensor.dims.slice(1) : [...tensor.dims]
      const size = rowShape.reduce((a, b) => a * b, 1)
      predictions.forEach((prediction, i) => {
        const row = perRow ? values.slice(i * size, (i + 1) * size) : values
        prediction[name] = size === 1 ? row[0] : nest(row, rowShape)
      })
    }
    return predictions
  }

  return {requestSchema, batchable, validate, preprocess, postprocess}
}

/** Converts the values, naming the record (not the flat element) when one does not fit the dtype. */
function typed(spec: TensorSpec, values: unknown[], records: number): TypedData {
  try {
    return typedFromJson(spec.dtype, values, spec.name)
  } catch (error) {
    if (!(error instanceof TensorValueError)) throw error
    const element = Number(/\[(\d+)\]/.exec(error.message)?.[1] ?? 0)
    const index = Math.floor(element / Math.max(1, values.length / records))
    throw new RecordValueError(index, spec.name, error.message.replace(/^[^:]*: /, ''))
  }
}

function leafSchema(dtype: Dtype): Record<string, unknown> {
  if (dtype === 'string') return {type: 'string'}
  if (dtype === 'bool') return {type: ['boolean', 'integer', 'string']}
  // Numbers may arrive as numeric strings (CSV cells) and missing as null: preprocess reads them.
  return {type: ['number', 'string', 'null']}
}

function valueSchema(spec: TensorSpec, rowShape: TensorSpec['shape']): Record<string, unknown> {
  const leaf = leafSchema(spec.dtype)
  const single = rowShape.every((d) => d === 1)
  if (rowShape.length === 0) return leaf
  return single ? {anyOf: [leaf, {type: 'array'}]} : {type: 'array'}
}

function readRow(
  value: unknown,
  rowShape: TensorSpec['shape'],
  spec: TensorSpec,
  index: number,
): {values: unknown[]; shape: number[]} {
  const fixedCount = rowShape.every((d) => !isDynamic(d))
    ? rowShape.reduce<number>((a, b) => a * (b as number), 1)
    : undefined
  if (!Array.isArray(value)) {
    if (fixedCount !== 1)
      throw new RecordValueError(
        index,
        spec.name,
        `expected an array of shape ${shapeText(rowShape)}, got ${typeof value === 'object' ? JSON.stringify(value)?.slice(0, 40) : String(value)}`,
      )
    return {values: [coerce(value, spec, index)], shape: rowShape.map(() => 1)}
  }
  const shape: number[] = []
  let level: unknown = value
  while (Array.isArray(level)) {
    shape.push(level.length)
    level = level[0]
  }
  const flat: unknown[] = (value as unknown[]).flat(shape.length)
  const count = shape.reduce((a, b) => a * b, 1)
  if (flat.length !== count || flat.some((v) => Array.isArray(v)))
    throw new RecordValueError(index, spec.name, `is a ragged array: every nested array must have the same length`)
  // A one-value row may be given as [v] or [[v]] whatever its rank.
  if (fixedCount === 1 && count === 1) return {values: [coerce(flat[0], spec, index)], shape: rowShape.map(() => 1)}
  if (shape.length !== rowShape.length)
    throw new RecordValueError(
      index,
      spec.name,
      `has ${shape.length} nested levels (shape [${shape}]) but the model needs ${shapeText(rowShape)}`,
    )
  rowShape.forEach((dim, i) => {
    if (!isDynamic(dim) && shape[i] !== dim)
      throw new RecordValueError(index, spec.name, `has shape [${shape}] but the model needs ${shapeText(rowShape)}`)
  })
  return {values: flat.map((v) => coerce(v, spec, index)), shape}
}

function coerce(value: unknown, spec: TensorSpec, index: number): unknown {
  if (typeof value === 'string' && NUMERIC.has(spec.dtype)) {
    const trimmed = value.trim()
    if (/^(NaN|nan|[+-]?Infinity|[+-]?inf)$/.test(trimmed)) return trimmed
    if (trimmed === '') return spec.dtype.startsWith('float') ? null : fail(index, spec, value)
    if (/^-?\d+$/.test(trimmed) && (spec.dtype === 'int64' || spec.dtype === 'uint64')) return BigInt(trimmed)
    const n = Number(trimmed)
    return Number.isNaN(n) ? fail(index, spec, value) : n
  }
  if (typeof value === 'bigint' && spec.dtype !== 'int64' && spec.dtype !== 'uint64') return Number(value)
  if (value === null && !spec.dtype.startsWith('float'))
    throw new RecordValueError(index, spec.name, `is null, but ${spec.dtype} has no missing value`)
  return value
}

function fail(index: number, spec: TensorSpec, value: string): never {
  throw new RecordValueError(index, spec.name, `"${value.slice(0, 40)}" is not a number (${spec.dtype})`)
}

function shapeText(shape: TensorSpec['shape']): string {
  return `[${shape.map((d) => (isDynamic(d) ? '?' : d)).join(',')}]`
}

function nest(values: unknown[], shape: number[]): unknown {
  if (shape.length <= 1) return values
  const [, ...rest] = shape
  const size = rest.reduce((a, b) => a * b, 1)
  const out: unknown[] = []
  for (let i = 0; i < values.length; i += size) out.push(nest(values.slice(i, i + size), rest))
  return out
}
