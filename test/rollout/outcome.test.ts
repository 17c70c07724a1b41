// A/B on results during a canary: the outcome gate compares the candidate's accuracy with stable's on the truth that arrives.
import assert from 'node:assert/strict'
import {readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {Pool} from 'undici'

import {outcomeGate} from '../../src/rollout/analysis.js'
import {countOutcomes} from '../../src/targets/local/outcomes.js'
import type {OutcomeGateSettings} from '../../src/rollout/config.js'
import {deploy, history, status} from '../../src/rollout/deploy.js'
import type {StepMetrics} from '../../src/rollout/types.js'
import type {AuditResult} from '../../src/audit/audit.js'
import {MODELS_DIR, mlops} from '../support/cli.js'
import {assertMatchesSchema} from '../support/schema.js'
import {random} from '../monitor/helpers.js'
import {assertRolledBack, FAST_ANALYSIS, type Project, XGB, predict, project} from './helpers.js'

const GATE: OutcomeGateSettings = {
  maxDrop: 0.05,
  maxMaeRatio: 1.1,
  minSamples: 50,
  confidence: 0.95,
  prediction: 'label',
  requestLog: '',
}

function metrics(stable: [number, number], candidate: [number, number]): StepMetrics {
  const side = ([labeled, correct]: [number, number]) => ({predictions: labeled * 2, labeled, correct})
  return {
    since: new Date(0).toISOString(),
    stable: {requests: 0, errors: 0},
    candidate: {requests: 0, errors: 0},
    candidateReady: true,
    outcomes: {stable: side(stable), candidate: side(candidate)},
  }
}

/** A project whose canary step has an outcome gate, with the request log it joins the truth to. */
async function outcomeProject(outcome: Record<string, number>): Promise<Project> {
  const made = await project({steps: [50], analysis: {...FAST_ANALYSIS, gates: {...FAST_ANALYSIS.gates, outcome}}})
  const config = JSON.parse(await readFile(join(made.dir, 'mlops.yaml'), 'utf8')) as Record<string, unknown>
  config.serving = {request_log: {path: 'logs/requests.jsonl'}}
  await writeFile(join(made.dir, 'mlops.yaml'), JSON.stringify(config))
  return made
}

/** Truth through the gateway, as a user sends it. */
async function sendFeedback(pool: Pool, feedback: object[]): Promise<void> {
  const sent = await pool.request({
    method: 'POST',
    path: '/v1/feedback',
    headers: {'content-type': 'application/json'},
    body: JSON.stringify({feedback}),
  })
  assert.equal(sent.statusCode, 200, await sent.body.text())
}

describe('outcome gate', function () {
  this.timeout(120_000)

  it('waits for min_samples of truth, passes a candidate no worse than allowed, fails a worse one, and waits when it cannot tell', () => {
    const cases: [string, [number, number], [number, number], string][] = [
      ['too little truth', [100, 90], [49, 10], 'inconclusive'],
      ['as good', [2000, 1800], [2000, 1810], 'pass'],
      ['clearly worse', [400, 360], [400, 280], 'fail'],
      ['a little worse, few samples', [60, 54], [60, 50], 'inconclusive'],
    ]
    for (const [what, stable, candidate, verdict] of cases)
      assert.equal(outcomeGate(metrics(stable, candidate), GATE).verdict, verdict, what)
    // Two-proportion figures: drop 0.2, one-sided 95% half-width 1.645 × sqrt(.9·.1/400 + .7·.3/400) = 0.0450.
    const worse = outcomeGate(metrics([400, 360], [400, 280]), GATE)
    assert.match(worse.message, /drop 20\.0% ± 4\.5%/)
  })

  it('judges values by mean absolute error: within max_mae_ratio of stable passes, past it fails, too few waits', () => {
    // Absolute errors alternating around a mean: the counts are the sums the watcher keeps.
    const errors = (n: number, mean: number) =>
      Array.from({length: n}, (_, i) => (i % 2 === 0 ? mean - 0.5 : mean + 0.5))
    const side = (e: number[]) => ({
      predictions: e.length,
      labeled: e.length,
      correct: 0,
      absError: e.reduce((a, b) => a + b, 0),
      absErrorSq: e.reduce((a, b) => a + b * b, 0),
    })
    const judge = (stable: number[], candidate: number[]) =>
      outcomeGate({...metrics([0, 0], [0, 0]), outcomes: {stable: side(stable), candidate: side(candidate)}}, GATE)
    // Equal MAE (1.0), sample variance 0.2513: excess -0.1, half-width 1.645 × sqrt(0.2513/200 × (1 + 1.1²)) = 0.087.
    assert.equal(judge(errors(200, 1), errors(200, 1)).verdict, 'pass')
    assert.equal(judge(errors(50, 1), errors(50, 1)).verdict, 'inconclusive', 'half-width 0.173 at 50 each')
    assert.equal(judge(errors(49, 1), errors(200, 1)).verdict, 'inconclusive', 'under min_samples')
    const worse = judge(errors(200, 1), errors(200, 2))
    assert.equal(worse.verdict, 'fail')
    assert.match(
      worse.message,
      /MAE candidate 2\.000 \(200 with truth\) vs stable 1\.000 \(200\), ratio 2\.00, past 1\.1× stable's allowed/,
    )
  })

  it('counts a value truth by the absolute error of the first numeric field, and a label truth by equality', () => {
    const at = (id: string, version: string, prediction: Record<string, unknown>) => ({
      id,
      time: 0,
      version,
      prediction,
    })
    const predictions = [
      at('a', '1.0.0', {variable: [[1.5]]}),
      at('b', '1.0.0', {variable: [[3]]}),
      at('c', '1.1.0', {variable: [[0]]}),
      at('d', '1.1.0', {label: 'x'}),
      at('e', '1.1.0', {variable: [[9]]}),
    ]
    const truth = (request_id: string, t: {value?: number; label?: string}) =>
      [request_id, {request_id, time: '', received: '', ...t}] as const
    const truths = new Map([
      truth('a', {value: 1}),
      truth('b', {value: 1}),
      truth('c', {value: 2}),
      truth('d', {label: 'x'}),
    ])
    const counts = countOutcomes(predictions, truths, {stable: '1.0.0', candidate: '1.1.0'}, undefined)
    assert.deepEqual(counts.stable, {predictions: 2, labeled: 2, correct: 0, absError: 2.5, absErrorSq: 4.25})
    assert.deepEqual(counts.candidate, {predictions: 3, labeled: 2, correct: 1, absError: 2, absErrorSq: 4})
  })

  describe('on the local gateway', () => {
    let p: Project
    afterEach(async () => {
      await p?.cleanup()
    })

    it('rolls a candidate that is worse on the truth back, naming the outcome gate, while error rate and latency pass; mlops audit names the release that answered a canary request', async () => {
      p = await outcomeProject({min_samples: 20, max_drop: 0.05})
      const model = join(MODELS_DIR, 'gbc_string_labels.onnx')
      await deploy({dir: p.dir, ref: '1.0.0', model, stage: 'full'})
      // The candidate answers every label with a suffix (MLOPS_FAULT_WRONG): never the truth, yet never an error.
      const started = await deploy({
        dir: p.dir,
        ref: '1.1.0',
        model,
        stage: 'canary',
        auto: true,
        env: {MLOPS_FAULT_WRONG: '1'},
        actor: 'carol',
      })
      const pool = new Pool(p.url, {connections: 4})
      const rng = random(5)
      const served: Record<string, number> = {}
      let byCandidate = ''
      let stableLabel = ''
      try {
        const body = JSON.stringify({instances: [{input: [[1, 2]]}]})
        for (let i = 0; i < 160; i++) {
          const answer = await predict(pool, {'x-request-id': `q${i}`}, body)
          assert.equal(answer.status, 200, answer.body)
          served[answer.version!] = (served[answer.version!] ?? 0) + 1
          if (answer.version === '1.1.0') byCandidate ||= `q${i}`
          if (answer.version === '1.0.0')
            stableLabel = (JSON.parse(answer.body) as {predictions: {label: string}[]}).predictions[0].label
        }
        const before = await status({dir: p.dir})
        const gate = before.analysis?.gates.find((g) => g.gate === 'outcome')
        assert.equal(gate?.verdict, 'inconclusive', 'the gate waits while no truth has arrived')
        // Truth arrives through the gateway: stable's answer for 9 in 10 requests, another class otherwise.
        const feedback = Array.from({length: 160}, (_, i) => ({
          request_id: `q${i}`,
          label: rng.uniform() < 0.9 ? stableLabel : `not ${stableLabel}`,
        }))
        await sendFeedback(pool, feedback)
      } finally {
        await pool.close()
      }
      assert.ok(served['1.1.0'] >= 20 && served['1.0.0'] >= 20, JSON.stringify(served))
      await assertRolledBack(
        p.dir,
        '1.1.0',
        started.status.revision,
        /rolled back by the outcome gate: .*accuracy candidate 0\.0% \(\d+ labeled\) vs stable \d+\.\d%/,
      )
      const last = (await history({dir: p.dir})).entries.at(-1)!
      assert.deepEqual([last.action, last.automatic, last.gate], ['rollback', true, 'outcome'])
      const judged = last.analysis?.gates.find((g) => g.gate === 'outcome')
      assert.equal(judged?.verdict, 'fail')
      assert.match(judged.message, /accuracy candidate 0\.0%/)
      assert.equal(last.analysis?.metrics?.outcomes?.candidate.correct, 0)

      // The audit of a request the candidate answered in the canary: its release, the change in effect, its truth.
      const audited = await mlops(['audit', byCandidate, '--json'], {cwd: p.dir})
      assert.equal(audited.exitCode, 0, audited.stderr)
      assertMatchesSchema(audited.json, 'audit')
      const result = audited.json as AuditResult
      assert.equal(result.model.version, '1.1.0')
      assert.deepEqual(
        [result.release?.role, result.release?.stage, result.release?.weight],
        ['candidate', 'canary', 50],
      )
      assert.equal(result.release?.in_effect.actor, 'carol')
      assert.equal(result.release?.in_effect.revision, started.status.revision)
      assert.match(JSON.stringify(result.prediction), /~/)
      assert.ok(result.truth?.label !== undefined, 'the truth sent for it')
      const missing = await mlops(['audit', 'no-such-request'], {cwd: p.dir})
      assert.equal(missing.exitCode, 1)
      assert.match(missing.stderr, /no request no-such-request/)
    })

    it('rolls back a regressor whose mean absolute error on the truth is past max_mae_ratio of stable', async () => {
      p = await outcomeProject({min_samples: 20})
      await deploy({dir: p.dir, ref: '1.0.0', model: XGB, stage: 'full'})
      // The candidate answers 1.1 × the value + 1 (MLOPS_FAULT_WRONG): a worse regressor that never errs.
      const wrong = {MLOPS_FAULT_WRONG: '1'}
      const started = await deploy({dir: p.dir, ref: '1.1.0', model: XGB, stage: 'canary', auto: true, env: wrong})
      const pool = new Pool(p.url, {connections: 4})
      const rng = random(7)
      let stableValue: number | undefined
      try {
        for (let i = 0; i < 160; i++) {
          const answer = await predict(pool, {'x-request-id': `r${i}`})
          assert.equal(answer.status, 200, answer.body)
          if (answer.version !== '1.0.0') continue
          const [prediction] = (JSON.parse(answer.body) as {predictions: Record<string, unknown>[]}).predictions
          stableValue ??= Number(Object.values(prediction).flat(Infinity)[0])
        }
        assert.ok(Number.isFinite(stableValue), 'stable answered a number')
        // Truth near stable's answer: stable's MAE is the noise (0.05 on average), the candidate's 0.1 × value + 1.
        const feedback = Array.from({length: 160}, (_, i) => ({
          request_id: `r${i}`,
          value: stableValue! + (rng.uniform() - 0.5) * 0.2,
        }))
        await sendFeedback(pool, feedback)
      } finally {
        await pool.close()
      }
      await assertRolledBack(
        p.dir,
        '1.1.0',
        started.status.revision,
        /rolled back by the outcome gate: .*MAE candidate [\d.]+ \(\d+ with truth\) vs stable [\d.]+ \(\d+\), ratio [\d.]+, past 1\.1× stable's allowed/,
      )
      const last = (await history({dir: p.dir})).entries.at(-1)!
      assert.deepEqual([last.action, last.automatic, last.gate], ['rollback', true, 'outcome'])
      assert.ok((last.analysis?.metrics?.outcomes?.candidate.absError ?? 0) > 0)
    })
  })
})
