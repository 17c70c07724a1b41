// Records in, predictions out: schema check, the pipeline and the shared inference engine (used by serve and predict).
import {Ajv, type ErrorObject, type ValidateFunction} from 'ajv'

import {isMlopsError} from '../errors.js'
import {type ModelSignature, checkFeeds, formatShape} from '../model/signature.js'
import {PipelineInputError} from '../pipeline/errors.js'
import type {InputRecord, Pipeline, Prediction} from '../pipeline/types.js'
import type {Feeds, InferenceEngine} from './engine.js'
import {HttpError, InferenceError, badRequest} from './errors.js'

export class Predictor {
  private readonly check: ValidateFunction

  constructor(
    readonly engine: InferenceEngine,
    readonly pipeline: Pipeline,
  ) {
    // Compiled once: a request pays only for running the compiled check.
    this.check = new Ajv({allErrors: false, strict: false, coerceTypes: false, verbose: true}).compile(
      pipeline.requestSchema,
    )
  }

  /** The first problem of a record, naming its field, or undefined when it fits the request schema. */
  problem(record: unknown, index: number): HttpError | undefined {
    if (this.check(record)) return undefined
    const error = this.check.errors![0]
    return badRequest('INVALID_RECORD', `${fieldOf(error, index)}: ${messageOf(error)}`, fieldOf(error, index))
  }

  /**
   * The first problem of a record from a file, where CSV gives every value as a string: the pipeline's own checks,
   * which coerce "41" to a number, rather than the strict request schema of the HTTP boundary.
   */
  fileProblem(record: InputRecord): string | undefined {
    const [issue] = this.pipeline.validate([record])
    return issue ? `${issue.field}: ${issue.message}` : undefined
  }

  /** Predictions for records that passed `problem`; pipeline errors naming a record become 400s. */
  async predict(records: InputRecord[], timeoutMs?: number): Promise<Prediction[]> {
    if (this.pipeline.batchable) return this.run(records, timeoutMs)
    const predictions: Prediction[] = []
    for (const [index, record] of records.entries()) {
      try {
        predictions.push(...(await this.run([record], timeoutMs)))
      } catch (error) {
        throw error instanceof HttpError && error.status === 400 && records.length > 1 ? reindex(error, index) : error
      }
    }
    return predictions
  }

  /**
   * Predictions for records from a file, each on its own: a record the pipeline refuses gets its problem instead and the
   * others still get theirs. The batch runs as one, and record by record only when one record spoils it.
   */
  async predictEach(records: InputRecord[]): Promise<RecordOutcome[]> {
    const outcomes: RecordOutcome[] = records.map((record) => {
      const problem = this.fileProblem(record)
      return problem === undefined ? {prediction: undefined as unknown as Prediction} : {problem}
    })
    const good = outcomes.flatMap((outcome, i) => ('problem' in outcome ? [] : [i]))
    if (good.length === 0) return outcomes
    try {
      const predictions = await this.predict(good.map((i) => records[i]))
      good.forEach((i, k) => (outcomes[i] = {prediction: predictions[k]}))
    } catch (error) {
      if (good.length === 1) outcomes[good[0]] = {problem: problemOf(error)}
      else
        for (const i of good)
          outcomes[i] = await this.predict([records[i]]).then(
            ([prediction]) => ({prediction}),
            (recordError) => ({problem: problemOf(recordError)}),
          )
    }
    return outcomes
  }

  private async run(records: InputRecord[], timeoutMs?: number): Promise<Prediction[]> {
    let feeds: Feeds
    try {
      feeds = await this.pipeline.preprocess(records)
    } catch (error) {
      if (error instanceof PipelineInputError && error.issues.length > 0) {
        const [issue] = error.issues
        const field = `instances[${issue.index}]${issue.field ? `.${issue.field}` : ''}`
        throw badRequest(
          'INVALID_RECORD',
          `${field}: ${issue.message}${error.issues.length > 1 ? ` (and ${error.issues.length - 1} more problems)` : ''}`,
          field,
        )
      }
      if (isMlopsError(error)) throw badRequest('INVALID_RECORD', error.message, fieldFromDetails(error.details))
      throw error
    }
    const issues = checkFeeds(this.engine.model.signature, feeds)
    if (issues.length > 0)
      throw badRequest('INVALID_INPUT', `input "${issues[0].field}": ${issues[0].message}`, issues[0].field)
    const outputs = await this.engine.run(feeds, timeoutMs).catch((error: unknown) => {
      throw inputFault(error, this.engine.model.signature, feeds) ?? error
    })
    return this.pipeline.postprocess(outputs, records)
  }
}

