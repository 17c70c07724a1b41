// Gate verdicts: thin data is inconclusive, a failure the client may have caused is inconclusive, and only all-passed is a pass.
import assert from 'node:assert/strict'

import {checkSettings} from '../../src/checks/config.js'
import {allPassed, gate} from '../../src/checks/gates.js'
import {findMaxRate} from '../../src/checks/load/find-max.js'
import type {LoadPhase} from '../../src/checks/load/run.js'
import {latencyGate, loadGates} from '../../src/checks/run.js'

function phase(over: Partial<LoadPhase> & {p99?: number; serviceP99?: number} = {}): LoadPhase {
  const pct = (p99: number) => ({
    p50: p99 / 4,
    p90: p99 / 2,
    p95: p99 / 1.5,
    p99,
    'p99.9': p99 * 1.2,
    max: p99 * 1.5,
    mean: p99 / 3,
  })
  const {p99 = 20, serviceP99 = p99, ...rest} = over
  return {
    mode: 'open',
    rate: 100,
    concurrency: 16,
    durationS: 10,
    requests: 1000,
    completed: 1000,
    ok: 1000,
    errorRate: 0,
    statuses: {200: 1000},
    throughput: 100,
    latencyMs: pct(p99),
    serviceMs: pct(serviceP99),
    histogram: {edgesMs: [], counts: []},
    client: {lagP99Ms: 1, lagMaxMs: 2, elu: 0.2, saturated: false},
    samples: [],
    ...rest,
  }
}

const saturated = {
  lagP99Ms: 40,
  lagMaxMs: 90,
  elu: 0.95,
  saturated: true,
  reason: 'the load generator could not keep up: it sent 40 ms behind schedule (p99)',
}

describe('gates', () => {
  it('passes, fails, or has no verdict', () => {
    assert.equal(
      gate({check: 'load', name: 'error_rate', measured: 0.001, threshold: 0.01, comparison: '<=', unit: 'ratio'})
        .verdict,
      'passed',
    )
    const failed = gate({
      check: 'load',
      name: 'error_rate',
      measured: 0.2,
      threshold: 0.01,
      comparison: '<=',
      unit: 'ratio',
    })
    assert.equal(failed.verdict, 'failed')
    assert.equal(failed.message, '20% > 1%')
    assert.equal(
      gate({check: 'load', name: 'x', measured: null, threshold: 1, comparison: '>=', unit: ''}).verdict,
      'inconclusive',
    )
    assert.equal(
      gate({check: 'load', name: 'x', measured: 5, threshold: 1, comparison: '>=', unit: '', inconclusive: 'too few'})
        .verdict,
      'inconclusive',
      'thin data is never a pass',
    )
    assert.equal(
      gate({
        check: 'load',
        name: 'x',
        measured: 0,
        threshold: 1,
        comparison: '>=',
        unit: '',
        doubt: 'the client lagged',
      }).verdict,
      'inconclusive',
    )
    assert.equal(
      gate({
        check: 'load',
        name: 'x',
        measured: 2,
        threshold: 1,
        comparison: '>=',
        unit: '',
        doubt: 'the client lagged',
      }).verdict,
      'passed',
      'a doubt only matters for a failure',
    )
  })

  it('counts inconclusive as not passed, and no gates as not passed', () => {
    const pass = gate({check: 'load', name: 'a', measured: 0, threshold: 1, comparison: '<=', unit: ''})
    const thin = gate({
      check: 'load',
      name: 'b',
      measured: 0,
      threshold: 1,
      comparison: '<=',
      unit: '',
      inconclusive: 'few',
    })
    assert.equal(allPassed([pass]), true)
    assert.equal(allPassed([pass, thin]), false)
    assert.equal(allPassed([]), false)
  })

  it('needs min_tail_samples above a percentile before judging it', () => {
    const settings = checkSettings({latency: {min_tail_samples: 5}})
    const p99 = settings.latency.gates[1]
    assert.equal(latencyGate(p99, phase({completed: 499}), settings).verdict, 'inconclusive')
    assert.equal(latencyGate(p99, phase({completed: 500}), settings).verdict, 'passed')
    assert.equal(latencyGate(p99, phase({completed: 500, p99: 150}), settings).verdict, 'failed')
  })

  it('blames a saturated client only when the server part alone is under the line', () => {
    const settings = checkSettings()
    const p99 = settings.latency.gates[1]
    const clientsFault = latencyGate(p99, phase({p99: 150, serviceP99: 30, client: saturated}), settings)
    assert.equal(clientsFault.verdict, 'inconclusive')
    assert.match(clientsFault.message, /could not keep up.*from the actual send p99 was 30 ms/)
    assert.equal(latencyGate(p99, phase({p99: 150, serviceP99: 140, client: saturated}), settings).verdict, 'failed')
    assert.equal(
      latencyGate(p99, phase({p99: 150, serviceP99: 30}), settings).verdict,
      'failed',
      'a client that kept up is not to blame',
    )
  })

  it('judges error rate and, in the open model, throughput against the rate asked for', () => {
    const settings = checkSettings()
    const [errors, throughput] = loadGates(phase({errorRate: 0.05, throughput: 90}), settings)
    assert.equal(errors.verdict, 'failed')
    assert.equal(throughput.verdict, 'failed')
    assert.equal(throughput.threshold, 95)
    assert.deepEqual(
      loadGates(phase({requests: 50}), settings).map((g) => g.verdict),
      ['inconclusive', 'inconclusive'],
    )
    assert.deepEqual(
      loadGates(phase({mode: 'closed', rate: undefined}), settings).map((g) => g.name),
      ['error_rate'],
    )
  })

  it('finds the highest rate meeting the SLO by doubling then bisecting', async () => {
    // A server whose p99 passes 50 ms beyond 700 rps.
    const run = async (rate: number) => phase({rate, throughput: rate, p99: rate <= 700 ? 10 : 200})
    const slo = {
      gates: checkSettings({latency: {gates: ['p99 <= 50ms']}}).latency.gates,
      maxErrorRate: 0.01,
      minThroughputRatio: 0.95,
    }
    const found = await findMaxRate({startRate: 100, maxRate: 20_000, maxSteps: 12, slo, run})
    assert.deepEqual(
      found.steps.slice(0, 5).map((s) => [s.rate, s.met]),
      [
        [100, true],
        [200, true],
        [400, true],
        [800, false],
        [600, true],
      ],
    )
    assert.ok(found.maxRate <= 700 && found.maxRate >= 700 / 1.1, `found ${found.maxRate}`)
    const clientBound = await findMaxRate({
      startRate: 100,
      maxRate: 20_000,
      maxSteps: 12,
      slo,
      run: async (rate) =>
        phase({rate, throughput: rate, p99: rate <= 200 ? 10 : 200, client: rate > 200 ? saturated : phase().client}),
    })
    assert.equal(clientBound.maxRate, 200)
    assert.match(clientBound.clientBound ?? '', /at 400 rps the load generator could not keep up/)
  })
})
