// The escape hatch: a project's own JS module with preprocess/postprocess, loaded by dynamic import and guarded so its failures name it.
import {existsSync} from 'node:fs'
import {basename} from 'node:path'
import {pathToFileURL} from 'node:url'

import {ExitCode, MlopsError, errorMessage} from '../errors.js'
import type {OrtTensor} from '../model/tensor.js'
import type {InputRecord, Prediction} from './types.js'

export interface PipelineModule {
  path: string
  preprocess?: (records: InputRecord[]) => InputRecord[] | Promise<InputRecord[]>
  postprocess?: (
    predictions: Prediction[],
    records: readonly InputRecord[],
    outputs: Record<string, OrtTensor>,
  ) => Prediction[] | Promise<Prediction[]>
}

export async function loadPipelineModule(path: string): Promise<PipelineModule> {
  const hint = `Fix pipeline.module in mlops.yaml, or the module ${basename(path)}: it must be an ES module exporting preprocess(records) and/or postprocess(predictions, records, outputs).`
  if (!existsSync(path))
    throw new MlopsError('PIPELINE_MODULE_NOT_FOUND', `The pipeline module ${path} does not exist`, {
      exitCode: ExitCode.usage,
      hint,
    })
  let exports: Record<string, unknown>
  try {
    exports = (await import(pathToFileURL(path).href)) as Record<string, unknown>
  } catch (error) {
    throw new MlopsError(
      'PIPELINE_MODULE_INVALID',
      `The pipeline module ${path} failed to load: ${errorMessage(error)}`,
      {exitCode: ExitCode.usage, hint, cause: error},
    )
  }
  const found: PipelineModule = {path}
  for (const name of ['preprocess', 'postprocess'] as const) {
    const fn = exports[name]
    if (fn === undefined) continue
    if (typeof fn !== 'function')
      throw new MlopsError(
        'PIPELINE_MODULE_INVALID',
        `The pipeline module ${path} exports ${name}, but it is a ${typeof fn}, not a function`,
        {exitCode: ExitCode.usage, hint},
      )
    found[name] = fn as never
  }
  if (!found.preprocess && !found.postprocess)
    throw new MlopsError(
      'PIPELINE_MODULE_INVALID',
      `The pipeline module ${path} exports neither preprocess nor postprocess`,
      {exitCode: ExitCode.usage, hint},
    )
  return found
}

/** The module's failures (a throw, a wrong return value) as an error naming the module and the function. */
function moduleFailure(
  module: PipelineModule,
  name: 'preprocess' | 'postprocess',
  problem: string,
  cause?: unknown,
): MlopsError {
  return new MlopsError('PIPELINE_MODULE_FAILED', `${name}() in the pipeline module ${module.path} ${problem}`, {
    hint: `Fix ${name}() in ${basename(module.path)}; run "mlops predict" on one record to reproduce.`,
    cause,
  })
}

export async function runModulePreprocess(
  module: PipelineModule,
  records: readonly InputRecord[],
): Promise<InputRecord[]> {
  let out: unknown
  try {
    out = await module.preprocess!([...records])
  } catch (error) {
    throw moduleFailure(module, 'preprocess', `threw: ${errorMessage(error)}`, error)
  }
  // One prediction per request record: the module may rewrite records but not add or drop them.
  if (!Array.isArray(out) || out.length !== records.length)
    throw moduleFailure(
      module,
      'preprocess',
      `returned ${Array.isArray(out) ? `${out.length} records for ${records.length}` : `${out === null ? 'null' : typeof out}, not an array of records`}`,
    )
  return out as InputRecord[]
}

export async function runModulePostprocess(
  module: PipelineModule,
  predictions: Prediction[],
  records: readonly InputRecord[],
  outputs: Record<string, OrtTensor>,
): Promise<Prediction[]> {
  let out: unknown
  try {
    out = await module.postprocess!(predictions, records, outputs)
  } catch (error) {
    throw moduleFailure(module, 'postprocess', `threw: ${errorMessage(error)}`, error)
  }
  if (!Array.isArray(out) || out.length !== predictions.length)
    throw moduleFailure(
      module,
      'postprocess',
      `returned ${Array.isArray(out) ? `${out.length} predictions for ${predictions.length} records` : `${out === null ? 'null' : typeof out}, not an array of predictions`}`,
    )
  return out as Prediction[]
}
