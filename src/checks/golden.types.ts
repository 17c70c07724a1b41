// Golden cases: inputs with the outputs a release must keep giving (JSONL, one case a line).
import type {TensorJson} from '../model/tensor.js'
import type {InputRecord, Prediction} from '../pipeline/types.js'

export interface Tolerance {
  /** Relative tolerance for floats (default 1e-4). */
  rtol?: number
  /** Absolute tolerance for floats (default 1e-5; 1e-3 for float16). */
  atol?: number
}

export interface GoldenCase {
  name: string
  /** Records, run through the pipeline; `expected.predictions` holds one prediction per record. */
  records?: InputRecord[]
  /** Raw model feeds, run without the pipeline; `expected.outputs` holds the tensors. */
  inputs?: Record<string, TensorJson>
  expected: {predictions?: Prediction[]; outputs?: Record<string, TensorJson>}
  tolerance?: Tolerance
  /** Per-output (or per-prediction-field) tolerance overrides. */
  tolerances?: Record<string, Tolerance>
}
