import assert from 'node:assert/strict'

import {analyzeStep} from '../../src/rollout/analysis.js'
import type {GateName, Measurement, Verdict} from '../../src/rollout/types.js'
import {T0, at, metrics, settings, stats} from './fixtures.js'

interface Row {
  name: string
  stage: 'shadow' | 'canary'
  measurement: Measurement
  seconds: number
  verdict: Verdict
  failedGate?: GateName
  reason: RegExp
  test?: {passed: boolean}
  requireTest?: boolean
}

const healthy = metrics(stats(2000), stats(150))
const rows: Row[] = [
  {
    name: 'no metrics is a failure, never a pass',
    stage: 'canary',
    measurement: {error: 'connect ECONNREFUSED 127.0.0.1:9'},
    seconds: 100,
    verdict: 'fail',
    failedGate: 'measurement',
    reason: /ECONNREFUSED/,
  },
  {
    name: 'too few candidate requests waits',
    stage: 'canary',
    measurement: {metrics: metrics(stats(2000), stats(40))},
    seconds: 100,
    verdict: 'inconclusive',
    // Counters stop at their target: stable's 2000 requests count as 100/100.
    reason: /^waiting for 60 more requests: candidate 40\/100, stable 100\/100 ✓$/,
  },
  {
    name: 'too few stable requests waits',
    stage: 'canary',
    measurement: {metrics: metrics(stats(50), stats(150))},
    seconds: 100,
    verdict: 'inconclusive',
    reason: /candidate 100\/100 ✓, stable 50\/100/,
  },
  {
    name: 'too few requests past the deadline fails',
    stage: 'canary',
    measurement: {metrics: metrics(stats(2000), stats(40))},
    seconds: 600,
    verdict: 'fail',
    failedGate: 'deadline',
    reason: /inconclusive after 600s .*candidate 40\/100, stable 100\/100 ✓/,
  },
  {
    name: "another step's figures (the gateway not switched yet) wait, even failing ones",
    stage: 'canary',
    measurement: {metrics: {...metrics(stats(2000, 2), stats(200, 20)), since: at(-30).toISOString()}},
    seconds: 5,
    verdict: 'inconclusive',
    reason: /not switched to this step/,
  },
  {
    name: "another step's figures past the deadline fail",
    stage: 'canary',
    measurement: {metrics: {...healthy, since: at(-30).toISOString()}},
    seconds: 600,
    verdict: 'fail',
    failedGate: 'deadline',
    reason: /inconclusive after 600s .*not switched/,
  },
  {
    name: 'a candidate not ready yet waits',
    stage: 'canary',
    measurement: {metrics: {...metrics(stats(10), stats(0)), candidateReady: false}},
    seconds: 10,
    verdict: 'inconclusive',
    reason: /not ready/,
  },
  {
    name: 'all gates pass but still baking',
    stage: 'canary',
    measurement: {metrics: healthy},
    seconds: 30,
    verdict: 'inconclusive',
    reason: /baking 30s of 60s/,
  },
  {
    name: 'all gates pass after the bake',
    stage: 'canary',
    measurement: {metrics: healthy},
    seconds: 60,
    verdict: 'pass',
    reason: /every gate passed after 60s/,
  },
  {
    name: 'error rate up 10% fails at once, before the bake',
    stage: 'canary',
    measurement: {metrics: metrics(stats(2000, 2), stats(200, 20))},
    seconds: 5,
    verdict: 'fail',
    failedGate: 'error_rate',
    reason: /candidate 10.0% vs stable 0.10%/,
  },
  {
    name: 'error rate up exactly the allowance passes',
    stage: 'canary',
    measurement: {metrics: metrics(stats(1000, 0), stats(100, 1))},
    seconds: 60,
    verdict: 'pass',
    reason: /passed/,
  },
  {
    name: 'same error rate on both passes',
    stage: 'canary',
    measurement: {metrics: metrics(stats(1000, 100), stats(100, 10))},
    seconds: 60,
    verdict: 'pass',
    reason: /passed/,
  },
  {
    name: 'p99 above ratio and slack fails',
    stage: 'canary',
    measurement: {metrics: metrics(stats(2000, 0, 10), stats(200, 0, 21))},
    seconds: 60,
    verdict: 'fail',
    failedGate: 'latency',
    reason: /p99 candidate 21 ms vs stable 10 ms, above 20 ms/,
  },
  {
    name: 'p99 within slack passes',
    stage: 'canary',
    measurement: {metrics: metrics(stats(2000, 0, 1), stats(200, 0, 6))},
    seconds: 60,
    verdict: 'pass',
    reason: /passed/,
  },
  {
    name: 'shadow judges medians: the tail of a background candidate waiting for the CPU passes',
    stage: 'shadow',
    measurement: {metrics: metrics(stats(2000, 0, 9), {...stats(200, 0, 62), p50Ms: 4}, {compared: 200, agreed: 200})},
    seconds: 60,
    verdict: 'pass',
    reason: /passed/,
  },
  {
    name: 'shadow fails a candidate slower at the median',
    stage: 'shadow',
    measurement: {
      metrics: metrics(stats(2000, 0, 10), {...stats(200, 0, 10), p50Ms: 21}, {compared: 200, agreed: 200}),
    },
    seconds: 60,
    verdict: 'fail',
    failedGate: 'latency',
    reason:
      /p50 candidate 21 ms vs stable 5.00 ms \(medians in shadow, where the candidate runs at background priority\), above 13 ms/,
  },
  {
    name: 'shadow waits for compared answers',
    stage: 'shadow',
    measurement: {metrics: metrics(stats(2000), stats(150), {compared: 50, agreed: 50})},
    seconds: 100,
    verdict: 'inconclusive',
    reason: /waiting for 50 more answers: 50\/100 compared/,
  },
  {
    name: 'shadow with low agreement fails',
    stage: 'shadow',
    measurement: {metrics: metrics(stats(2000), stats(150), {compared: 150, agreed: 120, labelFlips: 30})},
    seconds: 5,
    verdict: 'fail',
    failedGate: 'agreement',
    reason: /80.0% of 150 answers agree, 30 label flips/,
  },
  {
    name: 'shadow agreeing passes after the bake',
    stage: 'shadow',
    measurement: {metrics: metrics(stats(2000), stats(150), {compared: 150, agreed: 150})},
    seconds: 60,
    verdict: 'pass',
    reason: /passed/,
  },
  {
    // The Kubernetes target: the Gateway drops the mirror's answers, so there is nothing to compare.
    name: 'shadow where agreement is unavailable is judged on error rate and latency after the bake',
    stage: 'shadow',
    measurement: {metrics: metrics(stats(2000), stats(150)), agreementUnavailable: 'the mirror answers are dropped'},
    seconds: 60,
    verdict: 'pass',
    reason: /passed/,
  },
  {
    name: 'canary ignores agreement',
    stage: 'canary',
    measurement: {metrics: metrics(stats(2000), stats(150), {compared: 150, agreed: 0})},
    seconds: 60,
    verdict: 'pass',
    reason: /passed/,
  },
  {
    name: 'required test without a report fails',
    stage: 'canary',
    measurement: {metrics: healthy},
    seconds: 60,
    requireTest: true,
    verdict: 'fail',
    failedGate: 'test',
    reason: /no passed "mlops test" report/,
  },
  {
    name: 'a failed test report fails',
    stage: 'canary',
    measurement: {metrics: healthy},
    seconds: 60,
    test: {passed: false},
    verdict: 'fail',
    failedGate: 'test',
    reason: /"mlops test" failed/,
  },
  {
    name: 'a passed test report passes',
    stage: 'canary',
    measurement: {metrics: healthy},
    seconds: 60,
    requireTest: true,
    test: {passed: true},
    verdict: 'pass',
    reason: /passed/,
  },
]

