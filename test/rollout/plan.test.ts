import assert from 'node:assert/strict'

import {calculatePhase} from '../../src/rollout/phase.js'
import {decideAuto, planDeploy, planPromote, planRollback, planUnavailable} from '../../src/rollout/plan.js'
import type {Measurement, Phase, RolloutState} from '../../src/rollout/types.js'
import {T0, at, metrics, rollout, settings, stable, stats} from './fixtures.js'

const passing: Measurement = {metrics: metrics(stats(2000), stats(200), {compared: 200, agreed: 200})}
const failing: Measurement = {metrics: metrics(stats(2000), stats(200, 50))}
const thin: Measurement = {metrics: metrics(stats(2000), stats(20))}

describe('rollout phase', () => {
  const rolledBack: RolloutState = {
    ...stable(),
    outcome: {version: '1.1.0', result: 'rolled-back', reason: 'error rate up', at: T0.toISOString()},
  }
  const rows: {
    name: string
    state: RolloutState
    measurement: Measurement
    seconds: number
    phase: Phase
    reason: RegExp
  }[] = [
    {
      name: 'stable alone is Healthy',
      state: stable(),
      measurement: {},
      seconds: 0,
      phase: 'Healthy',
      reason: /^1.0.0 serves all traffic$/,
    },
    {
      name: 'after a rollback, RolledBack names the version and why',
      state: rolledBack,
      measurement: {},
      seconds: 0,
      phase: 'RolledBack',
      reason: /1.1.0 was rolled back \(error rate up\); 1.0.0 serves/,
    },
    {
      name: 'a later full deploy is Healthy again',
      state: {...rolledBack, stable: {version: '1.1.0'}},
      measurement: {},
      seconds: 0,
      phase: 'Healthy',
      reason: /1.1.0 serves all traffic/,
    },
    {
      name: 'stable alone with the gateway down is Degraded',
      state: stable(),
      measurement: {error: 'the gateway is not running'},
      seconds: 0,
      phase: 'Degraded',
      reason: /1.0.0 should serve all traffic, but the gateway is not running/,
    },
    {
      name: 'manual canary is Paused waiting for promote',
      state: rollout('canary', 5, false),
      measurement: passing,
      seconds: 60,
      phase: 'Paused',
      reason: /canary 5%: waiting for "mlops promote" \(analysis passed\)/,
    },
    {
      name: 'manual canary with thin data says why',
      state: rollout('canary', 5, false),
      measurement: thin,
      seconds: 60,
      phase: 'Paused',
      reason: /analysis: waiting for 80 more requests: candidate 20\/100/,
    },
    {
      name: 'manual canary failing is Degraded with the command to run',
      state: rollout('canary', 5, false),
      measurement: failing,
      seconds: 1,
      phase: 'Degraded',
      reason: /error rate: candidate 25.0%.*run "mlops rollback"/,
    },
    {
      name: 'auto canary baking is Progressing',
      state: rollout('canary', 25, true),
      measurement: passing,
      seconds: 10,
      phase: 'Progressing',
      reason: /canary 25%: baking 10s of 60s with every gate passing/,
    },
    {
      name: 'auto canary passed advances to the next step',
      state: rollout('canary', 25, true),
      measurement: passing,
      seconds: 60,
      phase: 'Progressing',
      reason: /advancing to canary 50%/,
    },
    {
      name: 'auto canary at the last step advances to full',
      state: rollout('canary', 50, true),
      measurement: passing,
      seconds: 60,
      phase: 'Progressing',
      reason: /advancing to full/,
    },
    {
      name: 'auto shadow passed advances to the first step',
      state: rollout('shadow', 0, true),
      measurement: passing,
      seconds: 60,
      phase: 'Progressing',
      reason: /1.1.0 shadow: analysis passed; advancing to canary 5%/,
    },
    {
      name: 'auto failing is Degraded, rolling back',
      state: rollout('canary', 5, true),
      measurement: failing,
      seconds: 1,
      phase: 'Degraded',
      reason: /rolling back$/,
    },
    {
      name: 'an unreachable gateway is Degraded, not Healthy',
      state: rollout('canary', 5, true),
      measurement: {error: 'the gateway is not running'},
      seconds: 1,
      phase: 'Degraded',
      reason: /no measurement: the gateway is not running/,
    },
  ]
  for (const row of rows) {
    it(row.name, () => {
      const result = calculatePhase(row.state, row.measurement, at(row.seconds))
      assert.equal(result.phase, row.phase, result.reason)
      assert.match(result.reason, row.reason)
    })
  }
})

