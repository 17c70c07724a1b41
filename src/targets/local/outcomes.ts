// For the outcome gate: the step's predictions per version (from the request log) joined to the truth that arrived,
// recounted every second, or less often when a count takes long (a large log): counting takes a tenth of a core at most.
import {statSync} from 'node:fs'

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

/** Counts start this long apart at least, and ten times as long as the last one took. */
const COUNT_EVERY_MS = 1000

/** The log and its rotated files that may hold entries from `since` on: a file last written before it holds none. */
function filesSince(requestLog: string, since: number): string[] {
  return rotatedFiles(requestLog).filter((file) => {
    try {
      return statSync(file).mtimeMs >= since
    } catch {
      return false // rotated away meanwhile
    }
  })
}

export class OutcomeWatcher {
  private latest?: {since: string; outcomes: Outcomes}
  private timer?: NodeJS.Timeout
  /** Bumped by each start and stop, so a count that ends after a stop and a new start does not start a second loop. */
  private generation = 0
  private state?: RolloutState
  private counting = false

  constructor(private readonly log: (line: string) => void) {}

  /** Follows the rollout: counting runs during a canary with an outcome gate, and stops otherwise. */
  use(state: RolloutState): void {
    this.state = state
    const wanted = state.stage === 'canary' && Boolean(state.candidate) && Boolean(state.analysis.outcome)
    if (!wanted) this.close()
    else if (!this.timer) this.schedule(COUNT_EVERY_MS, ++this.generation)
  }

  /** The counts of the step that began at `since`, once counted. */
  snapshot(since: string): Outcomes | undefined {
    return this.latest?.since === since ? this.latest.outcomes : undefined
  }

  close(): void {
    this.generation++
    clearTimeout(this.timer)
    this.timer = undefined
  }

  private schedule(delayMs: number, generation: number): void {
    this.timer = setTimeout(() => {
      const started = performance.now()
      void this.count().finally(() => {
        if (generation === this.generation)
          this.schedule(Math.max(COUNT_EVERY_MS, 10 * (performance.now() - started)), generation)
      })
    }, delayMs).unref()
  }

  private async count(): Promise<void> {
    const state = this.state
    const gate = state?.analysis.outcome
    if (this.counting || !state?.candidate || !gate) return
    this.counting = true
    try {
      const since = state.stepStartedAt
      const from = Date.parse(since)
      const predictions = await readPredictions(filesSince(gate.requestLog, from), from, Date.now())
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
