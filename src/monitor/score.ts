// Predictions for `mlops monitor --input`: the batch goes through the artifact's own pipeline and model, as `mlops predict`
// runs it, so prediction drift is measured on the answers this version gives.
import {ExtraColumns} from '../data/columns.js'
import {UsageError} from '../errors.js'
import {InferenceEngine} from '../serve/engine.js'
import {loadServable} from '../serve/load.js'
import {Predictor} from '../serve/predictor.js'
import type {Score} from './current.js'

export interface Scorer {
  score: Score
  /** Columns left out of the records scored, as `mlops predict` leaves them out (none with `strict`). */
  ignoredColumns(): string[]
  release(): Promise<void>
}

/**
 * Loads the artifact `ref` of the project in `dir` (no server, no warm-up) and scores records with it. `strict`: a
 * record with a column the model does not read is refused (not scored) rather than scored without it.
 */
export async function artifactScorer(dir: string, ref: string, strict = false): Promise<Scorer> {
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
  const extra = strict ? undefined : new ExtraColumns(pipeline.requestSchema)
  return {
    async score(records) {
      const outcomes = await predictor.predictEach(extra ? records.map((record) => extra.strip(record)) : records)
      return outcomes.map((outcome) =>
        'problem' in outcome ? undefined : (outcome.prediction as Record<string, unknown>),
      )
    },
    ignoredColumns: () => extra?.ignored ?? [],
    release: () => model.session.release(),
  }
}
