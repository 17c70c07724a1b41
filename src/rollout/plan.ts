// Deploy, promote and roll back as pure functions from the current desired state to the next one (Argo's getPatches).
import {UsageError} from '../errors.js'
import type {DeploySettings} from './config.js'
import {nextWeight, stageLabel} from './phase.js'
import type {Change, Outcome, PhaseResult, Release, RolloutState, Stage, StagePoint} from './types.js'

export interface Transition {
  state: RolloutState
  change: Change
}

export interface DeployRequest {
  release: Release
  stage: Stage
  /** Canary weight in percent (canary only). */
  weight?: number
  auto: boolean
  settings: DeploySettings
  /** Who starts it: the gateway records its own automatic changes under this name. */
  actor?: string
}

export function planDeploy(
  current: RolloutState | undefined,
  request: DeployRequest,
  now: Date,
): Transition | undefined {
  const {release, settings} = request
  if (current?.candidate) {
    throw new UsageError(
      'ROLLOUT_IN_PROGRESS',
      `${current.candidate.version} is being rolled out (${stageLabel(current)}); finish that rollout first`,
      {hint: 'Run "mlops promote" to go on with it or "mlops rollback" to take it out, then deploy again.'},
    )
  }
  if (current && current.stable.version === release.version && (current.stable.digest ?? '') === (release.digest ?? ''))
    return undefined
  const weight = request.stage === 'canary' ? (request.weight ?? settings.steps[0] ?? 100) : 0
  const stage: Stage = request.stage === 'canary' && weight >= 100 ? 'full' : request.stage
  if (stage !== 'full' && !current) {
    throw new UsageError(
      'NO_STABLE_RELEASE',
      `nothing is deployed yet, so ${release.version} has nothing to be compared with in a ${stage}`,
      {hint: `Deploy the first release with "mlops deploy ${release.version} --full".`},
    )
  }
  const base = {
    schemaVersion: 1 as const,
    revision: (current?.revision ?? 0) + 1,
    auto: request.auto,
    stepStartedAt: now.toISOString(),
    steps: settings.steps,
    analysis: settings.analysis,
    shadowShare: settings.shadowShare,
    mirrorMaxInFlight: settings.mirrorMaxInFlight,
    mirrorConcurrency: settings.mirrorConcurrency,
    ...(settings.stickyHeader ? {stickyHeader: settings.stickyHeader} : {}),
    port: current?.port ?? settings.port,
    ...(settings.auth && settings.auth.mode !== 'none' ? {auth: settings.auth} : {}),
    ...(settings.tls ? {tls: settings.tls} : {}),
    ...(request.actor ? {startedBy: request.actor} : {}),
  }
  const from = current ? point(current) : undefined
  if (stage === 'full') {
    const state: RolloutState = {
      ...base,
      stable: release,
      stage: 'full',
      weight: 0,
      outcome: {version: release.version, result: 'promoted', reason: 'deployed in full', at: now.toISOString()},
    }
    return {
      state,
      change: change(
        'deploy',
        release,
        from,
        state,
        current ? `replaces ${current.stable.version} in full` : 'first release',
      ),
    }
  }
  const state: RolloutState = {
    ...base,
    stable: current!.stable,
    candidate: release,
    stage,
    weight,
    ...(current!.outcome ? {outcome: current!.outcome} : {}),
  }
  return {
    state,
    change: change(
      'deploy',
      release,
      from,
      state,
      `${stageLabel(state)} next to ${current!.stable.version}${request.auto ? ', advancing by itself while analysis passes' : ''}`,
    ),
  }
}

export interface PromoteRequest {
  /** Canary weight to go to; 100 or past the last step means full. Default: the next step. */
  to?: number
  reason?: string
  /** Decided by the analysis (--auto) rather than by a person. */
  automatic?: boolean
}

export function planPromote(current: RolloutState | undefined, request: PromoteRequest, now: Date): Transition {
  const state = requireCandidate(current, 'promote')
  const candidate = state.candidate!
  const target = request.to ?? nextWeight(state)
  if (state.stage === 'canary' && target === state.weight) {
    throw new UsageError('ALREADY_AT_WEIGHT', `${candidate.version} already gets ${target}% of the traffic`, {
      hint: 'Pass another --to, or run "mlops promote" for the next step.',
    })
  }
  if (state.stage === 'canary' && target < state.weight) {
    throw new UsageError(
      'PROMOTE_BACKWARDS',
      `promote only moves forward: ${candidate.version} gets ${state.weight}% of the traffic, more than --to ${target}`,
      {
        hint: `To give it less, take it out ("mlops rollback") and deploy it again with "mlops deploy ${candidate.version} --canary ${target}".`,
      },
    )
  }
  const from = point(state)
  const base = {...state, revision: state.revision + 1, stepStartedAt: now.toISOString()}
  if (target >= 100) {
    const {candidate: _, ...rest} = base
    const next: RolloutState = {
      ...rest,
      stable: candidate,
      stage: 'full',
      weight: 0,
      outcome: {
        version: candidate.version,
        result: 'promoted',
        reason: request.reason ?? 'promoted',
        at: now.toISOString(),
      },
    }
    return {
      state: next,
      change: {
        ...change(
          'promote',
          candidate,
          from,
          next,
          request.reason ?? `promoted to full; ${state.stable.version} retired`,
        ),
        automatic: Boolean(request.automatic),
      },
    }
  }
  const next: RolloutState = {...base, stage: 'canary', weight: target}
  return {
    state: next,
    change: {
      ...change('promote', candidate, from, next, request.reason ?? `to canary ${target}%`),
      automatic: Boolean(request.automatic),
    },
  }
}

