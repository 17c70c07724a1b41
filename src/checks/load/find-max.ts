// The highest open-model rate that still meets the latency SLO and the error budget: double until a step fails, then bisect.
import type {LatencyGate} from '../config.js'
import type {LoadJob} from './protocol.js'
import type {LoadPhase} from './run.js'

export interface FindMaxStep {
  rate: number
  met: boolean
  /** Why the step missed, in a line. */
  why?: string
  p99Ms: number
  errorRate: number
  throughput: number
  clientSaturated: boolean
}

export interface FindMaxResult {
  /** The highest rate that met the SLO; 0 when even the first step missed. */
  maxRate: number
  /** Set when the search stopped because the load generator, not the server, ran out of room. */
  clientBound?: string
  steps: FindMaxStep[]
}

export interface Slo {
  gates: readonly LatencyGate[]
  maxErrorRate: number
  minThroughputRatio: number
}

/** Whether one step meets the SLO: every gate's percentile, the error rate, and the rate actually reached. */
export function meetsSlo(phase: LoadPhase, slo: Slo): {met: boolean; why?: string} {
  for (const g of slo.gates) {
    const value = phase.latencyMs[g.percentile]
    if (value > g.maxMs) return {met: false, why: `${g.percentile} ${value} ms > ${g.maxMs} ms`}
  }
  if (phase.errorRate > slo.maxErrorRate)
    return {met: false, why: `error rate ${(phase.errorRate * 100).toFixed(2)}% > ${slo.maxErrorRate * 100}%`}
  if (phase.rate && phase.throughput < phase.rate * slo.minThroughputRatio)
    return {
      met: false,
      why: `throughput ${phase.throughput.toFixed(1)} rps < ${(phase.rate * slo.minThroughputRatio).toFixed(1)} rps`,
    }
  return {met: true}
}

export interface FindMaxOptions {
  startRate: number
  maxRate: number
  maxSteps: number
  slo: Slo
  /** Runs one step at a rate. */
  run: (rate: number) => Promise<LoadPhase>
}

export async function findMaxRate(options: FindMaxOptions): Promise<FindMaxResult> {
  const steps: FindMaxStep[] = []
  let rate = Math.min(options.startRate, options.maxRate)
  let good: number | undefined
  let bad: number | undefined
  let clientBound: string | undefined
  for (let i = 0; i < options.maxSteps; i++) {
    const phase = await options.run(rate)
    const {met, why} = meetsSlo(phase, options.slo)
    steps.push({
      rate,
      met,
      ...(why ? {why} : {}),
      p99Ms: phase.latencyMs.p99,
      errorRate: phase.errorRate,
      throughput: phase.throughput,
      clientSaturated: phase.client.saturated,
    })
    if (!met && phase.client.saturated) {
      clientBound = `at ${rate} rps ${phase.client.reason}; the server's limit may be higher`
      break
    }
    if (met) good = rate
    else bad = rate
    if (good !== undefined && bad !== undefined && bad / good <= 1.1) break
    const next =
      bad === undefined ? Math.min(rate * 2, options.maxRate) : good === undefined ? rate / 2 : (good + bad) / 2
    if (Math.round(next) === Math.round(rate) || next < 1) break
    rate = Math.round(next)
  }
  return {maxRate: good ?? 0, ...(clientBound ? {clientBound} : {}), steps}
}

/** A job for one step: short warm-up, the step's duration, at `rate`. */
export function stepJob(
  base: Omit<LoadJob, 'mode' | 'rate' | 'durationMs' | 'warmupMs'>,
  rate: number,
  stepMs: number,
): LoadJob {
  return {...base, mode: 'open', rate, durationMs: stepMs, warmupMs: Math.min(1000, stepMs / 3)}
}
