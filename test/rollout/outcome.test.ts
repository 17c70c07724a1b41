// A/B on results during a canary: the outcome gate compares the candidate's accuracy with stable's on the truth that arrives.
import assert from 'node:assert/strict'
import {readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {Pool} from 'undici'

import {outcomeGate} from '../../src/rollout/analysis.js'
import type {OutcomeGateSettings} from '../../src/rollout/config.js'
import {deploy, history, status} from '../../src/rollout/deploy.js'
import type {StepMetrics} from '../../src/rollout/types.js'
import type {AuditResult} from '../../src/audit/audit.js'
import {MODELS_DIR, mlops} from '../support/cli.js'
import {assertMatchesSchema} from '../support/schema.js'
import {random} from '../monitor/helpers.js'
import {assertRolledBack, FAST_ANALYSIS, type Project, predict, project} from './helpers.js'

const GATE: OutcomeGateSettings = {maxDrop: 0.05, minSamples: 50, confidence: 0.95, prediction: 'label', requestLog: ''}

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

  describe('on the local gateway', () => {
    let p: Project
    afterEach(async () => {
      await p?.cleanup()
    })

    it('rolls a candidate that is worse on the truth back, naming the outcome gate, while error rate and latency pass; mlops audit names the release that answered a canary request', async () => {
      p = await project({
        steps: [50],
        analysis: {...FAST_ANALYSIS, gates: {...FAST_ANALYSIS.gates, outcome: {min_samples: 20, max_drop: 0.05}}},
      })
      const config = JSON.parse(await readFile(join(p.dir, 'mlops.yaml'), 'utf8')) as Record<string, unknown>
      config.serving = {request_log: {path: 'logs/requests.jsonl'}}
      await writeFile(join(p.dir, 'mlops.yaml'), JSON.stringify(config))
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
        const sent = await pool.request({
          method: 'POST',
          path: '/v1/feedback',
          headers: {'content-type': 'application/json'},
          body: JSON.stringify({feedback}),
        })
        assert.equal(sent.statusCode, 200, await sent.body.text())
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
  })
})
