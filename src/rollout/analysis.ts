// Judges one step of a rollout from what the gateway measured: each gate passes, fails or has too little data yet.
import erfinv from '@stdlib/math-base-special-erfinv'

import type {AnalysisSettings, OutcomeGateSettings} from './config.js'
import type {Analysis, GateResult, Measurement, OutcomeCounts, Stage, StepMetrics, VersionStats} from './types.js'

export interface AnalysisInput {
  stage: Exclude<Stage, 'full'>
  measurement: Measurement
  settings: AnalysisSettings
  stepStartedAt: Date
  now: Date
  /** The `mlops test` gate: whether a report for the candidate's digest passed, when one is known. */
  test?: {passed: boolean}
}

export function analyzeStep(input: AnalysisInput): Analysis {
  const {settings, measurement} = input
  const elapsedMs = Math.max(0, input.now.getTime() - input.stepStartedAt.getTime())
  if (!measurement.metrics) {
    const message = `no measurement: ${measurement.error ?? 'the gateway gave no metrics'}`
    return {
      verdict: 'fail',
      reason: message,
      gates: [{gate: 'measurement', verdict: 'fail', message}],
      failedGate: 'measurement',
      elapsedMs,
    }
  }
  const metrics = measurement.metrics
  const gates: GateResult[] = []
  if (Date.parse(metrics.since) !== input.stepStartedAt.getTime()) {
    // Read between a state written and the gateway following it: these figures are another step's, never this one's.
    gates.push({gate: 'measurement', verdict: 'inconclusive', message: 'the gateway has not switched to this step yet'})
  } else {
    if (settings.requireTest || input.test) gates.push(testGate(input.test))
    gates.push(errorRateGate(metrics, settings), latencyGate(metrics, settings, input.stage))
    if (input.stage === 'shadow') {
      if (!measurement.agreementUnavailable) gates.push(agreementGate(metrics, settings))
    } else if (settings.outcome) gates.push(outcomeGate(metrics, settings.outcome))
  }

  const failed = gates.find((g) => g.verdict === 'fail')
  if (failed) return {verdict: 'fail', reason: failed.message, gates, failedGate: failed.gate, elapsedMs}
  const waiting = gates.find((g) => g.verdict === 'inconclusive')
  if (waiting) {
    if (elapsedMs >= settings.deadlineMs) {
      const message = `still inconclusive after ${seconds(elapsedMs)} (deadline ${seconds(settings.deadlineMs)}): ${waiting.message}`
      return {
        verdict: 'fail',
        reason: message,
        gates: [...gates, {gate: 'deadline', verdict: 'fail', message}],
        failedGate: 'deadline',
        elapsedMs,
      }
    }
    return {verdict: 'inconclusive', reason: waiting.message, gates, elapsedMs}
  }
  if (elapsedMs < settings.bakeMs)
    return {
      verdict: 'inconclusive',
      reason: `baking ${seconds(elapsedMs)} of ${seconds(settings.bakeMs)} with every gate passing`,
      gates,
      elapsedMs,
    }
  return {verdict: 'pass', reason: `every gate passed after ${seconds(elapsedMs)}`, gates, elapsedMs}
}

function testGate(test: {passed: boolean} | undefined): GateResult {
  if (!test)
    return {
      gate: 'test',
      verdict: 'fail',
      message: 'no passed "mlops test" report for the candidate (deploy.analysis.gates.test.required)',
    }
  return test.passed
    ? {gate: 'test', verdict: 'pass', message: '"mlops test" passed'}
    : {gate: 'test', verdict: 'fail', message: '"mlops test" failed for the candidate'}
}

/** Both versions need `minRequests` in the step; a verdict on fewer would be noise. */
function tooFew(metrics: StepMetrics, settings: AnalysisSettings, gate: GateResult['gate']): GateResult | undefined {
  const {stable, candidate} = metrics
  if (!metrics.candidateReady && candidate.requests === 0)
    return {gate, verdict: 'inconclusive', message: 'the candidate is not ready yet'}
  const need = settings.minRequests
  const missing = Math.max(0, need - candidate.requests) + Math.max(0, need - stable.requests)
  if (missing === 0) return undefined
  // Counters stop at their target: past it, more requests change nothing for this gate.
  const count = (n: number) => `${Math.min(n, need)}/${need}${n >= need ? ' ✓' : ''}`
  return {
    gate,
    verdict: 'inconclusive',
    message: `waiting for ${missing} more requests: candidate ${count(candidate.requests)}, stable ${count(stable.requests)}`,
  }
}

