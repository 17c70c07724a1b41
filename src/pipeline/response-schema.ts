// The JSON Schema of one prediction, derived from pipeline.outputs and the model's outputs, as compilePostprocess shapes it.
import {type Dim, type ModelSignature, type OutputSpec, supportsBatching} from '../model/signature.js'
import type {Dtype} from '../model/tensor.js'
import {FLOAT_DTYPES, INTEGER_DTYPES, isFixed} from './layout.js'
import type {OutputPostprocess} from './spec.js'

type Schema = Record<string, unknown>

/** Floats that JSON cannot hold (NaN, ±Infinity) are sent as strings; 64-bit integers past double precision too. */
function valueSchema(dtype: Dtype | undefined): Schema {
  if (dtype === undefined || FLOAT_DTYPES.has(dtype)) return {type: ['number', 'string']}
  if (dtype === 'int64' || dtype === 'uint64') return {type: ['integer', 'string']}
  if (INTEGER_DTYPES.has(dtype)) return {type: 'integer'}
  if (dtype === 'bool') return {type: 'boolean'}
  return {type: 'string'}
}

function nested(shape: readonly Dim[], leaf: Schema): Schema {
  if (shape.length === 0) return leaf
  const items = nested(shape.slice(1), leaf)
  const dim = shape[0]
  return isFixed(dim) ? {type: 'array', minItems: dim, maxItems: dim, items} : {type: 'array', items}
}

/** One record's part of an output: its shape without the batch dimension when the model batches. */
function rowShape(output: OutputSpec | undefined, batched: boolean): Dim[] | undefined {
  if (!output?.shape) return undefined
  return batched ? output.shape.slice(1) : output.shape
}

/** An output passed through as values: one value when a record has one, else nested arrays. */
function rawSchema(output: OutputSpec | undefined, batched: boolean, dtype?: Dtype): Schema {
  const shape = rowShape(output, batched)
  const leaf = valueSchema(dtype ?? output?.dtype)
  if (!shape) return {}
  // A record of one value may come as that value: unless every dim is known and one is past 1, either form.
  const single = shape.every((d) => d === 1 || !isFixed(d))
  return single ? {anyOf: [leaf, nested(shape, leaf)]} : nested(shape, leaf)
}

function decisionSchema(config: OutputPostprocess): Schema {
  const label = config.labels ? {type: 'string', enum: [...config.labels]} : {type: 'integer', minimum: 0}
  const score = {type: ['number', 'string']}
  const properties: Record<string, Schema> = {label, score}
  if (config.top_k === undefined)
    properties.probabilities = {type: 'object', additionalProperties: score, description: 'Score of every class'}
  else
    properties.top_k = {
      type: 'array',
      maxItems: config.top_k,
      items: {type: 'object', required: ['label', 'score'], properties: {label, score}},
    }
  return {type: 'object', required: ['label', 'score'], properties}
}

function countOf(shape: readonly Dim[] | undefined): number | undefined {
  if (!shape?.every(isFixed)) return undefined
  return (shape as number[]).reduce((a, b) => a * b, 1)
}

/** The schema of one prediction: configured outputs first (their decision or values), then every other tensor output. */
export function predictionSchemaOf(outputs: readonly OutputPostprocess[], signature: ModelSignature): Schema {
  const batched = supportsBatching(signature)
  const byName = new Map(signature.outputs.map((o) => [o.name, o]))
  const properties: Record<string, Schema> = {}
  const required: string[] = []
  const put = (key: string, schema: Schema) => {
    properties[key] = schema
    required.push(key)
  }
  for (const config of outputs) {
    const key = config.as ?? config.output
    const output = byName.get(config.output)
    const decides = config.labels !== undefined || config.threshold !== undefined || config.top_k !== undefined
    if (config.image) {
      put(key, {
        type: 'string',
        contentEncoding: 'base64',
        contentMediaType: 'image/png',
        description: 'A PNG image, in base64',
      })
      continue
    }
    if (!decides) {
      // An activation makes floats of whatever the model gave.
      put(key, rawSchema(output, batched, config.activation && config.activation !== 'none' ? 'float32' : undefined))
      continue
    }
    if (config.threshold !== undefined && countOf(rowShape(output, batched)) === 1) {
      put(key, {type: ['number', 'string']})
      put('label', (decisionSchema(config).properties as Record<string, Schema>).label)
      continue
    }
    const decision = decisionSchema(config)
    if (config.as !== undefined) put(key, decision)
    else for (const [name, schema] of Object.entries(decision.properties as Record<string, Schema>)) put(name, schema)
  }
  const named = new Set(outputs.map((o) => o.output))
  for (const output of signature.outputs)
    if (output.isTensor && !named.has(output.name)) put(output.name, rawSchema(output, batched))
  return {title: 'prediction', type: 'object', properties, required: [...new Set(required)]}
}
