// Predictions for `mlops monitor --input`: the batch goes through the artifact's own pipeline and model, as `mlops predict`
// runs it, so prediction drift is measured on the answers this version gives.
import {UsageError} from '../errors.js'
import {InferenceEngine} from '../serve/engine.js'
import {loadServable} from '../serve/load.js'
import {Predictor} from '../serve/predictor.js'
import type {Score} from './current.js'

export interface Scorer {
  score: Score
  release(): Promise<void>
}

/** Loads the artifact `ref` of the project in `dir` (no server, no warm-up) and scores records with it. */
export async function artifactScorer(dir: string, ref: string): Promise<Scorer> {
  const {model, settings, pipeline} = await loadServable({dir, ref})
  if (!pipeline) {
    await model.session.release()
    throw new UsageError(
      'ARTIFACT_NO_PIPELINE',
      `artifact ${ref} has no pipeline, so the records of --input cannot be scored`,
      {hint: 'Package the model with a pipeline section in mlops.yaml.'},
    )
  }
  const predictor = new Predictor(
    new InferenceEngine({model, batching: settings.batching, maxQueue: Number.POSITIVE_INFINITY}),
    pipeline,
  )
  return {
    async score(records) {
      const outcomes = await predictor.predictEach(records)
      return outcomes.map((outcome) =>
        'problem' in outcome ? undefined : (outcome.prediction as Record<string, unknown>),
      )
    },
    release: () => model.session.release(),
  }
}
