// Golden cases seeded with the model's own answers, so `mlops test` has a regression baseline from the first package.
import type {GoldenCase} from '../checks/golden.types.js'
import type {LoadedModel} from '../model/signature.js'
import {type OrtTensor, type TensorJson, tensorToJson} from '../model/tensor.js'
import type {Sample} from './inputs.js'

/** Past this many elements a tensor is stored as base64 bytes (`data_b64`): a JSON number list would be ~4× larger. */
export const INLINE_ELEMENTS = 4096

/** A tensor as written to golden.jsonl: `data` for small tensors and strings, `data_b64` (little-endian bytes) for large ones. */
export function tensorToStoredJson(tensor: OrtTensor): TensorJson {
  if (tensor.type === 'string' || tensor.size <= INLINE_ELEMENTS) return tensorToJson(tensor)
  const data = tensor.data as ArrayBufferView
  return {
    dtype: tensor.type as TensorJson['dtype'],
    shape: [...tensor.dims],
    data_b64: Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('base64'),
  }
}

function storeAll(tensors: Record<string, OrtTensor>): Record<string, TensorJson> {
  return Object.fromEntries(Object.entries(tensors).map(([name, tensor]) => [name, tensorToStoredJson(tensor)]))
}

/** Runs each sample through the model and records what it answered; a model error propagates to the caller. */
export async function seedGoldenCases(model: LoadedModel, samples: readonly Sample[]): Promise<GoldenCase[]> {
  const cases: GoldenCase[] = []
  for (const sample of samples) {
    // A failure here becomes one warning (or error) of init's own; ORT's log line on stderr would only repeat it.
    const outputs = (await model.session.run(sample.feeds, model.fetches, {logSeverityLevel: 4})) as Record<
      string,
      OrtTensor
    >
    cases.push({name: sample.name, inputs: storeAll(sample.feeds), expected: {outputs: storeAll(outputs)}})
  }
  return cases
}

export function goldenJsonl(cases: readonly GoldenCase[]): string {
  return cases.map((c) => JSON.stringify(c) + '\n').join('')
}