function errorRateGate(metrics: StepMetrics, settings: AnalysisSettings): GateResult {
  const few = tooFew(metrics, settings, 'error_rate')
  if (few) return few
  const candidate = rate(metrics.candidate)
  const stable = rate(metrics.stable)
  const increase = candidate - stable
  const figures = `candidate ${percent(candidate)} vs stable ${percent(stable)}`
  if (increase > settings.maxErrorRateIncrease) {
    return {
      gate: 'error_rate',
      verdict: 'fail',
      observed: increase,
      threshold: settings.maxErrorRateIncrease,
      message: `error rate: ${figures}, up ${percent(increase)} (at most ${percent(settings.maxErrorRateIncrease)})`,
    }
  }
  return {
    gate: 'error_rate',
    verdict: 'pass',
    observed: increase,
    threshold: settings.maxErrorRateIncrease,
    message: `error rate: ${figures}, up at most ${percent(settings.maxErrorRateIncrease)}`,
  }
}

/**
 * Compares p99s once the candidate answers clients. In shadow it compares medians: there the candidate runs at
 * background CPU priority so that it never slows the answers clients wait for, and its tail is time spent waiting for
 * the CPU whenever anything else on the machine is busy, a figure about the machine rather than the model (a
 * healthy candidate read 62 ms at p99 next to stable's 9 ms while a CI job started a process). The median still
 * shows a model that is slower at its work; the first canary step judges the tail at equal priority.
 */
function latencyGate(metrics: StepMetrics, settings: AnalysisSettings, stage: AnalysisInput['stage']): GateResult {
  const few = tooFew(metrics, settings, 'latency')
  if (few) return few
  const quantile = stage === 'shadow' ? 'p50' : 'p99'
  const candidate = quantile === 'p50' ? metrics.candidate.p50Ms : metrics.candidate.p99Ms
  const stable = quantile === 'p50' ? metrics.stable.p50Ms : metrics.stable.p99Ms
  if (candidate === undefined || stable === undefined)
    return {
      gate: 'latency',
      verdict: 'fail',
      message: `latency: no ${quantile} was measured although requests were counted`,
    }
  const limit = stable * settings.maxP99Ratio + settings.p99SlackMs
  const ratio = stable > 0 ? candidate / stable : Number.POSITIVE_INFINITY
  const figures = `${quantile} candidate ${ms(candidate)} vs stable ${ms(stable)}${quantile === 'p50' ? ' (medians in shadow, where the candidate runs at background priority)' : ''}`
  if (candidate > limit)
    return {
      gate: 'latency',
      verdict: 'fail',
      observed: ratio,
      threshold: settings.maxP99Ratio,
      message: `latency: ${figures}, above ${ms(limit)} (${settings.maxP99Ratio}x + ${settings.p99SlackMs} ms)`,
    }
  return {
    gate: 'latency',
    verdict: 'pass',
    observed: ratio,
    threshold: settings.maxP99Ratio,
    message: `latency: ${figures}, within ${ms(limit)} (${settings.maxP99Ratio}x + ${settings.p99SlackMs} ms)`,
  }
}

function agreementGate(metrics: StepMetrics, settings: AnalysisSettings): GateResult {
  const shadow = metrics.shadow
  const compared = shadow?.compared ?? 0
  if (!shadow || compared < settings.minRequests)
    return {
      gate: 'agreement',
      verdict: 'inconclusive',
      message: `waiting for ${settings.minRequests - compared} more answers: ${compared}/${settings.minRequests} compared`,
    }
  const agreement = shadow.agreed / compared
  const figures = `${percent(agreement)} of ${compared} answers agree, ${shadow.labelFlips} label flips, max score difference ${shadow.maxScoreDiff.toPrecision(3)}`
  if (agreement < settings.minAgreement)
    return {
      gate: 'agreement',
      verdict: 'fail',
      observed: agreement,
      threshold: settings.minAgreement,
      message: `agreement: ${figures} (at least ${percent(settings.minAgreement)})`,
    }
  return {
    gate: 'agreement',
    verdict: 'pass',
    observed: agreement,
    threshold: settings.minAgreement,
    message: `agreement: ${figures} (at least ${percent(settings.minAgreement)})`,
  }
}

