// States and measurements for the pure rollout tables.
import {deploySettings} from '../../src/rollout/config.js'
import type {RolloutState, StepMetrics, VersionStats} from '../../src/rollout/types.js'

export const T0 = new Date('2025-01-01T00:00:00.000Z')
export const at = (seconds: number): Date => new Date(T0.getTime() + seconds * 1000)

/** Analysis: 100 requests, 60 s bake, 600 s deadline, +1% errors, 1.5x p99 + 5 ms, 99% agreement. */
export const settings = deploySettings({steps: [5, 25, 50]})

export function stable(version = '1.0.0'): RolloutState {
  return {
    schemaVersion: 1,
    revision: 1,
    stable: {version, ref: version},
    stage: 'full',
    weight: 0,
    auto: false,
    stepStartedAt: T0.toISOString(),
    steps: settings.steps,
    analysis: settings.analysis,
    shadowShare: 1,
    mirrorMaxInFlight: 64,
    mirrorConcurrency: 2,
    port: 8080,
  }
}

export function rollout(stage: 'shadow' | 'canary', weight: number, auto: boolean): RolloutState {
  return {...stable(), revision: 2, candidate: {version: '1.1.0', ref: '1.1.0'}, stage, weight, auto}
}

export function stats(requests: number, errors = 0, p99Ms = 2): VersionStats {
  return {requests, errors, p50Ms: p99Ms / 2, p99Ms}
}

export function metrics(
  stableStats: VersionStats,
  candidateStats: VersionStats,
  shadow?: {compared: number; agreed: number; labelFlips?: number},
): StepMetrics {
  return {
    since: T0.toISOString(),
    stable: stableStats,
    candidate: candidateStats,
    candidateReady: true,
    ...(shadow
      ? {
          shadow: {
            mirrored: shadow.compared,
            dropped: 0,
            compared: shadow.compared,
            agreed: shadow.agreed,
            labelFlips: shadow.labelFlips ?? 0,
            maxScoreDiff: 0,
            meanScoreDiff: 0,
          },
        }
      : {}),
  }
}
