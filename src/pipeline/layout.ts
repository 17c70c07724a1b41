// Shared facts about features and model inputs: a feature's width in its input, and where a tensor record sits in its input.
import {type Dim, type TensorSpec, isDynamic} from '../model/signature.js'
import type {Dtype} from '../model/tensor.js'
import type {FeatureSpec, Transform} from './spec.js'

/**
 * How one record maps onto a model input holding a tensor feature:
 * `stack` — dynamic first dim, records stacked along it; `single` — fixed first dim of 1, one record per run;
 * `whole` — the record is the whole input (rank 0, or a fixed first dim that is not a batch), one record per run.
 */
export type RecordMode = 'stack' | 'single' | 'whole'

export function tensorLayout(input: TensorSpec): {mode: RecordMode; shape: Dim[]} {
  const {shape} = input
  if (shape.length === 0) return {mode: 'whole', shape: []}
  if (isDynamic(shape[0])) return {mode: 'stack', shape: shape.slice(1)}
  if (shape[0] === 1) return {mode: 'single', shape: shape.slice(1)}
  return {mode: 'whole', shape: [...shape]}
}

/** -1 (as `mlops init` writes it) and names are dynamic dimensions. */
export function isFixed(dim: Dim): dim is number {
  return !isDynamic(dim)
}

/** Past float32's range a value is no measurement: it becomes Infinity in a float32 input. */
export const FLOAT32_MAX = 3.4028234663852886e38

export const FLOAT_DTYPES: ReadonlySet<Dtype> = new Set(['float16', 'float32', 'float64'])
export const INTEGER_DTYPES: ReadonlySet<Dtype> = new Set([
  'int8',
  'uint8',
  'int16',
  'uint16',
  'int32',
  'uint32',
  'int64',
  'uint64',
])

export function isNumericFeature(feature: FeatureSpec): boolean {
  return feature.type === 'number' || feature.type === 'integer' || feature.type === 'boolean'
}

export function isTextFeature(feature: FeatureSpec): boolean {
  return feature.type === 'string' || feature.type === 'category'
}

export function transformsOf(feature: FeatureSpec): Transform[] {
  if (feature.transform === undefined) return []
  return Array.isArray(feature.transform) ? feature.transform : [feature.transform]
}

export function encodeCategories(feature: FeatureSpec): string[] | undefined {
  if (!feature.encode) return undefined
  return 'onehot' in feature.encode ? feature.encode.onehot.categories : feature.encode.index.categories
}

/** Columns a feature takes in a concatenated [N,k] input: one, or one per category when one-hot encoded. */
export function featureWidth(feature: FeatureSpec): number | undefined {
  if (feature.encode && 'onehot' in feature.encode) return feature.encode.onehot.categories?.length
  return 1
}

/** Numbers a feature writes: encoded text and numeric features feed numeric inputs; plain text feeds string inputs. */
export function feedsNumbers(feature: FeatureSpec): boolean {
  return isNumericFeature(feature) || (isTextFeature(feature) && feature.encode !== undefined)
}

/** Shape as text, with `?` for dynamic dims. */
export function shapeText(shape: readonly Dim[]): string {
  return `[${shape.map((d) => (isFixed(d) ? String(d) : '?')).join(',')}]`
}
