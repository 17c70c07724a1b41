// Logistic regression trained by mini-batch gradient descent on Float64Arrays, and the metrics it is judged by.
import type {Random} from './random.js'

export interface LogisticModel {
  weights: Float64Array
  bias: number
}

export interface TrainOptions {
  epochs: number
  learningRate: number
  batchSize: number
  /** L2 penalty on the weights (not the bias). */
  l2: number
  /** Shuffles the rows each epoch. */
  random: Random
}

function sigmoid(z: number): number {
  return 1 / (1 + Math.exp(-z))
}

/** `x` is row-major [n, k]; `y` holds 0/1 labels. */
export function trainLogistic(x: Float64Array, y: Uint8Array, k: number, options: TrainOptions): LogisticModel {
  const n = y.length
  const weights = new Float64Array(k)
  let bias = 0
  const gradient = new Float64Array(k)
  for (let epoch = 0; epoch < options.epochs; epoch++) {
    const order = options.random.permutation(n)
    for (let start = 0; start < n; start += options.batchSize) {
      const end = Math.min(n, start + options.batchSize)
      gradient.fill(0)
      let biasGradient = 0
      for (let b = start; b < end; b++) {
        const row = order[b] * k
        let z = bias
        for (let j = 0; j < k; j++) z += weights[j] * x[row + j]
        const error = sigmoid(z) - y[order[b]]
        for (let j = 0; j < k; j++) gradient[j] += error * x[row + j]
        biasGradient += error
      }
      const size = end - start
      for (let j = 0; j < k; j++) weights[j] -= options.learningRate * (gradient[j] / size + options.l2 * weights[j])
      bias -= (options.learningRate * biasGradient) / size
    }
  }
  return {weights, bias}
}

/** The parameters rounded to float32, as the ONNX file stores them, so every later forward pass uses the same numbers. */
export function toFloat32(model: LogisticModel): LogisticModel {
  return {weights: Float64Array.from(model.weights, Math.fround), bias: Math.fround(model.bias)}
}

/** The float64 forward pass: sigmoid(x·w + b) for each row. */
export function predictProbabilities(model: LogisticModel, x: Float64Array): Float64Array {
  const k = model.weights.length
  const n = x.length / k
  const out = new Float64Array(n)
  for (let i = 0; i < n; i++) {
    let z = model.bias
    for (let j = 0; j < k; j++) z += model.weights[j] * x[i * k + j]
    out[i] = sigmoid(z)
  }
  return out
}

/** Area under the ROC curve: the Mann–Whitney statistic, ties counted as half. */
export function rocAuc(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  const order = Array.from({length: scores.length}, (_, i) => i).sort((a, b) => scores[a] - scores[b])
  let rankSumPositive = 0
  let positives = 0
  for (let i = 0; i < order.length;) {
    let j = i
    while (j + 1 < order.length && scores[order[j + 1]] === scores[order[i]]) j++
    const averageRank = (i + j) / 2 + 1
    for (let t = i; t <= j; t++) {
      if (labels[order[t]] === 1) {
        rankSumPositive += averageRank
        positives++
      }
    }
    i = j + 1
  }
  const negatives = scores.length - positives
  return (rankSumPositive - (positives * (positives + 1)) / 2) / (positives * negatives)
}

export function accuracy(scores: ArrayLike<number>, labels: ArrayLike<number>, threshold = 0.5): number {
  let correct = 0
  for (let i = 0; i < scores.length; i++) if ((scores[i] >= threshold ? 1 : 0) === labels[i]) correct++
  return correct / scores.length
}