/**
 * A/B on results (canary): stable's accuracy minus the candidate's on the predictions whose truth arrived, with a
 * one-sided normal interval on that drop (the two-proportion test's, unpooled). Passes once the interval's upper end is
 * within max_drop (no worse than allowed), fails once its lower end is past it (worse, beyond chance); between the two it
 * waits for more truth, and the step's deadline decides if it never comes. Values are judged by mean absolute error.
 */
export function outcomeGate(metrics: StepMetrics, gate: OutcomeGateSettings): GateResult {
  const {stable, candidate} = metrics.outcomes ?? {stable: undefined, candidate: undefined}
  const [nc, ns] = [candidate?.labeled ?? 0, stable?.labeled ?? 0]
  if (nc < gate.minSamples || ns < gate.minSamples)
    return {
      gate: 'outcome',
      verdict: 'inconclusive',
      message: `waiting for truth: candidate ${nc}/${gate.minSamples} labeled predictions, stable ${ns}/${gate.minSamples}`,
    }
  const z = Math.SQRT2 * erfinv(2 * gate.confidence - 1)
  if (candidate!.absError !== undefined || stable!.absError !== undefined) return maeGate(candidate!, stable!, gate, z)
  const pc = candidate!.correct / nc
  const ps = stable!.correct / ns
  const drop = ps - pc
  const half = z * Math.sqrt((ps * (1 - ps)) / ns + (pc * (1 - pc)) / nc)
  const figures = `accuracy candidate ${percent(pc)} (${nc} labeled) vs stable ${percent(ps)} (${ns}), drop ${percent(drop)} ± ${percent(half)}`
  const common = {gate: 'outcome' as const, observed: drop, threshold: gate.maxDrop}
  if (drop - half > gate.maxDrop)
    return {...common, verdict: 'fail', message: `outcome: ${figures}, past the ${percent(gate.maxDrop)} allowed`}
  if (drop + half <= gate.maxDrop) return {...common, verdict: 'pass', message: `outcome: ${figures}`}
  return {
    ...common,
    verdict: 'inconclusive',
    message: `outcome: ${figures}; not yet conclusive against ${percent(gate.maxDrop)}`,
  }
}

/**
 * Values (regressors): the candidate's mean absolute error against max_mae_ratio times stable's, by a one-sided normal
 * interval on the difference (each version's own variance of absolute errors, Welch's): fails once the candidate is
 * worse than the ratio beyond chance, passes once it is within it beyond chance, and waits in between.
 */
function maeGate(candidate: OutcomeCounts, stable: OutcomeCounts, gate: OutcomeGateSettings, z: number): GateResult {
  const side = (c: OutcomeCounts) => {
    const mean = (c.absError ?? 0) / c.labeled
    const variance = Math.max(0, ((c.absErrorSq ?? 0) / c.labeled - mean * mean) * (c.labeled / (c.labeled - 1 || 1)))
    return {mean, variance, n: c.labeled}
  }
  const [c, s] = [side(candidate), side(stable)]
  const r = gate.maxMaeRatio
  const excess = c.mean - r * s.mean
  const half = z * Math.sqrt(c.variance / c.n + (r * r * s.variance) / s.n)
  const ratio = s.mean > 0 ? `, ratio ${(c.mean / s.mean).toFixed(2)}` : ''
  const figures = `MAE candidate ${c.mean.toPrecision(4)} (${c.n} with truth) vs stable ${s.mean.toPrecision(4)} (${s.n})${ratio}`
  const common = {gate: 'outcome' as const, observed: s.mean > 0 ? c.mean / s.mean : 0, threshold: r}
  if (excess - half > 0)
    return {...common, verdict: 'fail', message: `outcome: ${figures}, past ${r}× stable's allowed`}
  if (excess + half <= 0) return {...common, verdict: 'pass', message: `outcome: ${figures} (at most ${r}× stable's)`}
  return {...common, verdict: 'inconclusive', message: `outcome: ${figures}; not yet conclusive against ${r}× stable's`}
}

function rate(stats: VersionStats): number {
  return stats.requests === 0 ? 0 : stats.errors / stats.requests
}

function percent(value: number): string {
  return `${(value * 100).toFixed(value !== 0 && Math.abs(value) < 0.01 ? 2 : 1)}%`
}

function ms(value: number): string {
  return `${value < 10 ? value.toFixed(2) : value.toFixed(0)} ms`
}

function seconds(valueMs: number): string {
  return `${Math.round(valueMs / 1000)}s`
}
