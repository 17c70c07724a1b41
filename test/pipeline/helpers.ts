// Shared by the pipeline tests: hand-written signatures, the shared models' samples, and a ConfigError catcher.
import assert from 'node:assert/strict'
import {readFileSync} from 'node:fs'
import {join} from 'node:path'

import {ConfigError, type ConfigIssue} from '../../src/errors.js'
import type {ModelSignature} from '../../src/model/signature.js'
import type {TensorJson} from '../../src/model/tensor.js'
import {MODELS_DIR} from '../support/cli.js'

export const MODELS = MODELS_DIR

export interface Sample {
  name: string
  inputs: Record<string, TensorJson>
  expected_outputs: Record<string, TensorJson>
}

export function samplesOf(model: string): Sample[] {
  return (JSON.parse(readFileSync(join(MODELS, `${model}.json`), 'utf8')) as {samples: Sample[]}).samples
}

/** One float32 [N,k] input and one [N,1] output, like a scikit-learn regressor. */
export function tableSignature(
  k: number | string,
  dtype: ModelSignature['inputs'][number]['dtype'] = 'float32',
): ModelSignature {
  return {
    inputs: [{name: 'x', dtype, shape: ['N', k]}],
    outputs: [{name: 'y', isTensor: true, dtype: 'float32', shape: ['N', 1]}],
  }
}

export async function configIssues(run: () => Promise<unknown>): Promise<ConfigIssue[]> {
  try {
    await run()
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`)
    assert.equal(error.exitCode, 2)
    return error.issues
  }
  assert.fail('the pipeline was accepted')
}
