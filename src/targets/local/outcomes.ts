// For the outcome gate: the step's predictions per version (from the request log) joined to the truth that arrived, recounted every second.
import {type Feedback, feedbackPath, readFeedback} from '../../feedback/store.js'
import {rotatedFiles} from '../../monitor/current.js'
import {type LoggedPrediction, firstNumericField, readPredictions, scalar} from '../../monitor/performance.js'
import type {OutcomeCounts, RolloutState, StepMetrics} from '../../rollout/types.js'

type Outcomes = NonNullable<StepMetrics['outcomes']>

/**
 * Counts per version: predictions, those whose truth arrived, and for a label how many `field` equals (default label),
 * for a value the sums of the absolute error of `field` (default the prediction's first numeric field) and its square.
 */
export function countOutcomes(
  predictions: LoggedPrediction[],
  truths: Map<string, Feedback>,
  versions: {stable: string; candidate: string},
  field: string | undefined,
): Outcomes {
  const zero = (): OutcomeCounts => ({predictions: 0, labeled: 0, correct: 0})
  const out: Outcomes = {stable: zero(), candidate: zero()}
  for (const p of predictions) {
    const counts =
      p.version === versions.candidate ? out.candidate : p.version === versions.stable ? out.stable : undefined
    if (!counts) continue
    counts.predictions++
    const truth = truths.get(p.id)
    if (typeof truth?.value === 'number') {
      const name = field ?? firstNumericField(p.prediction)
      const predicted = name === undefined ? undefined : scalar(p.prediction[name])
      if (typeof predicted !== 'number' || !Number.isFinite(predicted)) continue
      const error = Math.abs(predicted - truth.value)
      counts.labeled++
      counts.absError = (counts.absError ?? 0) + error
      counts.absErrorSq = (counts.absErrorSq ?? 0) + error * error
    } else if (truth?.label !== undefined) {
      counts.labeled++
      if (String(p.prediction[field ?? 'label']) === String(truth.label)) counts.correct++
    }
  }
  return out
}

export class OutcomeWatcher {
  private latest?: {since: string; outcomes: Outcomes}
  private timer?: NodeJS.Timeout
  private state?: RolloutState
  private counting = false

  constructor(private readonly log: (line: string) => void) {}

  /** Follows the rollout: counting runs during a canary with an outcome gate, and stops otherwise. */
  use(state: RolloutState): void {
    this.state = state
    const wanted = state.stage === 'canary' && Boolean(state.candidate) && Boolean(state.analysis.outcome)
    if (wanted && !this.timer) this.timer = setInterval(() => void this.count(), 1000).unref()
    if (!wanted) this.close()
  }

  /** The counts of the step that began at `since`, once counted. */
  snapshot(since: string): Outcomes | undefined {
    return this.latest?.since === since ? this.latest.outcomes : undefined
  }

  close(): void {
    clearInterval(this.timer)
    this.timer = undefined
  }

  private async count(): Promise<void> {
    const state = this.state
    const gate = state?.analysis.outcome
    if (this.counting || !state?.candidate || !gate) return
    this.counting = true
    try {
      const since = state.stepStartedAt
      const predictions = await readPredictions(rotatedFiles(gate.requestLog), Date.parse(since), Date.now())
      const truths = await readFeedback(feedbackPath(gate.requestLog))
      const versions = {stable: state.stable.version, candidate: state.candidate.version}
      this.latest = {since, outcomes: countOutcomes(predictions, truths, versions, gate.prediction)}
    } catch (error) {
      this.log(`outcome gate: cannot count outcomes (${(error as Error).message})`)
    } finally {
      this.counting = false
    }
  }
}
