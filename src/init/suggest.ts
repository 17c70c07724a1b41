// Pure decisions from a model's signature: which project template fits, and the starting pipeline for mlops.yaml.
import {tensorLayout} from '../pipeline/layout.js'
import type {Dim, ModelSignature, OutputSpec, TensorSpec} from '../model/signature.js'
import {isDynamic} from '../model/signature.js'
import type {AxisFinding} from '../model/probe.js'
import type {Dtype, TensorJson} from '../model/tensor.js'
import type {ImageSteps} from '../pipeline/spec.js'

export const TEMPLATE_KINDS = ['tabular', 'image', 'tensor'] as const
export type TemplateKind = (typeof TEMPLATE_KINDS)[number]

/** A feature as written into mlops.yaml: the columns of spec.ts, plus `tensor` features (dtype and shape without the batch dim). */
export interface SuggestedFeature {
  name: string
  type: 'number' | 'integer' | 'string' | 'boolean' | 'tensor' | 'image'
  dtype?: Dtype
  /** Without the batch dimension; a string is a dynamic dimension. */
  shape?: (number | string)[]
  /** false where the model takes a missing value (found by probing). */
  required?: boolean
  /** The smallest size per dimension the model ran on, where it is more than 1 (found by probing). */
  min_shape?: number[]
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
  // Half precision rounds each of many classes: the sum of 1000 of them drifts further from 1.
  const tolerance = tensor.dtype === 'float16' ? 2e-2 : 1e-3
  for (let r = 0; r < rows; r++) {
    let sum = 0
    for (let c = 0; c < classes; c++) {
      const v = tensor.data[r * classes + c]
      if (typeof v !== 'number' || v < 0 || v > 1) return false
      sum += v
    }
    if (Math.abs(sum - 1) > tolerance) return false
  }
  return rows > 0
}

/** What a run of the model taught init (see src/model/probe.ts); all optional, as --sample runs teach less. */
export interface ModelKnowledge {
  /** Outputs of a real run: they tell scores that already are probabilities. */
  observed?: Record<string, TensorJson>
  /** Per input, per column: whether a missing value (NaN, "") gave finite answers. */
  missingOk?: Record<string, boolean[]>
  /** Dynamic axes and the sizes that ran. */
  axes?: AxisFinding[]
}

/** One thing init decided from the model, for the user: `output scores: class scores (sum to one) → label, score`. */
export interface Inferred {
  kind: 'output' | 'feature'
  name: string
  decision: string
  why: string
}

const CLASS_NAME = /prob|logit|score|class|softmax/i
const LABEL_DTYPES = new Set<string>(['int64', 'int32', 'string'])

/** An output that holds one class per row ([N] or [N,1] of integers or strings): sklearn's `label`, `output_label`. */
function isLabelOutput(output: OutputSpec): boolean {
  const shape = output.shape ?? []
  return (
    output.isTensor &&
    LABEL_DTYPES.has(output.dtype ?? '') &&
    (shape.length === 1 || (shape.length === 2 && shape[1] === 1))
  )
}

/** Why an output's values are class scores, or undefined when nothing says so. */
function classEvidence(output: OutputSpec, observed: TensorJson | undefined, labelBeside: boolean): string | undefined {
  if (observed && looksLikeProbabilities(observed)) return 'its rows are probabilities (in [0,1], summing to one)'
  if (labelBeside) return 'a label output sits beside it'
  if (CLASS_NAME.test(output.name)) return `its name says so (${output.name})`
  return undefined
}

/**
 * Class scores ([N,C] floats, C > 1, with evidence) get an activation and an argmax label; anything else passes through
 * as numbers (regressions, embeddings, projections). Only one output may add label/score/probabilities to a prediction.
 */
function suggestOutputs(signature: ModelSignature, observed: Record<string, TensorJson>, inferred: Inferred[]) {
  const tensors = signature.outputs.filter((o) => o.isTensor)
  const labelOutput = tensors.find(isLabelOutput)
  const outputs: SuggestedOutput[] = []
  let labelled = false
  for (const output of tensors) {
    const shape = output.shape ?? []
    // A class count the model leaves dynamic is read from a run, when there was one.
    const seen = observed[output.name]?.shape
    const width = shape.length === 2 ? (isDynamic(shape[1]) ? seen?.[1] : shape[1]) : undefined
    const classes = typeof width === 'number' ? width : 0
    const note = (decision: string, why: string) => inferred.push({kind: 'output', name: output.name, decision, why})
    if (output === labelOutput) {
      note('labels', `${output.dtype}${shape.length === 1 ? ' [N]' : ' [N,1]'}: one class per row`)
      outputs.push({output: output.name})
      continue
    }
    const evidence =
      output.dtype && FLOAT_DTYPES.has(output.dtype) && classes >= 2
        ? classEvidence(output, observed[output.name], labelOutput !== undefined)
        : undefined
    if (!evidence) {
      note('numbers', classes >= 2 ? `${classes} values per row, nothing says they are class scores` : 'passed through')
      outputs.push({output: output.name})
      continue
    }
    const probabilities = observed[output.name] !== undefined && looksLikeProbabilities(observed[output.name])
    const activation = probabilities ? 'none' : 'softmax'
    // A model with its own label output keeps it; a second set of class scores stays numbers (no clashing keys).
    if (labelOutput || labelled) {
      note(
        probabilities ? 'probabilities' : 'class scores (softmax)',
        `${evidence}; ${labelOutput ? `the label comes from ${labelOutput.name}` : 'another output gives the label'}`,
      )
      outputs.push(activation === 'none' ? {output: output.name} : {output: output.name, activation})
      continue
    }
    labelled = true
    const how = classes > MAX_LABELS ? `top ${5} of ${classes} classes` : 'label, score, probabilities'
    note(`class scores${activation === 'softmax' ? ' (softmax)' : ''} → ${how}`, evidence)
    if (classes > MAX_LABELS) outputs.push({output: output.name, activation, top_k: 5})
    else outputs.push({output: output.name, activation, labels: Array.from({length: classes}, (_, i) => String(i))})
  }
  return outputs
}