describe('rollout transitions', () => {
  const request = (stage: 'full' | 'shadow' | 'canary', weight?: number) => ({
    release: {version: '1.1.0', ref: '1.1.0'},
    stage,
    weight,
    auto: false,
    settings,
  })

  it('a first release goes in full and is recorded as promoted', () => {
    const t = planDeploy(undefined, {...request('full'), release: {version: '1.0.0'}}, T0)!
    assert.deepEqual(
      [t.state.stage, t.state.stable.version, t.state.candidate, t.state.revision],
      ['full', '1.0.0', undefined, 1],
    )
    assert.deepEqual(t.change.to, {stage: 'full', weight: 0, stable: '1.0.0'})
    assert.equal(t.change.from, undefined)
    assert.equal(t.change.reason, 'first release')
  })

  it('shadow or canary need a stable release to compare with', () => {
    assert.throws(() => planDeploy(undefined, request('shadow'), T0), {
      code: 'NO_STABLE_RELEASE',
      hint: /mlops deploy 1.1.0 --full/,
    })
  })

  it('deploy starts shadow and canary next to the stable release; canary defaults to the first step', () => {
    const shadow = planDeploy(stable(), request('shadow'), at(5))!
    assert.deepEqual(
      [shadow.state.stage, shadow.state.weight, shadow.state.candidate?.version, shadow.state.stepStartedAt],
      ['shadow', 0, '1.1.0', at(5).toISOString()],
    )
    const canary = planDeploy(stable(), request('canary'), T0)!
    assert.deepEqual([canary.state.stage, canary.state.weight], ['canary', 5])
    assert.deepEqual(canary.change.from, {stage: 'full', weight: 0, stable: '1.0.0'})
    assert.deepEqual(canary.change.to, {stage: 'canary', weight: 5, stable: '1.0.0', candidate: '1.1.0'})
  })

  it('canary 100 is a full deploy', () => {
    const t = planDeploy(stable(), request('canary', 100), T0)!
    assert.deepEqual([t.state.stage, t.state.stable.version, t.state.candidate], ['full', '1.1.0', undefined])
  })

  it('a second rollout while one is in progress is refused', () => {
    assert.throws(
      () => planDeploy(rollout('canary', 5, false), {...request('canary'), release: {version: '1.2.0'}}, T0),
      {code: 'ROLLOUT_IN_PROGRESS', hint: /mlops promote.*mlops rollback/},
    )
  })

  it('deploying the serving version again changes nothing', () => {
    assert.equal(planDeploy(stable(), {...request('full'), release: {version: '1.0.0'}}, T0), undefined)
  })

  it('promote walks shadow → 5 → 25 → 50 → full, each step restarting the window', () => {
    let state = rollout('shadow', 0, false)
    const seen: string[] = []
    for (let i = 1; i <= 4; i++) {
      const t = planPromote(state, {}, at(i))
      state = t.state
      seen.push(state.stage === 'canary' ? String(state.weight) : state.stage)
      assert.equal(state.stepStartedAt, at(i).toISOString())
    }
    assert.deepEqual(seen, ['5', '25', '50', 'full'])
    assert.equal(state.stable.version, '1.1.0')
    assert.equal(state.candidate, undefined)
    assert.deepEqual(state.outcome, {version: '1.1.0', result: 'promoted', reason: 'promoted', at: at(4).toISOString()})
  })

  it('promote --to jumps to a weight; --to 100 is full; the same weight or a lower one is refused', () => {
    assert.equal(planPromote(rollout('canary', 5, false), {to: 50}, T0).state.weight, 50)
    assert.equal(planPromote(rollout('shadow', 0, false), {to: 100}, T0).state.stage, 'full')
    assert.equal(planPromote(rollout('shadow', 0, false), {to: 1}, T0).state.weight, 1)
    assert.throws(() => planPromote(rollout('canary', 25, false), {to: 25}, T0), {code: 'ALREADY_AT_WEIGHT'})
    assert.throws(() => planPromote(rollout('canary', 25, false), {to: 5}, T0), {
      code: 'PROMOTE_BACKWARDS',
      message: /gets 25% of the traffic, more than --to 5/,
    })
  })

  it('promote and rollback without a rollout are refused with the next command', () => {
    assert.throws(() => planPromote(undefined, {}, T0), {code: 'NOT_DEPLOYED'})
    assert.throws(() => planPromote(stable(), {}, T0), {code: 'NO_ROLLOUT', hint: /--shadow/})
    assert.throws(() => planRollback(stable(), {}, T0), {code: 'NO_ROLLOUT', hint: /mlops deploy VERSION --full/})
  })

  it('rollback takes the candidate out at once and keeps stable', () => {
    const t = planRollback(rollout('canary', 25, false), {reason: 'looks wrong'}, at(3))
    assert.deepEqual(
      [t.state.stage, t.state.weight, t.state.stable.version, t.state.candidate],
      ['full', 0, '1.0.0', undefined],
    )
    assert.deepEqual(t.state.outcome, {
      version: '1.1.0',
      result: 'rolled-back',
      reason: 'looks wrong',
      at: at(3).toISOString(),
    })
    assert.deepEqual(t.change.from, {stage: 'canary', weight: 25, stable: '1.0.0', candidate: '1.1.0'})
    assert.equal(t.change.action, 'rollback')
    assert.equal(t.state.revision, 3)
  })

  it("unavailable pods: the candidate's are rolled back as by hand, on the deadline gate", () => {
    const t = planUnavailable(rollout('canary', 5, false), '1.1.0', 'CrashLoopBackOff', at(3))!
    assert.deepEqual(
      [t.state.stage, t.state.weight, t.state.stable.version, t.state.candidate, t.state.revision],
      ['full', 0, '1.0.0', undefined, 3],
    )
    const reason = 'never became available: CrashLoopBackOff'
    assert.deepEqual(t.state.outcome, {
      version: '1.1.0',
      result: 'rolled-back',
      reason,
      gate: 'deadline',
      at: at(3).toISOString(),
    })
    assert.deepEqual(
      [t.change.action, t.change.automatic, t.change.version, t.change.gate, t.change.reason],
      ['rollback', true, '1.1.0', 'deadline', reason],
    )
    assert.deepEqual(t.change.from, {stage: 'canary', weight: 5, stable: '1.0.0', candidate: '1.1.0'})
    assert.deepEqual(t.change.to, {stage: 'full', weight: 0, stable: '1.0.0'})
  })

  it("unavailable pods: a new release's leave the state as it was and record its rollback", () => {
    for (const current of [stable(), rollout('shadow', 0, false)]) {
      const t = planUnavailable(current, '1.2.0', 'ImagePullBackOff', at(3))!
      assert.deepEqual(
        {...t.state, outcome: undefined},
        {...current, revision: current.revision + 1, outcome: undefined},
      )
      assert.deepEqual(t.state.outcome, {
        version: '1.2.0',
        result: 'rolled-back',
        reason: 'ImagePullBackOff',
        gate: 'deadline',
        at: at(3).toISOString(),
      })
      assert.deepEqual(
        [t.change.action, t.change.automatic, t.change.version, t.change.reason],
        ['rollback', true, '1.2.0', 'never became available: ImagePullBackOff'],
      )
      assert.deepEqual(t.change.to, t.change.from)
    }
  })

  it("unavailable pods: stable's roll nothing back, with or without a candidate", () => {
    assert.equal(planUnavailable(stable(), '1.0.0', 'CrashLoopBackOff', at(3)), undefined)
    assert.equal(planUnavailable(rollout('canary', 25, false), '1.0.0', 'CrashLoopBackOff', at(3)), undefined)
  })

  it('auto: passing analysis promotes, failing rolls back naming the gate, waiting does nothing, manual never moves', () => {
    const state = rollout('canary', 5, true)
    const up = decideAuto(state, calculatePhase(state, passing, at(60)), at(60))!
    assert.deepEqual([up.state.weight, up.change.action, up.change.automatic], [25, 'promote', true])
    const back = decideAuto(state, calculatePhase(state, failing, at(1)), at(1))!
    assert.deepEqual(
      [back.state.stage, back.change.action, back.change.gate, back.state.outcome?.gate],
      ['full', 'rollback', 'error_rate', 'error_rate'],
    )
    assert.match(back.change.reason, /analysis failed at canary 5%: error rate/)
    assert.equal(decideAuto(state, calculatePhase(state, thin, at(60)), at(60)), undefined)
    const manual = rollout('canary', 5, false)
    assert.equal(decideAuto(manual, calculatePhase(manual, failing, at(1)), at(1)), undefined)
  })

  it('auto: thin data past the deadline rolls back on the deadline gate', () => {
    const state = rollout('canary', 5, true)
    const back = decideAuto(state, calculatePhase(state, thin, at(600)), at(600))!
    assert.equal(back.change.gate, 'deadline')
  })
})
