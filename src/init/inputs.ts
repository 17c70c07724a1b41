// Model inputs for the seeded golden cases: sizes for dynamic dimensions, seeded random tensors, and real inputs from --sample.
import {readFile} from 'node:fs/promises'

import {uniformFloat64} from 'pure-rand/distribution/uniformFloat64'
import {uniformInt} from 'pure-rand/distribution/uniformInt'
import {xoroshiro128plus} from 'pure-rand/generator/xoroshiro128plus'

import {UsageError, errorMessage, isMlopsError} from '../errors.js'
import {type ModelSignature, type TensorSpec, checkFeeds, formatShape, isDynamic} from '../model/signature.js'
import {
  type Dtype,
  type OrtTensor,
  type TensorJson,
  type TypedData,
  elementCount,
  makeTensor,
  tensorFromJson,
  toHalf,
} from '../model/tensor.js'
import type {TemplateKind} from './suggest.js'

const MAX_GOLDEN_VALUES = 4_000_000
const SHAPE_HINT = 'Pass one --shape per input with every dimension, batch included: --shape x=1,3,48,192'

/** `--shape input=1,3,48,192` flags to sizes by input name. */
export function parseShapeFlags(values: readonly string[]): Record<string, number[]> {
  const shapes: Record<string, number[]> = {}
  for (const value of values) {
    const match = /^(.+?)=(\d+(?:,\d+)*)?$/.exec(value.trim())
    if (!match)
      throw new UsageError('INIT_SHAPE_INVALID', `--shape ${value}: expected INPUT=D0,D1,… (e.g. x=1,3,48,192)`, {
        hint: SHAPE_HINT,
      })
    shapes[match[1]] = match[2] ? match[2].split(',').map(Number) : []
  }
  return shapes
}

/** Why a dynamic dimension got the size it did: image sides default to 224, anything else to 64. */
function defaultSize(kind: TemplateKind, input: TensorSpec, axis: number): number {
  if (axis === 0) return 1
  if (kind === 'image' && input.shape.length === 4) return axis === 1 ? 3 : 224
  return 64
}

export interface ResolvedShapes {
  shapes: Record<string, number[]>
  /** Inputs whose dynamic dimensions got a default size (not from --shape). */
  defaulted: string[]
}

/**
 * A concrete shape per input: --shape where given, batch 1, and a default for other dynamic dims.
 * A named dynamic dim gets one size across inputs, as the model expects (e.g. a shared sequence length).
 */
export function resolveShapes(
  signature: ModelSignature,
  kind: TemplateKind,
  overrides: Record<string, number[]> = {},
): ResolvedShapes {
  const names = new Set(signature.inputs.map((i) => i.name))
  for (const name of Object.keys(overrides)) {
    if (!names.has(name))
      throw new UsageError(
        'INIT_SHAPE_INVALID',
        `--shape ${name}=…: the model has no input "${name}"; its inputs are ${[...names].join(', ')}`,
        {hint: SHAPE_HINT},
      )
  }
  const named = new Map<string, number>()
  for (const input of signature.inputs) {
    const override = overrides[input.name]
    if (!override) continue
    if (override.length !== input.shape.length)
      throw new UsageError(
        'INIT_SHAPE_INVALID',
        `--shape ${input.name}=${override.join(',')}: the input has rank ${input.shape.length} ${formatShape(input.shape)}, not ${override.length}`,
        {hint: SHAPE_HINT},
      )
    // Golden cases are JSON lines: a million values is already a file of megabytes per case.
    const values = override.reduce((a, b) => a * b, 1)
    if (values > MAX_GOLDEN_VALUES)
      throw new UsageError(
        'INIT_SHAPE_TOO_LARGE',
        `--shape ${input.name}=${override.join(',')}: ${values.toLocaleString('en-US')} values per case, more than golden cases can hold (${MAX_GOLDEN_VALUES.toLocaleString('en-US')})`,
        {
          hint: 'Give smaller sizes for the dynamic dimensions (the golden cases only need to run the model), or pass real inputs with --sample.',
        },
      )
    input.shape.forEach((dim, axis) => {
      if (!isDynamic(dim) && dim !== override[axis])
        throw new UsageError(
          'INIT_SHAPE_INVALID',
          `--shape ${input.name}=${override.join(',')}: dimension ${axis} of ${formatShape(input.shape)} is fixed at ${dim}`,
          {hint: SHAPE_HINT},
        )
      if (typeof dim === 'string' && dim) named.set(dim, override[axis])
    })
  }
  const shapes: Record<string, number[]> = {}
  const defaulted: string[] = []
  for (const input of signature.inputs) {
    if (overrides[input.name]) {
      shapes[input.name] = overrides[input.name]
      continue
    }
    let guessed = false
    shapes[input.name] = input.shape.map((dim, axis) => {
      if (!isDynamic(dim)) return dim as number
      if (typeof dim === 'string' && dim && named.has(dim)) return named.get(dim) as number
      const size = defaultSize(kind, input, axis)
      if (axis > 0) guessed = true
      if (typeof dim === 'string' && dim) named.set(dim, size)
      return size
    })
    if (guessed) defaulted.push(input.name)
  }
  return {shapes, defaulted}
}

