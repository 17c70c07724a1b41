// Runs golden cases against a loaded model (and its pipeline): the regression baseline checked at package time and by `mlops test`.
import {createReadStream} from 'node:fs'
import {createInterface} from 'node:readline'

import {ExitCode, MlopsError, errorMessage} from '../errors.js'
import {type LoadedModel, checkFeeds, runModel} from '../model/signature.js'
import {type OrtTensor, tensorFromJson, tensorToJson} from '../model/tensor.js'
import type {InputRecord, Pipeline, Prediction} from '../pipeline/types.js'
import {type Mismatch, compareJson, compareTensor} from './compare.js'
import type {GoldenCase} from './golden.types.js'

export interface GoldenResult {
  name: string
  passed: boolean
  mismatches: Mismatch[]
  /** Set when the case could not run at all (bad input, model error). */
  error?: string
}

export interface GoldenReport {
  total: number
  passed: number
  failed: number
  results: GoldenResult[]
}

export async function readGoldenCases(path: string): Promise<GoldenCase[]> {
  const cases: GoldenCase[] = []
  let lineNo = 0
  try {
    const lines = createInterface({input: createReadStream(path, 'utf8'), crlfDelay: Infinity})
    for await (const line of lines) {
      lineNo++
      if (!line.trim()) continue
      let value: unknown
      try {
        value = JSON.parse(line)
      } catch (error) {
        throw new MlopsError('GOLDEN_INVALID', `${path}:${lineNo} is not valid JSON: ${errorMessage(error)}`, {
          exitCode: ExitCode.usage,
          hint: 'Each line of the golden file is one JSON object: {"name", "records" or "inputs", "expected"}.',
        })
      }
      cases.push(checkCase(value, `${path}:${lineNo}`))
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT')
      throw new MlopsError('GOLDEN_NOT_FOUND', `The golden file ${path} does not exist`, {
        exitCode: ExitCode.usage,
        hint: 'Fix data.golden in mlops.yaml, or remove it to package without golden cases.',
      })
    throw error
  }
  return cases
}

function checkCase(value: unknown, where: string): GoldenCase {
  const fail = (message: string) =>
    new MlopsError('GOLDEN_INVALID', `${where}: ${message}`, {
      exitCode: ExitCode.usage,
      hint: 'Each golden case needs "name", either "records" (with expected.predictions) or "inputs" (with expected.outputs).',
    })
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw fail('must be a JSON object')
  const c = value as Partial<GoldenCase>
  if (typeof c.name !== 'string' || !c.name) throw fail('"name" must be a non-empty string')
  if (!c.expected || typeof c.expected !== 'object') throw fail('"expected" is required')
  if (c.records !== undefined) {
    if (!Array.isArray(c.records) || c.records.length === 0)
      throw fail('"records" must be a non-empty array of objects')
    if (!Array.isArray(c.expected.predictions) || c.expected.predictions.length !== c.records.length)
      throw fail('"expected.predictions" must have one prediction per record')
  } else if (c.inputs !== undefined) {
    if (typeof c.inputs !== 'object' || Array.isArray(c.inputs)) throw fail('"inputs" must map input names to tensors')
    if (!c.expected.outputs || typeof c.expected.outputs !== 'object')
      throw fail('"expected.outputs" must map output names to tensors')
  } else {
    throw fail('needs "records" or "inputs"')
  }
  return c as GoldenCase
}

/** Records through the pipeline and the model; one run for a batchable model, one run a record otherwise. */
export async function predictRecords(
  model: LoadedModel,
  pipeline: Pipeline,
  records: readonly InputRecord[],
): Promise<Prediction[]> {
  if (pipeline.batchable || records.length <= 1) {
    const outputs = await runModel(model, await pipeline.preprocess(records))
    return pipeline.postprocess(outputs, records)
  }
  const out: Prediction[] = []
  for (const record of records) out.push(...(await predictRecords(model, pipeline, [record])))
  return out
}

export async function runGoldenCases(
  model: LoadedModel,
  pipeline: Pipeline | undefined,
  cases: readonly GoldenCase[],
): Promise<GoldenReport> {
  const results: GoldenResult[] = []
  for (const golden of cases) results.push(await runCase(model, pipeline, golden))
  const passed = results.filter((r) => r.passed).length
  return {total: results.length, passed, failed: results.length - passed, results}
}

async function runCase(model: LoadedModel, pipeline: Pipeline | undefined, golden: GoldenCase): Promise<GoldenResult> {
  try {
    if (golden.records) {
      if (!pipeline)
        return {
          name: golden.name,
          passed: false,
          mismatches: [],
          error: 'the case has records but the project has no pipeline; give raw "inputs" or add a pipeline section',
        }
      const predictions = await predictRecords(model, pipeline, golden.records)
      const mismatches: Mismatch[] = []
      golden.expected.predictions!.forEach((expected, i) =>
        compareJson(`predictions[${i}]`, expected, predictions[i], golden.tolerance ?? {}, mismatches),
      )
      return {name: golden.name, passed: mismatches.length === 0, mismatches}
    }
    const feeds: Record<string, OrtTensor> = {}
    for (const [name, json] of Object.entries(golden.inputs!)) feeds[name] = tensorFromJson(json, `inputs.${name}`)
    const issues = checkFeeds(model.signature, feeds)
    if (issues.length > 0)
      return {
        name: golden.name,
        passed: false,
        mismatches: [],
        error: issues.map((i) => `${i.field}: ${i.message}`).join('; '),
      }
    const outputs = await runModel(model, feeds)
    const mismatches: Mismatch[] = []
    for (const [name, expected] of Object.entries(golden.expected.outputs!)) {
      const actual = outputs[name]
      if (!actual) {
        if (model.fetches.includes(name) || model.signature.outputs.some((o) => o.name === name && o.isTensor))
          mismatches.push({
            field: `outputs.${name}`,
            expected: 'a tensor',
            actual: undefined,
            message: 'the model gave no such output',
          })
        continue
      }
      mismatches.push(
        ...compareTensor(
          `outputs.${name}`,
          expected,
          tensorToJson(actual),
          golden.tolerances?.[name] ?? golden.tolerance,
        ),
      )
    }
    return {name: golden.name, passed: mismatches.length === 0, mismatches}
  } catch (error) {
    return {name: golden.name, passed: false, mismatches: [], error: errorMessage(error)}
  }
}
