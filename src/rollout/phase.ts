// The phase of a rollout as a function of (state, measurement, now), after Argo Rollouts' CalculateRolloutPhase.
import {analyzeStep} from './analysis.js'
import type {Measurement, PhaseResult, RolloutState} from './types.js'

export function calculatePhase(state: RolloutState, measurement: Measurement, now: Date): PhaseResult {
  const {stable, candidate, outcome} = state
  if (!candidate || state.stage === 'full') {
    // Nothing to judge, but nothing may be answering either: a gateway that cannot be reached is not Healthy.
    if (measurement.error)
      return {phase: 'Degraded', reason: `${stable.version} should serve all traffic, but ${measurement.error}`}
    if (outcome?.result === 'rolled-back' && outcome.version !== stable.version) {
      return {
        phase: 'RolledBack',
        reason: `${outcome.version} was rolled back (${outcome.reason}); ${stable.version} serves all traffic`,
      }
    }
    return {phase: 'Healthy', reason: `${stable.version} serves all traffic`}
  }
  const analysis = analyzeStep({
    stage: state.stage,
    measurement,
    settings: state.analysis,
    stepStartedAt: new Date(state.stepStartedAt),
    now,
    test: testOf(state),
  })
  const where = `${candidate.version} ${stageLabel(state)}`
  if (analysis.verdict === 'fail') {
    return {
      phase: 'Degraded',
      reason: `${where}: ${analysis.reason}${state.auto ? '; rolling back' : `; run "mlops rollback" to take it out`}`,
      analysis,
    }
  }
  if (!state.auto) {
    // An inconclusive step is one still waiting (for requests, or baking): its reason says for what.
    const verdict = analysis.verdict === 'pass' ? 'analysis passed' : `analysis: ${analysis.reason}`
    return {phase: 'Paused', reason: `${where}: waiting for "mlops promote" (${verdict})`, analysis}
  }
  if (analysis.verdict === 'pass')
    return {phase: 'Progressing', reason: `${where}: analysis passed; advancing to ${describeNext(state)}`, analysis}
  return {phase: 'Progressing', reason: `${where}: ${analysis.reason}`, analysis}
}

export function stageLabel(state: Pick<RolloutState, 'stage' | 'weight'>): string {
  return state.stage === 'canary' ? `canary ${state.weight}%` : state.stage
}

/** The weight `promote` goes to next: shadow → the first step, canary → the next step up; 100 means full. */
export function nextWeight(state: Pick<RolloutState, 'stage' | 'weight' | 'steps'>): number {
  if (state.stage === 'shadow') return state.steps[0] ?? 100
  return state.steps.find((step) => step > state.weight) ?? 100
}

function describeNext(state: RolloutState): string {
  const next = nextWeight(state)
  return next >= 100 ? 'full' : `canary ${next}%`
}

/** A candidate deployed with a known test verdict carries it; without one the gate decides from the settings. */
function testOf(state: RolloutState): {passed: boolean} | undefined {
  return state.candidate?.testReport ? {passed: true} : undefined
}
