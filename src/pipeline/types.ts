// The runtime pipeline: the same object turns records into tensors and tensors into predictions for serve, predict and test.
import type {OrtTensor} from '../model/tensor.js'

export type RecordValue = unknown
export type InputRecord = Record<string, RecordValue>
/** One prediction per record: plain JSON (labels, scores, probabilities, raw output values). */
export type Prediction = Record<string, unknown>

export interface RecordIssue {
  /** Index of the record in the batch. */
  index: number
  /** Field path in the record, e.g. `age` or `tags[2]`. */
  field: string
  message: string
}

export interface Pipeline {
  /** JSON Schema (draft-07) of one request record, derived from the features. */
  readonly requestSchema: Record<string, unknown>
  /** Every model input has a dynamic first dimension: many records can share one run. When false, run records one at a time. */
  readonly batchable: boolean
  /** Keys of the predictions that hold a base64 PNG (pipeline.outputs[].image): `Accept: image/png` answers one. */
  readonly imageOutputs?: readonly string[]
  /** Checks records without running anything: missing, extra and mistyped fields. */
  validate(records: readonly InputRecord[]): RecordIssue[]
  /** Records to model feeds; throws PipelineInputError naming the record and field. */
  preprocess(records: readonly InputRecord[]): Promise<Record<string, OrtTensor>>
  /** Model outputs for `records.length` rows to one prediction per record. */
  postprocess(outputs: Record<string, OrtTensor>, records: readonly InputRecord[]): Promise<Prediction[]>
}