// Small strings and integers: most likely to be a known category or a valid index for the model.
const WORDS = ['a', 'b', 'c', '0', '1', '2']

function randomData(
  dtype: Dtype,
  n: number,
  next: () => number,
  int: (from: number, to: number) => number,
  intMax: number,
): TypedData {
  switch (dtype) {
    case 'float32':
      return Float32Array.from({length: n}, next)
    case 'float64':
      return Float64Array.from({length: n}, next)
    case 'float16':
      return Uint16Array.from({length: n}, () => toHalf(next()))
    case 'string':
      return Array.from({length: n}, () => WORDS[int(0, WORDS.length - 1)])
    case 'bool':
      return Uint8Array.from({length: n}, () => int(0, 1))
    case 'int64':
      return BigInt64Array.from({length: n}, () => BigInt(int(0, intMax)))
    case 'uint64':
      return BigUint64Array.from({length: n}, () => BigInt(int(0, intMax)))
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
      for (let i = 0; i < n; i++) out[i] = int(0, intMax)
      return out
    }
  }
}

/**
 * Seeded inputs for every model input: floats uniform in [0, 1), integers 0–intMax (fewer for index inputs of a small
 * table), short strings. The same seed gives the same bytes.
 */
export function randomFeeds(
  signature: ModelSignature,
  shapes: Record<string, number[]>,
  seed: number,
  intMax = 9,
): Record<string, OrtTensor> {
  const rng = xoroshiro128plus(seed)
  const next = () => uniformFloat64(rng)
  const int = (from: number, to: number) => uniformInt(rng, from, to)
  const feeds: Record<string, OrtTensor> = {}
  for (const input of signature.inputs) {
    const shape = shapes[input.name]
    feeds[input.name] = makeTensor(input.dtype, randomData(input.dtype, elementCount(shape), next, int, intMax), shape)
  }
  return feeds
}

export interface Sample {
  name: string
  feeds: Record<string, OrtTensor>
}

const SAMPLE_HINT =
  'Pass --sample a JSON file {"samples": [{"name", "inputs": {"INPUT": {"dtype", "shape", "data"}}}]} or a JSONL file of {"name"?, "inputs"} lines.'

function sampleError(where: string, message: string): UsageError {
  return new UsageError('INIT_SAMPLE_INVALID', `${where}: ${message}`, {hint: SAMPLE_HINT})
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

/** The entries of a sample file, each with where it came from (for messages). */
function sampleEntries(text: string, path: string): {where: string; value: unknown}[] {
  let whole: unknown
  try {
    whole = JSON.parse(text)
  } catch {
    // Not one JSON document: read it as JSONL below.
  }
  if (isObject(whole) && Array.isArray(whole.samples))
    return (whole.samples as unknown[]).map((value, i) => ({where: `${path}: samples[${i}]`, value}))
  if (isObject(whole)) return [{where: path, value: whole}]
  const entries: {where: string; value: unknown}[] = []
  text.split('\n').forEach((line, i) => {
    if (!line.trim()) return
    const where = `${path}:${i + 1}`
    try {
      entries.push({where, value: JSON.parse(line)})
    } catch (error) {
      throw sampleError(where, `not valid JSON (${errorMessage(error)})`)
    }
  })
  return entries
}

/** Real inputs from --sample, checked against the signature so a bad sample names its input and the fix. */
export async function readSamples(path: string, signature: ModelSignature): Promise<Sample[]> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT')
      throw new UsageError('INIT_SAMPLE_NOT_FOUND', `The sample file ${path} does not exist`, {hint: SAMPLE_HINT})
    throw error
  }
  const entries = sampleEntries(text, path)
  if (entries.length === 0) throw sampleError(path, 'holds no samples')
  return entries.map(({where, value}, i) => {
    if (!isObject(value) || !isObject(value.inputs))
      throw sampleError(where, 'needs "inputs": an object mapping each model input to a tensor {dtype, shape, data}')
    const feeds: Record<string, OrtTensor> = {}
    for (const [name, tensor] of Object.entries(value.inputs)) {
      try {
        feeds[name] = tensorFromJson(tensor as TensorJson, `inputs.${name}`)
      } catch (error) {
        throw sampleError(where, isMlopsError(error) ? error.message : errorMessage(error))
      }
    }
    const issues = checkFeeds(signature, feeds)
    if (issues.length > 0)
      throw sampleError(where, issues.map((issue) => `inputs.${issue.field}: ${issue.message}`).join('; '))
    return {name: typeof value.name === 'string' && value.name ? value.name : `sample ${i + 1}`, feeds}
  })
}
