// The monitor section of mlops.yaml: schema errors by field path, the p-value semantic check, defaults and durations.
import assert from 'node:assert/strict'

import {validateConfig} from '../../src/config/load.js'
import {driftSettings} from '../../src/monitor/config.js'

const base = {name: 'm', model: {path: 'model.onnx'}}

describe('monitor config', function () {
  it('accepts thresholds, per-feature methods and a window', () => {
    const config = validateConfig({
      ...base,
      monitor: {
        since: '7d',
        min_samples: 50,
        thresholds: {psi: 0.25, p_value: 0.01},
        features: {income: {method: 'ks', threshold: 0.001}, id: {ignore: true}},
      },
    })
    const settings = driftSettings(config.monitor)
    assert.equal(settings.thresholds.psi, 0.25)
    assert.equal(settings.thresholds.jensenshannon, 0.1)
    assert.equal(settings.minSamples, 50)
    assert.equal(settings.largeSample, 1000)
  })

  it('names the field of each mistake', () => {
    assert.throws(
      () =>
        validateConfig({
          ...base,
          monitor: {since: 'yesterday', thresholds: {p_value: 2, psy: 1}, features: {income: {method: 'wasserstein'}}},
        }),
      (error: {issues: {path: string; message: string}[]}) => {
        const paths = error.issues.map((i) => i.path).sort()
        assert.deepEqual(paths, [
          'monitor.features.income.method',
          'monitor.since',
          'monitor.thresholds.p_value',
          'monitor.thresholds.psy',
        ])
        assert.match(error.issues.find((i) => i.path === 'monitor.thresholds.psy')!.message, /did you mean "psi"/)
        return true
      },
    )
    assert.throws(
      () => validateConfig({...base, monitor: {features: {region: {method: 'chi2', threshold: 5}}}}),
      /monitor\.features\.region\.threshold: must be below 1: with method chi2 it is a p-value/,
    )
  })
})