/**
 * Failures inside the graph that the inputs caused: an index past a table (Gather), audio shorter than a kernel (Conv),
 * a width a MatMul or Reshape cannot take. The model ran on its golden inputs at package time, so these are the request's.
 */
const INPUT_FAULTS =
  /out of (data )?bounds|out of range|Invalid input shape|dimension mismatch|cannot be reshaped|Attempting to broadcast|incompatible dimensions|invalid dimensions/i
/** Any kernel that failed (a Pad too wide for the audio, a Conv kernel past the signal), unless it ran out of memory. */
const KERNEL_FAULT = /Non-zero status code returned while running \w+ node/
const RESOURCE_FAULT = /alloc|out of memory/i

export function inputFault(
  error: unknown,
  signature: ModelSignature,
  feeds: Feeds,
  field?: string,
): HttpError | undefined {
  if (!(error instanceof InferenceError) || error.status !== 500) return undefined
  const detail = error.detail
  if (!INPUT_FAULTS.test(detail) && !(KERNEL_FAULT.test(detail) && !RESOURCE_FAULT.test(detail))) return undefined
  const sent = Object.entries(feeds)
    .map(([name, t]) => `${name} ${t.type}[${t.dims.join(',')}]`)
    .join(', ')
  const takes = signature.inputs.map((i) => `${i.name} ${i.dtype}${formatShape(i.shape)}`).join(', ')
  const reason = detail.replace(/^.*Status Message: /, '').slice(0, 200)
  return badRequest(
    'INPUT_REJECTED',
    `the model cannot run on these inputs (${sent}; it takes ${takes}, within the sizes and values it was packaged with): ${reason}`,
    field,
  )
}

export type RecordOutcome = {prediction: Prediction} | {problem: string}

/** A client error as the problem of one record of a file (where its line number says which); anything else is rethrown. */
function problemOf(error: unknown): string {
  if (!(error instanceof HttpError)) throw error
  // In a file the line number says which record; `instances[0].` is the HTTP wording.
  return ((error as {detail?: string}).detail ?? error.message).replace(/^instances\[\d+\]\.?/, '').replace(/^: /, '')
}

function reindex(error: HttpError, index: number): HttpError {
  const message = error.message.replace(/^instances\[0\]/, `instances[${index}]`)
  const field = error.field?.replace(/^instances\[0\]/, `instances[${index}]`)
  return badRequest(error.code, message, field)
}

function fieldFromDetails(details: unknown): string | undefined {
  const d = details as {index?: number; field?: string} | undefined
  if (d?.field === undefined) return undefined
  return d.index === undefined ? d.field : `instances[${d.index}].${d.field}`
}

function fieldOf(error: ErrorObject, index: number): string {
  const params = error.params as {missingProperty?: string; additionalProperty?: string}
  let path = `instances[${index}]`
  for (const part of error.instancePath.split('/').slice(1))
    path += /^\d+$/.test(part) ? `[${part}]` : `.${part.replaceAll('~1', '/').replaceAll('~0', '~')}`
  if (params.missingProperty) path += `.${params.missingProperty}`
  if (params.additionalProperty) path += `.${params.additionalProperty}`
  return path
}

function messageOf(error: ErrorObject): string {
  if (error.keyword === 'required') return 'is required'
  if (error.keyword === 'additionalProperties') return 'is not a field of the request'
  if (error.keyword === 'enum')
    return `must be one of ${((error.params as {allowedValues: unknown[]}).allowedValues ?? []).map((v) => JSON.stringify(v)).join(', ')}`
  // A number field takes "NaN" (and, where allowed, "Infinity") as strings too: any other string or type is not a number.
  const pattern = String((error.params as {pattern?: string}).pattern)
  const numberType = error.keyword === 'type' && /number/.test(String((error.params as {type?: unknown}).type))
  if (numberType || (error.keyword === 'pattern' && /NaN|Infinity/.test(pattern))) {
    const missing = pattern.includes('NaN') || (error.keyword === 'type' && /null/.test(String(error.schema)))
    // The JSON parser gives integers past 2^53 as BigInt, which JSON.stringify cannot print.
    const data = typeof error.data === 'bigint' ? String(error.data) : JSON.stringify(error.data)
    return `must be a number, not ${data?.slice(0, 40)}${missing ? ' (or null when missing)' : ''}`
  }
  if (error.keyword === 'maximum' || error.keyword === 'minimum')
    return `${String(error.data)} is past the float32 range: not a finite measurement (allow_non_finite on the feature takes it)`
  return error.message ?? 'is invalid'
}
