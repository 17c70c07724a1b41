// Pure decisions from a model's signature: which project template fits, and the starting pipeline for mlops.yaml.
import {tensorLayout} from '../pipeline/layout.js'
import type {Dim, ModelSignature, OutputSpec, TensorSpec} from '../model/signature.js'
import {isDynamic} from '../model/signature.js'
import type {Dtype, TensorJson} from '../model/tensor.js'
import type {ImageSteps} from '../pipeline/image.js'

export const TEMPLATE_KINDS = ['tabular', 'image', 'tensor'] as const
export type TemplateKind = (typeof TEMPLATE_KINDS)[number]

/** A feature as written into mlops.yaml: the columns of spec.ts, plus `tensor` features (dtype and shape without the batch dim). */
export interface SuggestedFeature {
  name: string
  type: 'number' | 'integer' | 'string' | 'boolean' | 'tensor' | 'image'
  dtype?: Dtype
  /** Without the batch dimension; a string is a dynamic dimension. */
  shape?: (number | string)[]
  image?: ImageSteps
}

export interface SuggestedOutput {
  output: string
  activation?: 'none' | 'softmax'
  labels?: string[]
  top_k?: number
}

export interface SuggestedPipeline {
  features: SuggestedFeature[]
  inputs: {input: string; features: string[]}[]
  outputs: SuggestedOutput[]
}

/** More columns than this is a flattened tensor (e.g. 784 pixels), not a table a person fills in. */
const MAX_TABULAR_COLUMNS = 256
/** Listing class names is only helpful up to this many classes; past it, top_k. */
const MAX_LABELS = 100

const FLOAT_DTYPES = new Set<string>(['float16', 'float32', 'float64'])

function columnType(dtype: Dtype): SuggestedFeature['type'] {
  if (FLOAT_DTYPES.has(dtype)) return 'number'
  if (dtype === 'string') return 'string'
  if (dtype === 'bool') return 'boolean'
  return 'integer'
}

/** Columns of a tabular input: rank 1 ([N]) is one column, rank 2 needs a fixed column count. */
function columnCount(input: TensorSpec): number | undefined {
  if (input.shape.length === 1) return 1
  if (input.shape.length !== 2) return undefined
  const k = input.shape[1]
  return typeof k === 'number' && k >= 1 ? k : undefined
}

/** Features of a tabular model, or undefined when some input is not a table. */
function tabularFeatures(
  signature: ModelSignature,
): {features: SuggestedFeature[]; inputs: SuggestedPipeline['inputs']} | undefined {
  const counts = signature.inputs.map(columnCount)
  if (signature.inputs.length === 0 || counts.some((k) => k === undefined)) return undefined
  if ((counts as number[]).reduce((a, b) => a + b, 0) > MAX_TABULAR_COLUMNS) return undefined
  const features: SuggestedFeature[] = []
  const inputs: SuggestedPipeline['inputs'] = []
  const single = signature.inputs.length === 1
  signature.inputs.forEach((input, i) => {
    const k = counts[i] as number
    // One input holding every column gets f0…f(k-1); several inputs are already named columns.
    const names = k === 1 ? [input.name] : Array.from({length: k}, (_, j) => (single ? `f${j}` : `${input.name}_${j}`))
    for (const name of names) features.push({name, type: columnType(input.dtype)})
    inputs.push({input: input.name, features: names})
  })
  return {features, inputs}
}

function isImage(signature: ModelSignature): boolean {
  return (
    signature.inputs.length === 1 &&
    signature.inputs[0].shape.length === 4 &&
    FLOAT_DTYPES.has(signature.inputs[0].dtype)
  )
}

/** Whether the model's inputs are columns a request can name one by one. */
export function isTabular(signature: ModelSignature): boolean {
  return tabularFeatures(signature) !== undefined
}

export function detectTemplate(signature: ModelSignature): TemplateKind {
  if (isImage(signature)) return 'image'
  if (tabularFeatures(signature)) return 'tabular'
  return 'tensor'
}

