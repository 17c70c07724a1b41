import assert from 'node:assert/strict'
import {join} from 'node:path'

import {Registry} from 'prom-client'

import {readRecords} from '../../src/data/records.js'
import {LiveProfiles, mergeLiveSnapshots} from '../../src/monitor/live.js'
import type {ValueKind} from '../../src/monitor/profile.js'
import {packageRoot} from '../../src/paths.js'
import {tempDir} from '../support/cli.js'
import {profileOf} from './helpers.js'

const data = join(packageRoot, 'examples', 'credit-risk', 'data')
const kinds: Record<string, ValueKind> = {
  age: 'numeric',
  income: 'numeric',
  debt_ratio: 'numeric',
  credit_history_months: 'numeric',
  region: 'categorical',
  employment: 'categorical',
  has_prior_default: 'categorical',
}

async function rows(file: string): Promise<Record<string, unknown>[]> {
  const out: Record<string, unknown>[] = []
  for await (const {record} of readRecords(join(data, file))) out.push(record)
  return out
}

describe('live profiles of served traffic', () => {
  let reference: Record<string, unknown>[]
  let shifted: Record<string, unknown>[]
  before(async () => {
    reference = await rows('reference.csv')
    shifted = await rows('current-shifted.csv')
  })

  it('flags the shifted features of live traffic and not the stable ones', () => {
    const live = new LiveProfiles(profileOf(reference, kinds, 'reference.csv'))
    live.add(shifted, [])
    const report = live.drift()
    assert.equal(report.rows, shifted.length)
    assert.deepEqual([...report.drifted].sort(), ['debt_ratio', 'income', 'region'])
  })

  it('finds no drift in traffic like the training data', () => {
    const live = new LiveProfiles(profileOf(reference.slice(0, 3000), kinds))
    live.add(reference.slice(3000), [])
    assert.equal(live.drift().verdict, 'ok')
  })

  it('keeps memory bounded: a reservoir per column and window, old windows dropped', () => {
    let now = 0
    const live = new LiveProfiles(profileOf(reference, kinds), {
      reservoir: 100,
      windowMs: 1000,
      windows: 3,
      now: () => now,
    })
    for (let w = 0; w < 5; w++) {
      now = w * 1000
      live.add(reference.slice(0, 1500), [])
    }
    const {windows} = live.snapshot()
    assert.deepEqual(
      windows.map((w) => w.start),
      [2000, 3000, 4000],
    )
    assert.ok(
      windows.every((w) => w.rows === 1500 && w.features.age.values.length === 100 && w.features.age.seen === 1500),
    )
    assert.equal(live.currentData(1000).rows, 3000, 'the last second spans the open window and the one before')
  })

  it('exports drift gauges on a Prometheus registry, computed at scrape time', async () => {
    const live = new LiveProfiles(profileOf(reference, kinds))
    const registry = new Registry()
    live.registerMetrics(registry, {version: '1.0.0'})
    assert.doesNotMatch(await registry.metrics(), /mlops_drift_detected\{/, 'no series before any traffic')
    live.add(shifted, [])
    const text = await registry.metrics()
    assert.match(text, /mlops_drift_detected\{version="1\.0\.0",column="income",target="feature"\} 1/)
    assert.match(text, /mlops_drift_detected\{version="1\.0\.0",column="age",target="feature"\} 0/)
    assert.match(
      text,
      /mlops_drift_statistic\{version="1\.0\.0",column="income",target="feature",method="psi"\} 0\.1\d+/,
    )
  })

  it("merges workers' shares: rows and counts summed per window, values sampled in proportion to what each saw", () => {
    let now = 0
    const options = {reservoir: 100, windowMs: 1000, windows: 2, now: () => now}
    const [busy, quiet] = [
      new LiveProfiles(profileOf(reference, kinds), options),
      new LiveProfiles(profileOf(reference, kinds), options),
    ]
    busy.add(reference.slice(0, 10), [])
    now = 1000
    busy.add(reference.slice(0, 300), [])
    // The quiet share's ages are all -1: where each merged value came from is then plain.
    const marked = reference.slice(0, 100).map((r) => ({...r, age: -1}))
    quiet.add(marked, [])
    now = 2000
    quiet.add(marked.slice(0, 5), [])
    const merged = mergeLiveSnapshots([busy.ownSnapshot(), quiet.ownSnapshot()], busy.limits)
    assert.deepEqual(
      merged.windows.map((w) => [w.start, w.rows]),
      [
        [1000, 400],
        [2000, 5],
      ],
      'the oldest window is past the two kept',
    )
    const age = merged.windows[0].features.age
    assert.equal(age.seen, 400)
    assert.equal(age.values.length, 100)
    assert.equal(age.values.filter((v) => v === -1).length, 25, 'a quarter from the share that saw 100 of 400')
  })

  it('survives a restart through its saved file', async () => {
    const tmp = await tempDir()
    try {
      const file = join(tmp.path, 'requests.profiles.json')
      const first = new LiveProfiles(profileOf(reference, kinds))
      first.add(shifted, [])
      await first.save(file)
      const second = new LiveProfiles(profileOf(reference, kinds))
      await second.load(file)
      assert.deepEqual(second.drift().drifted, first.drift().drifted)
    } finally {
      await tmp.remove()
    }
  })
})
