// Model outputs to one plain-JSON prediction per record: activations, labels by argmax or threshold, top-k, or the raw values.
import {MlopsError} from '../errors.js'
import type {ModelSignature} from '../model/signature.js'
import {type JsonScalar, type OrtTensor, floatToJson, tensorNumbers, valuesToJson} from '../model/tensor.js'
import {encodePng, outputPixels} from './image-output.js'
import type {OutputPostprocess} from './spec.js'
import type {Prediction} from './types.js'

export type Postprocess = (outputs: Record<string, OrtTensor>, n: number) => Promise<Prediction[]>
/** Puts one output into each record's prediction; image outputs are PNG-encoded off the event loop, awaited after. */
type OutputStep = (tensor: OrtTensor, n: number, predictions: Prediction[], encoding: Promise<void>[]) => void
type Label = string | number

/** Where each record's values sit in an output: a slice along the batch dim, or the whole tensor for a single record. */
function rowLayout(name: string, dims: readonly number[], n: number): {stride: number; dims: number[]; whole: boolean} {
  if (dims.length > 0 && dims[0] === n) {
    const rest = dims.slice(1)
    return {stride: rest.reduce((a, b) => a * b, 1), dims: rest, whole: false}
  }
  if (n === 1) return {stride: dims.reduce((a, b) => a * b, 1), dims: [...dims], whole: true}
  throw new MlopsError(
    'OUTPUT_SHAPE',
    `Model output "${name}" has shape [${dims.join(',')}], which does not split into ${n} records along its first dimension`,
    {
      hint: 'Run one record at a time, or post-process this output in a pipeline module (pipeline.module in mlops.yaml).',
    },
  )
}

/** Flat values to nested arrays of the given dims (a scalar for rank 0). */
function nest<T>(values: readonly T[], start: number, dims: readonly number[], depth = 0): unknown {
  if (depth === dims.length) return values[start]
  const size = dims[depth]
  const inner = dims.slice(depth + 1).reduce((a, b) => a * b, 1)
  const out = new Array<unknown>(size)
  for (let i = 0; i < size; i++)
    out[i] = depth + 1 === dims.length ? values[start + i] : nest(values, start + i * inner, dims, depth + 1)
  return out
}

function passThrough(key: string, tensor: OrtTensor, n: number, predictions: Prediction[]): void {
  const values: JsonScalar[] = valuesToJson(tensor.type, tensor.data)
  const layout = rowLayout(key, tensor.dims, n)
  for (let i = 0; i < n; i++) predictions[i][key] = nest(values, layout.whole ? 0 : i * layout.stride, layout.dims)
}

function sigmoid(x: number): number {
  return 1 / (1 + Math.exp(-x))
}

function softmaxInPlace(xs: number[]): void {
  let max = Number.NEGATIVE_INFINITY
  for (const x of xs) if (x > max) max = x
  let sum = 0
  for (let i = 0; i < xs.length; i++) sum += xs[i] = Math.exp(xs[i] - max)
  for (let i = 0; i < xs.length; i++) xs[i] /= sum
}

function argmax(xs: readonly number[]): number {
  let best = 0
  for (let i = 1; i < xs.length; i++) if (xs[i] > xs[best]) best = i
  return best
}

/** Each record's part of the output as a PNG, in base64: what JSON carries and what an image feature takes back. */
function imageOutput(key: string, config: OutputPostprocess): OutputStep {
  const image = config.image!
  return (tensor, n, predictions, encoding) => {
    const values = tensorNumbers(tensor)
    const layout = rowLayout(config.output, tensor.dims, n)
    for (let i = 0; i < n; i++) {
      const pixels = outputPixels(values, layout.whole ? 0 : i * layout.stride, layout.dims, image, config.output)
      encoding.push(encodePng(pixels).then((png) => void (predictions[i][key] = png.toString('base64'))))
    }
  }
}

function compileOutput(config: OutputPostprocess): OutputStep {
  const key = config.as ?? config.output
  if (config.image) return imageOutput(key, config)
  const decides = config.labels !== undefined || config.threshold !== undefined || config.top_k !== undefined
  const activation = config.activation ?? 'none'
  const {labels, threshold, top_k: topK} = config
  const labelOf = (i: number): Label => labels?.[i] ?? i

  const scoresOf = (numbers: number[], start: number, count: number): number[] => {
    const xs = numbers.slice(start, start + count)
    if (activation === 'sigmoid') for (let i = 0; i < xs.length; i++) xs[i] = sigmoid(xs[i])
    else if (activation === 'softmax') softmaxInPlace(xs)
    return xs
  }

  return (tensor, n, predictions) => {
    if (!decides && activation === 'none') return passThrough(key, tensor, n, predictions)
    const numbers = tensorNumbers(tensor)
    const layout = rowLayout(config.output, tensor.dims, n)
    const count = layout.stride
    if (decides && labels && threshold === undefined && labels.length !== count) {
      throw new MlopsError(
        'OUTPUT_LABELS',
        `Model output "${config.output}" has ${count} scores per record but pipeline.outputs lists ${labels.length} labels`,
        {hint: 'Make the labels in mlops.yaml match the model\'s classes, then run "mlops package" again.'},
      )
    }
    for (let i = 0; i < n; i++) {
      const xs = scoresOf(numbers, layout.whole ? 0 : i * count, count)
      const prediction = predictions[i]
      if (!decides) {
        prediction[key] = nest(xs.map(floatToJson), 0, layout.dims)
        continue
      }
      if (threshold !== undefined && count === 1) {
        prediction[key] = floatToJson(xs[0])
        prediction.label = labelOf(xs[0] >= threshold ? 1 : 0)
        continue
      }
      const best = threshold !== undefined && count === 2 ? (xs[1] >= threshold ? 1 : 0) : argmax(xs)
      const decision: Prediction = {label: labelOf(best), score: floatToJson(xs[best])}
      if (topK === undefined) {
        const probabilities: Record<string, number | string> = {}
        for (let c = 0; c < count; c++) probabilities[String(labelOf(c))] = floatToJson(xs[c])
        decision.probabilities = probabilities
      } else {
        const order = xs
          .map((_, c) => c)
          .sort((a, b) => xs[b] - xs[a])
          .slice(0, topK)
        decision.top_k = order.map((c) => ({label: labelOf(c), score: floatToJson(xs[c])}))
      }
      if (config.as === undefined) Object.assign(prediction, decision)
      else prediction[config.as] = decision
    }
  }
}

/** Configured outputs first, in their order, then every other tensor output under its own name. */
export function compilePostprocess(outputs: readonly OutputPostprocess[], signature: ModelSignature): Postprocess {
  const configured = outputs.map((o) => ({name: o.output, run: compileOutput(o)}))
  const named = new Set(outputs.map((o) => o.output))
  const rest = signature.outputs.filter((o) => o.isTensor && !named.has(o.name)).map((o) => o.name)
  return async (tensors, n) => {
    const predictions: Prediction[] = Array.from({length: n}, () => ({}))
    const encoding: Promise<void>[] = []
    for (const {name, run} of configured) {
      const tensor = tensors[name]
      if (!tensor)
        throw new MlopsError(
          'OUTPUT_MISSING',
          `The model returned no output "${name}", which pipeline.outputs post-processes`,
          {hint: 'Check pipeline.outputs in mlops.yaml against the model\'s outputs, then run "mlops package" again.'},
        )
      run(tensor, n, predictions, encoding)
    }
    for (const name of rest) if (tensors[name]) passThrough(name, tensors[name], n, predictions)
    await Promise.all(encoding)
    return predictions
  }
}