/** A dynamic dimension keeps the model's name for it ("?" when unnamed), which the pipeline reads as "any size". */
function dimForYaml(dim: Dim): number | string {
  return isDynamic(dim) ? (typeof dim === 'string' && dim ? dim : '?') : dim
}

/**
 * An image input of a fixed size and 1 or 3 channels ([C,H,W] or [H,W,C] per record) takes pictures: resized to its
 * size, grey or RGB, scaled to [0,1]. The training's own steps (a crop, mean/std) are for the user to add.
 */
function imageFeature(input: TensorSpec): SuggestedFeature | undefined {
  const shape = tensorLayout(input).shape
  if (shape.length !== 3 || !shape.every((d) => typeof d === 'number' && d > 0)) return undefined
  const [a, b, c] = shape as number[]
  const layout = a === 1 || a === 3 ? 'chw' : c === 1 || c === 3 ? 'hwc' : undefined
  if (!layout) return undefined
  const [channels, height, width] = layout === 'chw' ? [a, b, c] : [c, a, b]
  const color = channels === 1 ? 'grey' : 'rgb'
  const steps: ImageSteps = {resize: {width, height, filter: 'linear'}, color, scale: 1 / 255, layout}
  return {name: input.name, type: 'image', image: steps}
}

function tensorFeature(input: TensorSpec): SuggestedFeature {
  // One record's shape exactly as the pipeline reads it (a dynamic or fixed-1 first dim is the batch).
  return {name: input.name, type: 'tensor', dtype: input.dtype, shape: tensorLayout(input).shape.map(dimForYaml)}
}

/** Rows of an [N,C] output that already are probabilities (in [0,1], summing to 1) need no softmax. */
export function looksLikeProbabilities(tensor: TensorJson): boolean {
  if (tensor.shape.length !== 2 || !tensor.data) return false
  const [rows, classes] = tensor.shape
  for (let r = 0; r < rows; r++) {
    let sum = 0
    for (let c = 0; c < classes; c++) {
      const v = tensor.data[r * classes + c]
      if (typeof v !== 'number' || v < 0 || v > 1) return false
      sum += v
    }
    if (Math.abs(sum - 1) > 1e-3) return false
  }
  return true
}

/**
 * Class scores ([N,C] floats, C > 1) get softmax and an argmax label; other outputs pass through.
 * `observed` are outputs of a real run, when there was one: they tell scores that already are probabilities.
 */
function suggestOutput(output: OutputSpec, observed?: TensorJson): SuggestedOutput {
  const shape = output.shape ?? []
  const classes = shape.length === 2 && !isDynamic(shape[1]) ? (shape[1] as number) : 0
  if (!output.dtype || !FLOAT_DTYPES.has(output.dtype) || classes < 2) return {output: output.name}
  const activation = observed && looksLikeProbabilities(observed) ? 'none' : 'softmax'
  if (classes > MAX_LABELS) return {output: output.name, activation, top_k: 5}
  return {output: output.name, activation, labels: Array.from({length: classes}, (_, i) => String(i))}
}

export function suggestPipeline(
  signature: ModelSignature,
  kind: TemplateKind,
  observed: Record<string, TensorJson> = {},
): SuggestedPipeline {
  const tabular = kind === 'tabular' ? tabularFeatures(signature) : undefined
  const image = kind === 'image' ? imageFeature(signature.inputs[0]) : undefined
  const features = tabular?.features ?? (image ? [image] : signature.inputs.map(tensorFeature))
  const inputs = tabular?.inputs ?? signature.inputs.map((i) => ({input: i.name, features: [i.name]}))
  // Non-tensor (ZipMap) outputs cannot come back from onnxruntime-node; loadModel already warns about them.
  const outputs = signature.outputs.filter((o) => o.isTensor).map((o) => suggestOutput(o, observed[o.name]))
  // A model with its own `label` output (sklearn classifiers) keeps it; its scores then get no second, argmax label.
  if (outputs.some((o) => o.output === 'label' && !o.labels))
    for (const o of outputs) if (o.labels && o.output !== 'label') delete o.labels
  return {features, inputs, outputs}
}
