// The drift statistics against SciPy 1.10 on the same generated samples (exact and asymptotic KS, ties, chi-square, JS), and PSI by hand.
import assert from 'node:assert/strict'

import {binCounts, chiSquareTest, jensenShannon, kolmogorovSf, ks2Samp, psi} from '../../src/monitor/stats.js'
import {random, scipy} from './helpers.js'

const TOLERANCE = 1e-6

/** Values rounded to a grid, so both samples share many tied values. */
function sample(seed: number, n: number, shift: number, grid: number): number[] {
  const r = random(seed)
  return Array.from({length: n}, () => Math.round((r.normal() + shift) * grid) / grid)
}

describe('monitor statistics against SciPy', function () {
  it('ks2Samp: statistic and p-value as scipy.stats.ks_2samp, exact for small samples and asymptotic past 10 000', async () => {
    // [n1, n2, grid]: grid 2 makes heavy ties; sizes cover n1 = n2, coprime, the square method and both asymptotic regimes.
    const sizes: [number, number, number][] = [
      [3, 4, 10],
      [8, 8, 2],
      [17, 23, 100],
      [50, 50, 1000],
      [120, 77, 2],
      [400, 900, 10],
      [2000, 2000, 100],
      [1999, 3000, 1000],
      [10_000, 10_000, 5],
      [2000, 12_000, 100],
      [90, 15_000, 1000],
      [10_001, 10_001, 1000],
    ]
    const cases = sizes.flatMap(([n1, n2, grid], i) =>
      [0, 0.15, 0.6].map((shift, k) => ({
        a: sample(100 * i + k, n1, 0, grid),
        b: sample(100 * i + k + 50, n2, shift, grid),
      })),
    )
    const expected = await scipy<[number, number][]>(
      'import json,sys\nfrom scipy.stats import ks_2samp\nprint(json.dumps([[float(r.statistic), float(r.pvalue)] for r in (ks_2samp(c["a"], c["b"]) for c in json.load(sys.stdin))]))',
      cases,
    )
    const methods = new Set<string>()
    cases.forEach((c, i) => {
      const got = ks2Samp(c.a, c.b)
      methods.add(got.method)
      const label = `n1=${c.a.length} n2=${c.b.length} case ${i}`
      assert.ok(
        Math.abs(got.statistic - expected[i][0]) < 1e-12,
        `${label}: D ${got.statistic} vs SciPy ${expected[i][0]}`,
      )
      assert.ok(
        Math.abs(got.pValue - expected[i][1]) < TOLERANCE,
        `${label}: p ${got.pValue} vs SciPy ${expected[i][1]}`,
      )
    })
    assert.deepEqual([...methods].sort(), ['asymp', 'exact'])
    // The shifted cases are told apart from the same-distribution ones.
    assert.ok(ks2Samp(cases[17].a, cases[17].b).pValue < 1e-6)
    assert.ok(ks2Samp(cases[15].a, cases[15].b).pValue > 1e-3)
  })

  it('kolmogorovSf: scipy.stats.kstwo.sf in every region SciPy switches algorithm at', async () => {
    const points: [number, number][] = []
    for (const n of [1, 3, 20, 140, 141, 1000, 1800, 50_000, 150_000])
      for (const x of [0.0008, 0.004, 0.012, 0.03, 0.06, 0.1, 0.2, 0.35, 0.5, 0.7, 0.97]) points.push([n, x])
    const expected = await scipy<number[]>(
      'import json,sys\nfrom scipy.stats import kstwo\nprint(json.dumps([float(kstwo.sf(x, n)) for n, x in json.load(sys.stdin)]))',
      points,
    )
    points.forEach(([n, x], i) =>
      assert.ok(
        Math.abs(kolmogorovSf(n, x) - expected[i]) < TOLERANCE,
        `n=${n} x=${x}: ${kolmogorovSf(n, x)} vs SciPy ${expected[i]}`,
      ),
    )
  })

  it('chiSquareTest: scipy.stats.chisquare with expected = baseline frequency × n, unseen categories pooled in one cell', async () => {
    const baseline = {north: 0.4, south: 0.3, east: 0.2, west: 0.1}
    const cases: {observed: Record<string, number>; unseenFrequency: number}[] = [
      {observed: {north: 41, south: 29, east: 21, west: 9}, unseenFrequency: 0.001},
      {observed: {north: 400, south: 260, east: 250, west: 90}, unseenFrequency: 0.001},
      {observed: {north: 30, south: 30, east: 30, west: 10, central: 12, mars: 1}, unseenFrequency: 0.0005},
      {observed: {north: 5, south: 0, east: 2}, unseenFrequency: 0.01},
    ]
    // The same cells built independently: baseline categories in order, then one pooled unseen cell; expected renormalized.
    const inputs = cases.map(({observed, unseenFrequency}) => {
      const names = Object.keys(baseline)
      const unseen = Object.entries(observed)
        .filter(([k]) => !(k in baseline))
        .reduce((s, [, v]) => s + v, 0)
      const obs = [...names.map((k) => observed[k] ?? 0), ...(unseen ? [unseen] : [])]
      const freq = [...names.map((k) => baseline[k as keyof typeof baseline]), ...(unseen ? [unseenFrequency] : [])]
      const n = obs.reduce((s, v) => s + v, 0)
      const total = freq.reduce((s, v) => s + v, 0)
      return {obs, exp: freq.map((f) => (f / total) * n)}
    })
    const expected = await scipy<[number, number][]>(
      'import json,sys\nfrom scipy.stats import chisquare\nprint(json.dumps([[float(r.statistic), float(r.pvalue)] for r in (chisquare(c["obs"], c["exp"]) for c in json.load(sys.stdin))]))',
      inputs,
    )
    cases.forEach((c, i) => {
      const got = chiSquareTest(c.observed, baseline, c.unseenFrequency)
      assert.ok(
        Math.abs(got.statistic - expected[i][0]) < TOLERANCE * Math.max(1, expected[i][0]),
        `case ${i}: statistic ${got.statistic} vs SciPy ${expected[i][0]}`,
      )
      assert.ok(
        Math.abs(got.pValue - expected[i][1]) < TOLERANCE,
        `case ${i}: p ${got.pValue} vs SciPy ${expected[i][1]}`,
      )
    })
    assert.deepEqual(chiSquareTest(cases[2].observed, baseline, 0.0005).unseen, ['central', 'mars'])
    assert.equal(chiSquareTest(cases[2].observed, baseline, 0.0005).df, 4)
  })

  it('chiSquareTest: a category folded into __other__ by the profile is not unseen', () => {
    const got = chiSquareTest({a: 50, b: 30, rare: 20}, {a: 0.5, b: 0.3, __other__: 0.2}, 0.001)
    assert.deepEqual(got.unseen, [])
    assert.ok(got.statistic < 1e-12)
    assert.ok(Math.abs(got.pValue - 1) < 1e-12)
  })

  it('jensenShannon: scipy.spatial.distance.jensenshannon, natural log and base 2, zeros included', async () => {
    const pairs = [
      {p: [0.1, 0.2, 0.3, 0.4], q: [0.4, 0.3, 0.2, 0.1]},
      {p: [10, 0, 5, 5], q: [1, 1, 1, 1]},
      {p: [0.5, 0.5, 0], q: [0, 0.5, 0.5]},
      {p: [1, 0], q: [0, 1]},
      {p: [3, 3, 3], q: [3, 3, 3]},
    ]
    const expected = await scipy<[number, number][]>(
      'import json,sys\nfrom scipy.spatial.distance import jensenshannon\nprint(json.dumps([[float(jensenshannon(c["p"], c["q"])), float(jensenshannon(c["p"], c["q"], base=2))] for c in json.load(sys.stdin)]))',
      pairs,
    )
    pairs.forEach(({p, q}, i) => {
      assert.ok(
        Math.abs(jensenShannon(p, q) - expected[i][0]) < TOLERANCE,
        `pair ${i}: ${jensenShannon(p, q)} vs SciPy ${expected[i][0]}`,
      )
      assert.ok(
        Math.abs(jensenShannon(p, q, 2) - expected[i][1]) < TOLERANCE,
        `pair ${i} base 2: ${jensenShannon(p, q, 2)} vs SciPy ${expected[i][1]}`,
      )
    })
  })

  it('psi: matches a table computed by hand, with empty bins floored at 0.0001', () => {
    // expected, actual shares; term = (a − e)·ln(a/e)
    //  0.25 0.10 → −0.15·ln(0.4)     = 0.137444
    //  0.25 0.20 → −0.05·ln(0.8)     = 0.011157
    //  0.25 0.30 →  0.05·ln(1.2)     = 0.009116
    //  0.25 0.40 →  0.15·ln(1.6)     = 0.070501
    assert.ok(Math.abs(psi([25, 25, 25, 25], [10, 20, 30, 40]) - 0.228218) < 1e-6)
    //  0.5 0.5 → 0; 0.5 vs 0 floored to 0.0001: (0.0001 − 0.5)·ln(0.0001/0.5) = 4.257744; 0.0001 vs 0.5: the same
    assert.ok(Math.abs(psi([50, 50, 0], [50, 0, 50]) - 2 * 4.257744) < 1e-5)
    assert.equal(psi([1, 2, 3], [2, 4, 6]), 0)
  })

  it('binCounts: right-closed bins, so values tied with an edge stay together', () => {
    assert.deepEqual(binCounts([1, 2, 2, 2, 3, 4, 5], [2, 4]), [4, 2, 1])
    assert.deepEqual(binCounts([], [1]), [0, 0])
  })
})
