// The JSON Schema of one request record, derived from the features, for ajv at the server boundary.
import type {Dim} from '../model/signature.js'
import type {Dtype} from '../model/tensor.js'
import {isRequired} from './features.js'
import {FLOAT32_MAX, FLOAT_DTYPES, INTEGER_DTYPES, encodeCategories, isFixed} from './layout.js'
import type {FeatureSpec} from './spec.js'

type Schema = Record<string, unknown>

/**
 * JSON has no NaN or Infinity: numbers take "NaN" (missing) and, where the feature allows non-finite values,
 * "Infinity"/"-Infinity" and any magnitude. Numeric strings are refused over HTTP (CSV cells are coerced elsewhere).
 */
function numberSchema(missingAllowed: boolean, nonFinite = false): Schema {
  const bounds = nonFinite ? {} : {minimum: -FLOAT32_MAX, maximum: FLOAT32_MAX}
  const words = [...(missingAllowed ? ['NaN'] : []), ...(nonFinite ? ['-?Infinity'] : [])]
  const types = [...(words.length > 0 ? ['number', 'string'] : ['number']), ...(missingAllowed ? ['null'] : [])]
  return {
    type: types.length === 1 ? types[0] : types,
    ...bounds,
    ...(words.length > 0 ? {pattern: `^(${words.join('|')})$`} : {}),
  }
}

function elementSchema(dtype: Dtype, nonFinite: boolean): Schema {
  if (FLOAT_DTYPES.has(dtype)) return numberSchema(true, nonFinite)
  if (dtype === 'int64' || dtype === 'uint64') return {type: ['integer', 'string'], pattern: '^-?\\d+$'}
  if (INTEGER_DTYPES.has(dtype)) return {type: 'integer'}
  if (dtype === 'bool') return {type: 'boolean'}
  return {type: 'string'}
}

function nestedSchema(shape: readonly Dim[], leaf: Schema, min: readonly number[] = [], depth = 0): Schema {
  if (depth === shape.length) return leaf
  const dim = shape[depth]
  const items = nestedSchema(shape, leaf, min, depth + 1)
  if (isFixed(dim)) return {type: 'array', minItems: dim, maxItems: dim, items}
  return min[depth] > 0 ? {type: 'array', minItems: min[depth], items} : {type: 'array', items}
}

function tensorSchema(f: FeatureSpec): Schema {
  const shape = f.shape ?? []
  const dtype = f.dtype ?? 'float32'
  const asJson = {
    type: 'object',
    additionalProperties: false,
    required: ['dtype', 'shape'],
    properties: {
      dtype: {const: dtype},
      shape: {type: 'array', items: {type: 'integer', minimum: 0}},
      data: {type: 'array'},
      data_b64: {type: 'string'},
    },
  }
  return {anyOf: [nestedSchema(shape, elementSchema(dtype, f.allow_non_finite === true), f.min_shape), asJson]}
}

function featureSchema(f: FeatureSpec, missingAllowed: boolean): Schema {
  const nullable = (type: string) => (missingAllowed ? [type, 'null'] : type)
  switch (f.type) {
    case 'number':
      return numberSchema(missingAllowed, f.allow_non_finite === true)
    case 'integer':
      return {type: nullable('integer')}
    case 'boolean':
      return {type: nullable('boolean')}
    case 'tensor':
      return tensorSchema(f)
    case 'image':
      return {type: 'string', contentEncoding: 'base64', contentMediaType: 'image/*'}
    default: {
      // Only a closed list is an enum: one-hot with unknown: ignore takes any string.
      const strict =
        f.encode !== undefined &&
        ('onehot' in f.encode ? f.encode.onehot.unknown === 'error' : f.encode.index.unknown === 'error')
      const values = f.categories ?? (strict ? encodeCategories(f) : undefined)
      if (!values) return {type: nullable('string')}
      return {type: nullable('string'), enum: missingAllowed ? [...values, null] : [...values]}
    }
  }
}

export function requestSchemaOf(features: readonly FeatureSpec[]): Schema {
  const properties: Record<string, Schema> = {}
  const required: string[] = []
  for (const f of features) {
    // Tensors have no missing value; other features may be left out when not required or when a default or impute fills them.
    const mustHave =
      f.type === 'tensor' || f.type === 'image' || (isRequired(f) && f.default === undefined && f.impute === undefined)
    if (mustHave) required.push(f.name)
    const schema = featureSchema(f, !mustHave)
    properties[f.name] = f.description ? {description: f.description, ...schema} : schema
  }
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    title: 'record',
    type: 'object',
    additionalProperties: false,
    properties,
    required,
  }
}

/** With a preprocess module the record format is the module's business: any object passes the boundary. */
export function openRequestSchema(): Schema {
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    title: 'record',
    description: "Records go through the pipeline module's preprocess first; their fields are not checked here.",
    type: 'object',
  }
}