describe('rollout analysis', () => {
  for (const row of rows) {
    it(row.name, () => {
      const analysis = analyzeStep({
        stage: row.stage,
        measurement: row.measurement,
        settings: {...settings.analysis, requireTest: Boolean(row.requireTest)},
        stepStartedAt: T0,
        now: at(row.seconds),
        test: row.test,
      })
      assert.equal(analysis.verdict, row.verdict, analysis.reason)
      assert.equal(analysis.failedGate, row.failedGate)
      assert.match(analysis.reason, row.reason)
      assert.equal(analysis.elapsedMs, row.seconds * 1000)
    })
  }

  it('reports every gate with the figures behind it', () => {
    const analysis = analyzeStep({
      stage: 'shadow',
      measurement: {metrics: metrics(stats(1000, 10, 4), stats(200, 4, 5), {compared: 200, agreed: 199})},
      settings: settings.analysis,
      stepStartedAt: T0,
      now: at(60),
    })
    assert.deepEqual(
      analysis.gates.map((g) => [g.gate, g.verdict]),
      [
        ['error_rate', 'pass'],
        ['latency', 'pass'],
        ['agreement', 'pass'],
      ],
    )
    const agreement = analysis.gates.find((g) => g.gate === 'agreement')!
    assert.equal(agreement.observed, 0.995)
    assert.equal(agreement.threshold, 0.99)
  })
})
