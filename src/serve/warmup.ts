// The warm-up run before the server reports ready: golden cases when the artifact has them, else inputs made from the signature.
import type {GoldenCase} from '../checks/golden.types.js'
import {type ModelSignature, isDynamic} from '../model/signature.js'
import {type OrtTensor, makeTensor, tensorFromJson, typedFromJson} from '../model/tensor.js'
import type {Pipeline} from '../pipeline/types.js'
import type {InferenceEngine} from './engine.js'

export type Warmup = {cases: GoldenCase[]}

export interface WarmupResult {
  source: 'golden' | 'generated'
  /** Set when generated inputs were refused by the model: it may need real values, and serving goes on. */
  warning?: string
}

/** A golden-case failure throws (the artifact does not run here); a generated input the model refuses only warns. */
export async function warmUp(engine: InferenceEngine, pipeline: Pipeline, warmup?: Warmup): Promise<WarmupResult> {
  const golden = warmup?.cases[0]
  if (golden) {
    if (golden.inputs)
      await engine.warmUpRun(
        Object.fromEntries(Object.entries(golden.inputs).map(([name, json]) => [name, tensorFromJson(json, name)])),
      )
    else if (golden.records) await engine.warmUpRun(await pipeline.preprocess(golden.records))
    return {source: 'golden'}
  }
  try {
    await engine.warmUpRun(generatedFeeds(engine.model.signature))
    return {source: 'generated'}
  } catch (error) {
    return {
      source: 'generated',
      warning: `warm-up with generated inputs failed (${(error as Error).message}); the first real request may be slow`,
    }
  }
}

/** Zeros (empty strings for text) with every dynamic dim set to 1. */
export function generatedFeeds(signature: ModelSignature): Record<string, OrtTensor> {
  const feeds: Record<string, OrtTensor> = {}
  for (const spec of signature.inputs) {
    const dims = spec.shape.map((d) => (isDynamic(d) ? 1 : (d as number)))
    const count = dims.reduce((a, b) => a * b, 1)
    const values: unknown[] = new Array(count).fill(spec.dtype === 'string' ? '' : spec.dtype === 'bool' ? false : 0)
    feeds[spec.name] = makeTensor(spec.dtype, typedFromJson(spec.dtype, values), dims)
  }
  return feeds
}