export interface RollbackRequest {
  reason?: string
  gate?: string
  automatic?: boolean
}

export function planRollback(current: RolloutState | undefined, request: RollbackRequest, now: Date): Transition {
  const state = requireCandidate(current, 'rollback')
  const candidate = state.candidate!
  const reason = request.reason ?? 'rolled back by hand'
  const {candidate: _, ...rest} = state
  const next: RolloutState = {
    ...rest,
    revision: state.revision + 1,
    stage: 'full',
    weight: 0,
    stepStartedAt: now.toISOString(),
    outcome: {
      version: candidate.version,
      result: 'rolled-back',
      reason,
      ...(request.gate ? {gate: request.gate} : {}),
      at: now.toISOString(),
    },
  }
  return {
    state: next,
    change: {
      ...change('rollback', candidate, point(state), next, reason),
      automatic: Boolean(request.automatic),
      ...(request.gate ? {gate: request.gate} : {}),
    },
  }
}

/**
 * A release whose pods never became available (Kubernetes: image pull errors, crash loops) while the next state was
 * prepared. The candidate in progress is rolled back as "mlops rollback" would: the state goes on without it. A new
 * release got no traffic: the state stays what it was, with the outcome and a ledger entry that say why. Stable's pods
 * roll nothing back (stable was not changed and keeps its place): undefined, and the command fails with nothing recorded.
 */
export function planUnavailable(
  current: RolloutState,
  version: string,
  reason: string,
  now: Date,
): Transition | undefined {
  if (version === current.stable.version) return undefined
  const why = `never became available: ${reason}`
  if (version === current.candidate?.version)
    return planRollback(current, {reason: why, gate: 'deadline', automatic: true}, now)
  const outcome: Outcome = {version, result: 'rolled-back', reason, gate: 'deadline', at: now.toISOString()}
  const state: RolloutState = {...current, revision: current.revision + 1, outcome}
  return {
    state,
    change: {
      action: 'rollback',
      automatic: true,
      version,
      from: point(current),
      to: point(state),
      reason: why,
      gate: 'deadline',
    },
  }
}

/** What the gateway does by itself under --auto: the next step when the analysis passes, a rollback when it fails. */
export function decideAuto(state: RolloutState, phase: PhaseResult, now: Date): Transition | undefined {
  if (!state.auto || !state.candidate || !phase.analysis) return undefined
  const {analysis} = phase
  if (analysis.verdict === 'pass')
    return planPromote(
      state,
      {automatic: true, reason: `analysis passed at ${stageLabel(state)}: ${analysis.reason}`},
      now,
    )
  if (analysis.verdict === 'fail')
    return planRollback(
      state,
      {
        automatic: true,
        reason: `analysis failed at ${stageLabel(state)}: ${analysis.reason}`,
        gate: analysis.failedGate,
      },
      now,
    )
  return undefined
}

export function point(state: RolloutState): StagePoint {
  return {
    stage: state.stage,
    weight: state.weight,
    stable: state.stable.version,
    ...(state.candidate ? {candidate: state.candidate.version} : {}),
  }
}

function requireCandidate(current: RolloutState | undefined, verb: 'promote' | 'rollback'): RolloutState {
  if (!current)
    throw new UsageError(
      'NOT_DEPLOYED',
      `nothing is deployed, so there is nothing to ${verb === 'rollback' ? 'roll back' : verb}`,
      {hint: 'Deploy a first release with "mlops deploy VERSION --full".'},
    )
  if (!current.candidate) {
    const hint =
      verb === 'promote'
        ? 'Start a rollout with "mlops deploy VERSION --shadow" or "--canary 5".'
        : `To go back to an earlier release, deploy it: "mlops deploy VERSION --full" (see "mlops history").`
    throw new UsageError('NO_ROLLOUT', `no rollout is in progress: ${current.stable.version} serves all traffic`, {
      hint,
    })
  }
  return current
}

function change(
  action: Change['action'],
  release: Release,
  from: StagePoint | undefined,
  to: RolloutState,
  reason: string,
): Change {
  return {
    action,
    automatic: false,
    version: release.version,
    ...(release.digest ? {digest: release.digest} : {}),
    ...(release.image ? {image: release.image} : {}),
    ...(from ? {from} : {}),
    to: point(to),
    reason,
  }
}
