// Drift evaluation on generated traffic (shifted features flagged, stable ones not, over many seeds) and on the bundled example.
import assert from 'node:assert/strict'
import {join} from 'node:path'

import type {ReferenceProfile} from '../../src/artifact/types.js'
import {loadConfig} from '../../src/config/load.js'
import {readRecords} from '../../src/data/records.js'
import {driftSettings} from '../../src/monitor/config.js'
import {detectDrift} from '../../src/monitor/drift.js'
import {RecordProfiler, type ValueKind} from '../../src/monitor/profile.js'
import {packageRoot} from '../../src/paths.js'
import {columnsOf, profileOf, random} from './helpers.js'

const KINDS: Record<string, ValueKind> = {
  age: 'numeric',
  income: 'numeric',
  tenure: 'numeric',
  score: 'numeric',
  region: 'categorical',
  plan: 'categorical',
}
const REGIONS = ['north', 'south', 'east', 'west']
const PLANS = ['basic', 'plus', 'pro']

interface Shift {
  incomeFactor?: number
  scoreShift?: number
  /** Share of records in a region training never saw. */
  newRegion?: number
}

function traffic(seed: number, n: number, shift: Shift = {}): Record<string, unknown>[] {
  const r = random(seed)
  return Array.from({length: n}, () => ({
    age: Math.round(40 + 12 * r.normal()),
    income: r.uniform() < 0.05 ? null : Math.round(Math.exp(10.7 + 0.5 * r.normal()) * (shift.incomeFactor ?? 1)),
    tenure: Math.floor(r.uniform() * 120),
    score: 0.5 + 0.1 * r.normal() + (shift.scoreShift ?? 0),
    region: shift.newRegion && r.uniform() < shift.newRegion ? 'central' : r.pick(REGIONS, [4, 3, 2, 1]),
    plan: r.pick(PLANS, [6, 3, 1]),
  }))
}

const BASELINE = profileOf(traffic(1, 5000), KINDS)
const SHIFTED: Shift = {incomeFactor: 0.75, scoreShift: 0.05, newRegion: 0.06}

