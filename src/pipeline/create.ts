// Builds the runtime pipeline from a resolved one: per-feature functions compiled once, so the server's hot path only runs them.
import {resolve} from 'node:path'

import {ExitCode, MlopsError, errorMessage} from '../errors.js'
import {type ModelSignature, supportsBatching} from '../model/signature.js'
import type {OrtTensor} from '../model/tensor.js'
import {type CompiledInput, checkRecordFields, compileInput} from './assemble.js'
import {PipelineInputError} from './errors.js'
import {compileImageFeatures} from './image.js'
import {type PipelineModule, loadPipelineModule, runModulePostprocess, runModulePreprocess} from './module.js'
import {compilePostprocess} from './postprocess.js'
import {openRequestSchema, requestSchemaOf} from './request-schema.js'
import type {FeatureSpec, ResolvedPipeline} from './spec.js'
import type {InputRecord, Pipeline, Prediction, RecordIssue} from './types.js'

export interface CreatePipelineOptions {
  /** Directory `pipeline.module` is relative to: the project, or the unpacked artifact's pipeline folder. */
  moduleDir?: string
}

export async function createPipeline(
  resolved: ResolvedPipeline,
  signature: ModelSignature,
  options: CreatePipelineOptions = {},
): Promise<Pipeline> {
  if (resolved.resolved !== true) {
    throw new MlopsError(
      'PIPELINE_UNRESOLVED',
      'The pipeline has not been resolved against the model (statistics and categories may be missing)',
      {
        exitCode: ExitCode.usage,
        hint: 'Run "mlops package" to freeze the pipeline into an artifact, then serve the artifact.',
      },
    )
  }
  const features = resolved.features ?? []
  // An image feature feeds its input as the tensor its steps make: assembled as a tensor feature once decoded.
  const byName = new Map<string, FeatureSpec>(
    features.map((f) => [f.name, f.type === 'image' ? {...f, type: 'tensor'} : f]),
  )
  const images = compileImageFeatures(features)
  const inputs: CompiledInput[] = (resolved.inputs ?? []).map((assembly) => {
    const input = signature.inputs.find((i) => i.name === assembly.input)
    if (!input)
      throw new MlopsError(
        'PIPELINE_MISMATCH',
        `The pipeline feeds model input "${assembly.input}", which this model does not have`,
        {exitCode: ExitCode.usage, hint: 'The pipeline was resolved against another model: run "mlops package" again.'},
      )
    return compileInput(
      input,
      assembly.features.map((name) => byName.get(name)!),
    )
  })
  const known = new Set(byName.keys())
  const module = resolved.module
    ? await loadPipelineModule(resolve(options.moduleDir ?? '.', resolved.module))
    : undefined
  const postprocess = compilePostprocess(resolved.outputs ?? [], signature)

  /** Problems of records already through the module; the feeds when there are none. */
  const assemble = (records: readonly InputRecord[], issues: RecordIssue[]): Record<string, OrtTensor> => {
    const feeds: Record<string, OrtTensor> = {}
    if (!checkRecordFields(records, known, issues)) return feeds
    for (const input of inputs) {
      const tensor = input.build(records, issues)
      if (tensor) feeds[input.name] = tensor
    }
    return feeds
  }

  return {
    requestSchema: module?.preprocess ? openRequestSchema() : requestSchemaOf(features),
    batchable: supportsBatching(signature),
    imageOutputs: (resolved.outputs ?? []).filter((o) => o.image).map((o) => o.as ?? o.output),

    validate(records) {
      const issues: RecordIssue[] = []
      const prepared = module?.preprocess ? preprocessForValidation(module, records, issues) : records
      if (prepared) assemble(images ? images.placeholders(prepared, issues) : prepared, issues)
      return sortIssues(issues)
    },

    async preprocess(records) {
      const issues: RecordIssue[] = []
      let prepared = module?.preprocess ? await runModulePreprocess(module, records) : records
      if (images) prepared = await images.decode(prepared, issues)
      const feeds = assemble(prepared, issues)
      if (issues.length > 0) throw new PipelineInputError(sortIssues(issues))
      return feeds
    },

    async postprocess(outputs, records): Promise<Prediction[]> {
      const predictions = await postprocess(outputs, records.length)
      return module?.postprocess ? runModulePostprocess(module, predictions, records, outputs) : predictions
    },
  }
}

/** validate() is synchronous and never throws: a module failure becomes an issue, and an async preprocess cannot be checked here. */
function preprocessForValidation(
  module: PipelineModule,
  records: readonly InputRecord[],
  issues: RecordIssue[],
): readonly InputRecord[] | undefined {
  try {
    const out = module.preprocess!([...records])
    if (Array.isArray(out)) return out
    if (typeof (out as Partial<Promise<unknown>> | undefined)?.then === 'function') {
      ;(out as Promise<unknown>).catch(() => undefined)
      return undefined
    }
    issues.push({
      index: 0,
      field: '',
      message: `preprocess() in the pipeline module ${module.path} returned ${typeof out}, not an array of records`,
    })
  } catch (error) {
    issues.push({
      index: 0,
      field: '',
      message: `preprocess() in the pipeline module ${module.path} threw: ${errorMessage(error)}`,
    })
  }
  return undefined
}

function sortIssues(issues: RecordIssue[]): RecordIssue[] {
  return issues.length > 1 ? issues.sort((a, b) => a.index - b.index) : issues
}
