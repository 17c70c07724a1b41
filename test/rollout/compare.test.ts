import assert from 'node:assert/strict'

import {parseConfig} from '../../src/config/load.js'
import '../../src/rollout/config.js'
import {compareAnswers} from '../../src/targets/local/compare.js'

const ok = (body: unknown) => ({status: 200, body: JSON.stringify(body)})
const v2 = (label: number[], score: number[]) =>
  ok({
    model_name: 'm',
    model_version: 'x',
    outputs: [
      {name: 'label', datatype: 'INT64', shape: [label.length], data: label},
      {name: 'score', datatype: 'FP32', shape: [score.length], data: score},
    ],
  })

describe('shadow answer comparison', () => {
  const rows = [
    {
      name: 'same v1 predictions, other version field',
      a: ok({predictions: [{y: 1.5, label: 'cat'}], version: '1.0.0'}),
      b: ok({predictions: [{y: 1.5, label: 'cat'}], version: '1.1.0'}),
      agree: true,
      flip: false,
    },
    {
      name: 'v1 score within tolerance',
      a: ok({predictions: [{y: 100}]}),
      b: ok({predictions: [{y: 100.05}]}),
      agree: true,
      flip: false,
    },
    {
      name: 'v1 score outside tolerance',
      a: ok({predictions: [{y: 1.25}]}),
      b: ok({predictions: [{y: 2.375}]}),
      agree: false,
      flip: false,
    },
    {
      name: 'v1 string label flipped',
      a: ok({predictions: [{label: 'cat'}]}),
      b: ok({predictions: [{label: 'dog'}]}),
      agree: false,
      flip: true,
    },
    {name: 'v2 INT64 label flipped', a: v2([0], [0.25]), b: v2([1], [0.25]), agree: false, flip: true},
    {
      name: 'v2 FP32 scores compared with tolerance',
      a: v2([0], [0.25]),
      b: v2([0], [0.2502]),
      agree: true,
      flip: false,
    },
    {
      name: 'different status',
      a: ok({predictions: []}),
      b: {status: 500, body: '{"error":{}}'},
      agree: false,
      flip: true,
    },
    {
      name: 'different number of records',
      a: ok({predictions: [{y: 1}]}),
      b: ok({predictions: [{y: 1}, {y: 1}]}),
      agree: false,
      flip: true,
    },
  ]
  for (const row of rows) {
    it(row.name, () => {
      const result = compareAnswers(row.a, row.b, 1e-3)
      assert.deepEqual([result.agree, result.labelFlip], [row.agree, row.flip])
    })
  }

  it('records the largest score difference', () => {
    assert.equal(compareAnswers(ok({predictions: [{y: 1.25}]}), ok({predictions: [{y: 2.375}]}), 1e-3).scoreDiff, 1.125)
  })
})

describe('deploy config', () => {
  const base = 'name: demo\nmodel: {path: m.onnx}\n'
  it('refuses steps that do not rise, and a deadline shorter than the bake, naming the field', () => {
    assert.throws(
      () => parseConfig(`${base}deploy: {steps: [5, 50, 25], analysis: {bake_seconds: 60, deadline_seconds: 30}}`),
      (error: Error) => {
        assert.match(error.message, /deploy\.steps\[2\]: must be above the step before it \(50\)/)
        assert.match(error.message, /deploy\.analysis\.deadline_seconds: must be at least bake_seconds \(60\)/)
        return true
      },
    )
  })
  it('refuses a step out of range and an unknown gate', () => {
    assert.throws(
      () => parseConfig(`${base}deploy: {steps: [0, 101], analysis: {gates: {errors: {}}}}`),
      /deploy\.steps\[0\]: must be between 1 and 100[\s\S]*deploy\.analysis\.gates\.errors: unknown key/,
    )
  })
})