describe('detectDrift', function () {
  for (const n of [300, 3000]) {
    it(`flags exactly the shifted features and the new category (${n} records: ${n < 1000 ? 'KS and chi-square' : 'PSI and JS distance'})`, () => {
      const report = detectDrift(BASELINE, {features: columnsOf(traffic(7, n, SHIFTED))})
      assert.equal(report.verdict, 'drift')
      assert.deepEqual([...report.drifted].sort(), ['income', 'region', 'score'])
      const region = report.features.find((c) => c.name === 'region')!
      assert.deepEqual(
        region.unseen.map((u) => u.category),
        ['central'],
      )
      assert.ok(region.bins.labels.includes('central'))
      // Drifted columns come first, most severe first.
      assert.deepEqual(
        report.features.slice(0, 3).map((c) => c.verdict),
        ['drift', 'drift', 'drift'],
      )
      const severities = report.features.slice(0, 3).map((c) => c.severity)
      assert.deepEqual(
        severities,
        [...severities].sort((a, b) => b - a),
      )
      for (const c of report.features)
        assert.equal(
          c.method,
          n < 1000 ? (c.kind === 'numeric' ? 'ks' : 'chi2') : c.kind === 'numeric' ? 'psi' : 'jensenshannon',
        )
    })
  }

  it('leaves stable features alone over repeated seeds (false positive rate printed)', function () {
    const seeds = 40
    const rates: string[] = []
    for (const n of [300, 3000]) {
      let flagged = 0
      let checks = 0
      for (let seed = 100; seed < 100 + seeds; seed++) {
        const report = detectDrift(BASELINE, {features: columnsOf(traffic(seed, n))})
        checks += report.features.length
        flagged += report.drifted.length
      }
      const rate = flagged / checks
      rates.push(`${n} records: ${flagged}/${checks} columns flagged (${(rate * 100).toFixed(1)}%)`)
      // Tests at p < 0.05 flag about 5% of stable columns by design; distances on large samples should flag none.
      if (n < 1000) assert.ok(rate <= 0.1, `false positive rate ${rate} with tests`)
      else assert.equal(flagged, 0, `distances flagged stable columns: ${rates.at(-1)}`)
    }
    console.log(`      false positives on stable traffic, ${seeds} seeds: ${rates.join('; ')}`)
  })

  it('says not_enough_data below min_samples and for a column the current data lacks', () => {
    const current = columnsOf(traffic(3, 50, SHIFTED))
    delete current.plan
    const report = detectDrift(BASELINE, {features: current})
    assert.equal(report.verdict, 'not_enough_data')
    assert.deepEqual(report.drifted, [])
    for (const c of report.features) {
      assert.equal(c.verdict, 'not_enough_data')
      assert.equal(c.statistic, null)
    }
    assert.match(report.features.find((c) => c.name === 'plan')!.reasons[0], /not in the current data/)
    assert.match(report.features.find((c) => c.name === 'age')!.reasons[0], /50 values, fewer than min_samples 100/)
  })

  it('flags a feature whose missing rate grew past the threshold even when its values did not move', () => {
    const records = traffic(5, 2000).map((r, i) => ({...r, age: i % 4 === 0 ? null : r.age}))
    const report = detectDrift(BASELINE, {features: columnsOf(records)})
    assert.deepEqual(report.drifted, ['age'])
    const age = report.features[0]
    assert.ok(age.statistic! < 0.1, `the values themselves are stable (PSI ${age.statistic})`)
    assert.match(age.reasons.join(), /missing rate 0% → 25%/)
  })

  it('takes per-feature methods, thresholds and ignore from the monitor config', () => {
    const settings = driftSettings({
      features: {income: {method: 'jensenshannon', threshold: 0.5}, score: {ignore: true}, region: {method: 'psi'}},
    })
    const report = detectDrift(BASELINE, {features: columnsOf(traffic(7, 3000, SHIFTED))}, settings)
    assert.deepEqual(report.drifted, ['region'])
    assert.equal(report.features.find((c) => c.name === 'income')!.method, 'jensenshannon')
    assert.equal(report.features.find((c) => c.name === 'income')!.threshold, 0.5)
    assert.equal(report.features.find((c) => c.name === 'region')!.method, 'psi')
    assert.equal(
      report.features.some((c) => c.name === 'score'),
      false,
    )
    assert.throws(
      () =>
        detectDrift(
          BASELINE,
          {features: columnsOf(traffic(7, 300))},
          driftSettings({features: {region: {method: 'ks'}}}),
        ),
      /monitor\.features\.region\.method: ks does not apply to region, which is categorical/,
    )
  })

  it('checks predictions the same way, named prediction:<field>', () => {
    const baseline: ReferenceProfile = {
      ...BASELINE,
      predictions: profileOf(
        traffic(1, 5000).map((r) => ({
          'probability.default': r.score,
          label: (r.score as number) > 0.6 ? 'default' : 'repaid',
        })),
        {'probability.default': 'numeric', label: 'categorical'},
      ).features,
    }
    const current = traffic(9, 3000, {scoreShift: 0.08})
    const report = detectDrift(baseline, {
      features: columnsOf(current),
      predictions: columnsOf(
        current.map((r) => ({'probability.default': r.score, label: (r.score as number) > 0.6 ? 'default' : 'repaid'})),
      ),
    })
    assert.deepEqual([...report.drifted].sort(), ['prediction:label', 'prediction:probability.default', 'score'])
    assert.ok(report.predictions.every((c) => c.target === 'prediction'))
  })

  it('the bundled credit-risk example: income, debt_ratio and region drift in current-shifted.csv, nothing in applicants.csv', async () => {
    const example = join(packageRoot, 'examples', 'credit-risk')
    const {config} = await loadConfig(example)
    // The column kinds `mlops package` takes from the pipeline.
    const kinds: Record<string, ValueKind> = {}
    for (const f of config.pipeline!.features!)
      kinds[f.name] = f.type === 'number' || f.type === 'integer' ? 'numeric' : 'categorical'
    const profiler = new RecordProfiler(kinds)
    for await (const {record} of readRecords(join(example, 'data', 'reference.csv'))) profiler.add(record)
    const baseline: ReferenceProfile = {rows: profiler.rows, source: 'reference.csv', features: profiler.finish()}
    const currentOf = async (file: string) => {
      const rows: Record<string, unknown>[] = []
      for await (const {record} of readRecords(join(example, 'data', file))) rows.push(record)
      return {features: columnsOf(rows)}
    }
    const shifted = detectDrift(baseline, await currentOf('current-shifted.csv'))
    assert.deepEqual([...shifted.drifted].sort(), ['debt_ratio', 'income', 'region'])
    assert.deepEqual(
      shifted.features.find((c) => c.name === 'region')!.unseen.map((u) => u.category),
      ['central'],
    )
    const income = shifted.features.find((c) => c.name === 'income')!
    assert.ok(income.quantiles!.current[5] < income.quantiles!.baseline[5] * 0.85, 'the median income is lower')
    const stable = detectDrift(baseline, await currentOf('applicants.csv'))
    assert.equal(stable.verdict, 'ok')
  })
})