/** Feature decisions from the probe: optional where the model answered finite values to a missing one. */
function markOptional(pipeline: SuggestedPipeline, missingOk: Record<string, boolean[]>, inferred: Inferred[]): void {
  const byName = new Map(pipeline.features.map((f) => [f.name, f]))
  for (const {input, features} of pipeline.inputs) {
    const ok = missingOk[input]
    features.forEach((name, column) => {
      const feature = byName.get(name)
      if (!feature || feature.type === 'tensor') return
      if (feature.type !== 'number' && feature.type !== 'string') {
        inferred.push({kind: 'feature', name, decision: 'required', why: `${feature.type}s have no missing value`})
        return
      }
      const missing = feature.type === 'number' ? 'NaN' : 'empty text'
      if (ok?.[column]) {
        feature.required = false
        inferred.push({
          kind: 'feature',
          name,
          decision: 'optional',
          why: `the model answers finite values to ${missing}`,
        })
      } else
        inferred.push({
          kind: 'feature',
          name,
          decision: 'required',
          why: ok ? `the model fails or answers NaN on ${missing}` : 'not probed',
        })
    })
  }
}

/** Tensor features: a dynamic dimension that ran at one size only becomes that size; a minimum is said. */
function fixAxes(
  signature: ModelSignature,
  pipeline: SuggestedPipeline,
  axes: readonly AxisFinding[],
  shapes: Record<string, number[]>,
  inferred: Inferred[],
): void {
  for (const feature of pipeline.features) {
    const input = signature.inputs.find((i) => i.name === feature.name)
    if (feature.type !== 'tensor' || !input || !feature.shape) continue
    const offset = input.shape.length - feature.shape.length
    const notes: string[] = []
    for (const finding of axes.filter((a) => a.input === input.name)) {
      const at = finding.axis - offset
      if (at < 0 || at >= feature.shape.length) continue
      const base = shapes[input.name]?.[finding.axis]
      if (finding.min === base && !finding.larger) {
        feature.shape[at] = base
        notes.push(`dimension ${finding.axis} takes ${base} only`)
      } else if (finding.min > 1) {
        feature.min_shape ??= feature.shape.map(() => 0)
        feature.min_shape[at] = finding.min
        notes.push(`dimension ${finding.axis} needs at least ${finding.min}`)
      }
    }
    inferred.push({
      kind: 'feature',
      name: feature.name,
      decision: `tensor ${feature.dtype ?? ''}[${feature.shape.join(',')}]`,
      why: notes.length > 0 ? notes.join('; ') : 'the shape the model declares',
    })
  }
}

export interface ProbedShapes {
  /** The shapes the generated inputs ran with (batch included). */
  shapes?: Record<string, number[]>
}

/** The starting pipeline and, for the user, what was inferred and why. */
export function inferPipeline(
  signature: ModelSignature,
  kind: TemplateKind,
  knowledge: ModelKnowledge & ProbedShapes = {},
): {pipeline: SuggestedPipeline; inferred: Inferred[]} {
  const tabular = kind === 'tabular' ? tabularFeatures(signature) : undefined
  const image = kind === 'image' ? imageFeature(signature.inputs[0]) : undefined
  const features = tabular?.features ?? (image ? [image] : signature.inputs.map(tensorFeature))
  const inputs = tabular?.inputs ?? signature.inputs.map((i) => ({input: i.name, features: [i.name]}))
  const inferred: Inferred[] = []
  const pipeline: SuggestedPipeline = {features, inputs, outputs: []}
  if (tabular) markOptional(pipeline, knowledge.missingOk ?? {}, inferred)
  else fixAxes(signature, pipeline, knowledge.axes ?? [], knowledge.shapes ?? {}, inferred)
  // Non-tensor (ZipMap) outputs cannot come back from onnxruntime-node; loadModel already warns about them.
  pipeline.outputs = suggestOutputs(signature, knowledge.observed ?? {}, inferred)
  return {pipeline, inferred}
}

export function suggestPipeline(
  signature: ModelSignature,
  kind: TemplateKind,
  observed: Record<string, TensorJson> = {},
): SuggestedPipeline {
  return inferPipeline(signature, kind, {observed}).pipeline
}
