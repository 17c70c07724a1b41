import assert from 'node:assert/strict'

import {parseConfig} from '../../src/config/load.js'
import {ConfigError} from '../../src/errors.js'
import type {ModelSignature} from '../../src/model/signature.js'
import {resolvePipeline} from '../../src/pipeline/index.js'
import type {PipelineSpec} from '../../src/pipeline/spec.js'
import type {InputRecord} from '../../src/pipeline/types.js'
import {configIssues, tableSignature} from './helpers.js'

const titanicLike: ModelSignature = {
  inputs: [
    {name: 'sex', dtype: 'string', shape: ['N', 1]},
    {name: 'age', dtype: 'float32', shape: ['N', 1]},
  ],
  outputs: [
    {name: 'score', isTensor: true, dtype: 'float32', shape: ['N']},
    {name: 'probs', isTensor: false},
  ],
}

describe('pipeline: resolve checks against the model', () => {
  it('names an assembly feature that does not exist, and an unknown input', async () => {
    const issues = await configIssues(() =>
      resolvePipeline(
        {
          features: [
            {name: 'sex', type: 'string'},
            {name: 'age', type: 'number'},
          ],
          inputs: [
            {input: 'sex', features: ['sex']},
            {input: 'age', features: ['agee']},
            {input: 'height', features: ['age']},
          ],
        },
        titanicLike,
      ),
    )
    const paths = issues.map((i) => i.path)
    assert.ok(paths.includes('pipeline.inputs[1].features[0]'), JSON.stringify(issues))
    assert.ok(paths.includes('pipeline.inputs[2].input'))
    assert.match(issues.find((i) => i.path === 'pipeline.inputs[1].features[0]')!.message, /"agee" is not a feature/)
  })

  it('names a feature that matches no model input when the assembly is derived', async () => {
    const issues = await configIssues(() =>
      resolvePipeline(
        {
          features: [
            {name: 'sex', type: 'string'},
            {name: 'age', type: 'number'},
            {name: 'fare', type: 'number'},
          ],
        },
        titanicLike,
      ),
    )
    assert.deepEqual(
      issues.map((i) => i.path),
      ['pipeline.features[2].name'],
    )
  })

  it('refuses a number feeding a string input and an unencoded category feeding a float input', async () => {
    const issues = await configIssues(() =>
      resolvePipeline(
        {
          features: [
            {name: 'sex', type: 'number'},
            {name: 'age', type: 'category'},
          ],
        },
        titanicLike,
      ),
    )
    assert.deepEqual(
      issues.map((i) => i.path),
      ['pipeline.features[0]', 'pipeline.features[1]'],
    )
    assert.match(issues[0].message, /cannot feed model input "sex" \(string/)
  })

  it('counts one-hot widths against the fixed column count', async () => {
    const spec: PipelineSpec = {
      features: [
        {name: 'a', type: 'number'},
        {name: 'c', type: 'category', encode: {onehot: {categories: ['x', 'y', 'z']}}},
      ],
    }
    const issues = await configIssues(() => resolvePipeline(spec, tableSignature(5)))
    assert.equal(issues.length, 1)
    assert.match(issues[0].message, /give 4 columns \(a, c one-hot: 3\) but model input "x" \(float32\[N,5\]\) takes 5/)
    const ok = await resolvePipeline(spec, tableSignature(4))
    assert.deepEqual(ok.inputs, [{input: 'x', features: ['a', 'c']}])
  })

  it('refuses a ZipMap output and a threshold with three labels', async () => {
    const issues = await configIssues(() =>
      resolvePipeline(
        {
          features: [
            {name: 'sex', type: 'string'},
            {name: 'age', type: 'number'},
          ],
          outputs: [{output: 'probs'}, {output: 'score', threshold: 0.5, labels: ['a', 'b', 'c']}],
        },
        titanicLike,
      ),
    )
    assert.deepEqual(
      issues.map((i) => i.path),
      ['pipeline.outputs[0].output', 'pipeline.outputs[1].labels'],
    )
  })

  it('counts the scores of an [N,C,1,1] output as C for labels and top_k', async () => {
    const signature: ModelSignature = {
      inputs: [{name: 'img', dtype: 'float16', shape: [1, 3, 4, 4]}],
      outputs: [{name: 'prob', isTensor: true, dtype: 'float16', shape: [1, 5, 1, 1]}],
    }
    await resolvePipeline({outputs: [{output: 'prob', top_k: 5}]}, signature)
    const issues = await configIssues(() =>
      resolvePipeline({outputs: [{output: 'prob', top_k: 6, labels: ['a', 'b']}]}, signature),
    )
    assert.deepEqual(
      issues.map((i) => i.path),
      ['pipeline.outputs[0].labels', 'pipeline.outputs[0].top_k'],
    )
  })

  it('reports type mistakes in every feature at once', async () => {
    const issues = await configIssues(() =>
      resolvePipeline(
        {
          features: [
            {name: 'a', type: 'string', transform: 'log'},
            {name: 'b', type: 'number', encode: {onehot: {}}},
            {name: 'c', type: 'integer', default: 'many'},
            {name: 'a', type: 'number'},
          ],
        },
        tableSignature(4),
      ),
    )
    assert.deepEqual(
      issues.map((i) => i.path),
      [
        'pipeline.features[0].transform',
        'pipeline.features[1].encode',
        'pipeline.features[2].default',
        'pipeline.features[3].name',
      ],
    )
  })

  it('asks for reference data when a statistic is left out, naming the field', async () => {
    const issues = await configIssues(() =>
      resolvePipeline(
        {
          features: [{name: 'a', type: 'number', impute: 'mean', transform: ['log1p', {standardize: {}}]}],
        },
        tableSignature(1),
      ),
    )
    assert.deepEqual(
      issues.map((i) => i.path),
      ['pipeline.features[0].impute', 'pipeline.features[0].transform[1].standardize'],
    )
    assert.match(issues[0].message, /data\.reference/)
  })

  it('derives generic tensor mode from the signature when there are no features', async () => {
    const signature: ModelSignature = {
      inputs: [
        {name: 'image', dtype: 'float32', shape: [1, 1, 28, 28]},
        {name: 'sr', dtype: 'int64', shape: []},
      ],
      outputs: [{name: 'y', isTensor: true, dtype: 'float32', shape: [1, 10]}],
    }
    const resolved = await resolvePipeline({}, signature)
    assert.deepEqual(resolved.features, [
      {name: 'image', type: 'tensor', dtype: 'float32', shape: [1, 28, 28]},
      {name: 'sr', type: 'tensor', dtype: 'int64', shape: []},
    ])
    assert.deepEqual(resolved.inputs, [
      {input: 'image', features: ['image']},
      {input: 'sr', features: ['sr']},
    ])
  })

  it('refuses a tensor shape that does not match the model input', async () => {
    const signature: ModelSignature = {
      inputs: [{name: 'x', dtype: 'float32', shape: ['N', 3, 32, 32]}],
      outputs: [{name: 'y', isTensor: true, dtype: 'float32', shape: ['N', 2]}],
    }
    const issues = await configIssues(() =>
      resolvePipeline({features: [{name: 'x', type: 'tensor', shape: [3, 28, 28]}]}, signature),
    )
    assert.equal(issues[0].path, 'pipeline.features[0].shape')
  })

  it('freezes the result and keeps it JSON', async () => {
    const resolved = await resolvePipeline({features: [{name: 'a', type: 'number'}]}, tableSignature(1))
    assert.ok(Object.isFrozen(resolved.features![0]))
    assert.deepEqual(JSON.parse(JSON.stringify(resolved)), {
      features: [{name: 'a', type: 'number'}],
      inputs: [{input: 'x', features: ['a']}],
      resolved: true,
    })
  })
})

describe('pipeline: fitting on reference records', () => {
  // CSV cells: strings, with null for empty cells.
  const reference: InputRecord[] = [
    {age: '20', income: '1000', region: 'north', member: 'true'},
    {age: '30', income: null, region: 'south', member: 'false'},
    {age: '40', income: '3000', region: 'north', member: 'true'},
    {age: '50', income: '', region: 'east', member: 'true'},
    {age: 'NaN', income: '8000', region: null, member: '1'},
  ]

  it('fits impute, standardize after earlier steps, minmax and categories to hand-computed values', async () => {
    const spec: PipelineSpec = {
      features: [
        {name: 'age', type: 'number', impute: 'median', transform: {standardize: {}}},
        {name: 'income', type: 'number', impute: 'mean', transform: [{minmax: {}}]},
        {name: 'region', type: 'category', impute: 'most_frequent', encode: {onehot: {}}},
        {name: 'member', type: 'boolean', impute: 'most_frequent'},
      ],
    }
    async function* records() {
      yield* reference
    }
    const resolved = await resolvePipeline(spec, tableSignature(6), records())
    const [age, income, region, member] = resolved.features!
    // age: median of 20,30,40,50 = 35; after imputing, 20,30,40,50,35: mean 35, population std sqrt(500 / 5) = 10
    assert.deepEqual(age.impute, {value: 35, from: 'median'})
    assert.deepEqual(age.transform, {standardize: {mean: 35, std: 10}})
    // income: mean of 1000, 3000, 8000 = 4000; imputed column 1000, 4000, 3000, 4000, 8000
    assert.deepEqual(income.impute, {value: 4000, from: 'mean'})
    assert.deepEqual(income.transform, [{minmax: {min: 1000, max: 8000}}])
    assert.deepEqual(region.impute, {value: 'north', from: 'most_frequent'})
    assert.deepEqual(region.encode, {onehot: {categories: ['east', 'north', 'south']}})
    assert.deepEqual(member.impute, {value: 1, from: 'most_frequent'})
  })

  it('fits standardize on the values after log1p', async () => {
    const resolved = await resolvePipeline(
      {features: [{name: 'income', type: 'number', transform: ['log1p', {standardize: {}}]}]},
      tableSignature(1),
      [{income: '0'}, {income: String(Math.E ** 2 - 1)}],
    )
    const [, standardize] = resolved.features![0].transform as [string, {standardize: {mean: number; std: number}}]
    assert.ok(Math.abs(standardize.standardize.mean - 1) < 1e-12)
    assert.ok(Math.abs(standardize.standardize.std - 1) < 1e-12)
  })

  it('does not read the reference data when nothing needs fitting', async () => {
    let read = 0
    const counting = {
      async *[Symbol.asyncIterator]() {
        read++
        yield {a: '1'}
      },
    }
    await resolvePipeline(
      {features: [{name: 'a', type: 'number', transform: {standardize: {mean: 0, std: 1}}}]},
      tableSignature(1),
      counting,
    )
    assert.equal(read, 0)
  })

  it('names the record and field of an unreadable reference value', async () => {
    await assert.rejects(
      resolvePipeline({features: [{name: 'a', type: 'number', impute: 'mean'}]}, tableSignature(1), [
        {a: '1'},
        {a: 'abc'},
      ]),
      (error: Error & {code?: string}) =>
        error.code === 'REFERENCE_INVALID' && /record 1, a: "abc" is not a number/.test(error.message),
    )
  })
})

describe('pipeline: mlops.yaml schema', () => {
  const base = 'name: a\nmodel: {path: m.onnx}\n'

  it("accepts the bundled example's shape: a list of transforms, onehot with unknown", () => {
    const config = parseConfig(
      `${base}pipeline:\n  features:\n    - {name: income, type: number, required: false, impute: {value: 46800}, transform: [log1p, {standardize: {mean: 10.7, std: 0.65}}]}\n    - {name: region, type: category, encode: {onehot: {categories: [north, south], unknown: ignore}}}\n  outputs:\n    - {output: probability, activation: none, threshold: 0.5, labels: [repaid, default]}\n`,
    )
    assert.equal(config.pipeline!.features!.length, 2)
  })

  it('rejects an unknown key and a wrong type with the field path', () => {
    assert.throws(
      () =>
        parseConfig(
          `${base}pipeline:\n  features:\n    - {name: age, type: number, transfrom: log}\n    - {name: b, type: decimal}\n  outputs:\n    - {output: y, top_k: two}\n`,
        ),
      (error) => {
        assert.ok(error instanceof ConfigError)
        const paths = error.issues.map((i) => i.path)
        assert.ok(paths.includes('pipeline.features[0].transfrom'), JSON.stringify(error.issues))
        assert.match(
          error.issues.find((i) => i.path === 'pipeline.features[0].transfrom')!.message,
          /did you mean "transform"/,
        )
        assert.ok(paths.includes('pipeline.features[1].type'))
        assert.ok(paths.includes('pipeline.outputs[0].top_k'))
        return true
      },
    )
  })
})
