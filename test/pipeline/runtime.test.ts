import assert from 'node:assert/strict'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {Ajv} from 'ajv'

import {MlopsError} from '../../src/errors.js'
import type {ModelSignature} from '../../src/model/signature.js'
import {fromHalf, makeTensor, tensorNumbers} from '../../src/model/tensor.js'
import {PipelineInputError, createPipeline, resolvePipeline} from '../../src/pipeline/index.js'
import type {FeatureSpec, OutputPostprocess, PipelineSpec} from '../../src/pipeline/spec.js'
import type {InputRecord, Pipeline} from '../../src/pipeline/types.js'
import {tableSignature} from './helpers.js'

async function pipelineFor(spec: PipelineSpec, signature: ModelSignature, moduleDir?: string): Promise<Pipeline> {
  return createPipeline(await resolvePipeline(spec, signature), signature, {moduleDir})
}

/** The values one feature writes for one record, read back from the [1,k] tensor. */
async function columnsOf(feature: FeatureSpec, value: unknown, width = 1): Promise<number[]> {
  const pipeline = await pipelineFor({features: [feature]}, tableSignature(width))
  const record: InputRecord = value === undefined ? {} : {[feature.name]: value}
  return tensorNumbers((await pipeline.preprocess([record])).x)
}

describe('pipeline: feature steps', () => {
  const table: [string, FeatureSpec, unknown, number[]][] = [
    ['a number as it is', {name: 'a', type: 'number'}, 2.5, [2.5]],
    ['a CSV numeric string', {name: 'a', type: 'number'}, '41', [41]],
    [
      '"Infinity" where the feature allows it',
      {name: 'a', type: 'number', allow_non_finite: true},
      'Infinity',
      [Infinity],
    ],
    ['an optional missing number as NaN', {name: 'a', type: 'number', required: false}, null, [Number.NaN]],
    ['impute for null', {name: 'a', type: 'number', impute: {value: 7}}, null, [7]],
    ['impute for "NaN"', {name: 'a', type: 'number', impute: {value: 7}}, 'NaN', [7]],
    ['default for a missing field', {name: 'a', type: 'number', default: 3}, undefined, [3]],
    ['clip at max', {name: 'a', type: 'number', clip: {min: 0, max: 10}}, 25, [10]],
    ['clip at min', {name: 'a', type: 'number', clip: {min: 0, max: 10}}, -5, [0]],
    ['log1p', {name: 'a', type: 'number', transform: 'log1p'}, Math.E - 1, [1]],
    [
      'impute → log1p → standardize, in order',
      {
        name: 'a',
        type: 'number',
        impute: {value: Math.E ** 3 - 1},
        transform: ['log1p', {standardize: {mean: 1, std: 2}}],
      },
      null,
      [1],
    ],
    ['minmax', {name: 'a', type: 'number', transform: {minmax: {min: 10, max: 20}}}, 15, [0.5]],
    ['boolean "true" from CSV', {name: 'a', type: 'boolean'}, 'true', [1]],
    ['boolean false', {name: 'a', type: 'boolean'}, false, [0]],
    ['index encoding', {name: 'a', type: 'category', encode: {index: {categories: ['x', 'y', 'z']}}}, 'z', [2]],
    [
      'index of an unknown category',
      {name: 'a', type: 'category', encode: {index: {categories: ['x', 'y'], unknown: -1}}},
      'w',
      [-1],
    ],
  ]
  for (const [what, feature, value, expected] of table) {
    it(what, async () => {
      const got = await columnsOf(feature, value)
      assert.equal(got.length, expected.length)
      got.forEach((v, i) =>
        Number.isNaN(expected[i])
          ? assert.ok(Number.isNaN(v))
          : assert.ok(v === expected[i] || Math.abs(v - expected[i]) < 1e-6, `${v} vs ${expected[i]}`),
      )
    })
  }

  it('one-hot: a known category, an unknown one ignored (all zeros), a missing one imputed', async () => {
    const feature: FeatureSpec = {
      name: 'c',
      type: 'category',
      impute: {value: 'y'},
      encode: {onehot: {categories: ['x', 'y', 'z'], unknown: 'ignore'}},
    }
    assert.deepEqual(await columnsOf(feature, 'z', 3), [0, 0, 1])
    assert.deepEqual(await columnsOf(feature, 'w', 3), [0, 0, 0])
    assert.deepEqual(await columnsOf(feature, null, 3), [0, 1, 0])
  })

  it('feeds float16 as half bits and int64 as BigInt', async () => {
    const half = await pipelineFor(
      {
        features: [
          {name: 'a', type: 'number'},
          {name: 'b', type: 'number'},
        ],
      },
      tableSignature(2, 'float16'),
    )
    const h = (await half.preprocess([{a: 1.5, b: -2}])).x
    assert.equal(h.type, 'float16')
    assert.deepEqual(Array.from(h.data as Uint16Array, fromHalf), [1.5, -2])
    const ints = await pipelineFor(
      {
        features: [
          {name: 'a', type: 'integer'},
          {name: 'b', type: 'category', encode: {index: {categories: ['p', 'q']}}},
        ],
      },
      tableSignature(2, 'int64'),
    )
    const t = (await ints.preprocess([{a: '12', b: 'q'}])).x
    assert.deepEqual([t.type, [...(t.data as BigInt64Array)]], ['int64', [12n, 1n]])
  })
})

describe('pipeline: validate and preprocess errors', () => {
  const spec: PipelineSpec = {
    features: [
      {name: 'age', type: 'number'},
      {name: 'kids', type: 'integer'},
      {name: 'member', type: 'boolean'},
      {name: 'region', type: 'category', categories: ['north', 'south'], encode: {index: {}}},
    ],
  }
  let pipeline: Pipeline
  before(async () => {
    pipeline = await pipelineFor(spec, tableSignature(4))
  })

  it('accepts good records, CSV strings included', () => {
    assert.deepEqual(
      pipeline.validate([
        {age: 41, kids: 2, member: true, region: 'north'},
        {age: '41', kids: '2', member: 'false', region: 'south'},
      ]),
      [],
    )
  })

  it("an index encoding without its own categories uses the feature's", async () => {
    assert.deepEqual(
      tensorNumbers((await pipeline.preprocess([{age: 1, kids: 0, member: 'true', region: 'south'}])).x),
      [1, 0, 1, 1],
    )
  })

  it('reports every problem with its record index and field, without throwing', () => {
    const issues = pipeline.validate([
      {age: 41, kids: 2, member: true, region: 'north'},
      {age: 'abc', kids: 2.5, member: 'maybe', region: 'west', colour: 'red'},
      {kids: 1, member: true, region: 'north', age: 'NaN'},
    ])
    assert.deepEqual(
      issues.map((i) => [i.index, i.field]),
      [
        [1, 'colour'],
        [1, 'age'],
        [1, 'kids'],
        [1, 'member'],
        [1, 'region'],
        [2, 'age'],
      ],
    )
    assert.match(issues[1].message, /expected a number .* got "abc"/)
    assert.match(issues[4].message, /"west" is not one of the categories: north, south/)
    assert.match(issues[5].message, /is required/)
  })

  it('preprocess throws a PipelineInputError (INPUT_INVALID, exit 2) carrying the issues', async () => {
    await assert.rejects(pipeline.preprocess([{age: 1, kids: 1, member: true, region: 'east'}]), (error) => {
      assert.ok(error instanceof PipelineInputError)
      assert.ok(error instanceof MlopsError)
      assert.equal(error.code, 'INPUT_INVALID')
      assert.equal(error.exitCode, 2)
      assert.deepEqual(
        error.issues.map((i) => i.field),
        ['region'],
      )
      return true
    })
  })

  it('names a record that is not an object', () => {
    assert.deepEqual(
      pipeline.validate([42 as unknown as InputRecord]).map((i) => [i.index, i.field]),
      [[0, '']],
    )
  })

  it('a missing value for an integer input without impute is an error, not a NaN cast', async () => {
    const ints = await pipelineFor(
      {features: [{name: 'a', type: 'integer', required: false}]},
      tableSignature(1, 'int32'),
    )
    assert.match(ints.validate([{a: null}])[0].message, /no NaN/)
  })
})

describe('pipeline: post-processing', () => {
  const n2: ModelSignature = {
    inputs: [{name: 'x', dtype: 'float32', shape: ['N', 1]}],
    outputs: [
      {name: 'p', isTensor: true, dtype: 'float32', shape: ['N', 1]},
      {name: 'logits', isTensor: true, dtype: 'float32', shape: ['N', 3]},
      {name: 'ids', isTensor: true, dtype: 'int64', shape: ['N']},
      {name: 'maps', isTensor: true, dtype: 'float16', shape: ['N', 2, 2]},
    ],
  }
  const tensors = () => ({
    p: makeTensor('float32', Float32Array.from([0.25, 0.75]), [2, 1]),
    logits: makeTensor('float32', Float32Array.from([0, 1, 2, 5, 1, Number.NaN]), [2, 3]),
    ids: makeTensor('int64', BigInt64Array.from([7n, 2n ** 60n]), [2]),
    maps: makeTensor('float16', Uint16Array.from([0x3c00, 0x4000, 0x4200, 0x4400, 0, 0, 0, 0x3800]), [2, 2, 2]),
  })
  const records = [{x: 1}, {x: 2}]

  async function predict(outputs: OutputPostprocess[]) {
    const pipeline = await pipelineFor({features: [{name: 'x', type: 'number'}], outputs}, n2)
    return pipeline.postprocess(tensors(), records)
  }

  it('passes every output through as per-record JSON when nothing is configured', async () => {
    const [first, second] = await predict([])
    assert.deepEqual(first, {
      p: [0.25],
      logits: [0, 1, 2],
      ids: 7,
      maps: [
        [1, 2],
        [3, 4],
      ],
    })
    assert.deepEqual(second, {
      p: [0.75],
      logits: [5, 1, 'NaN'],
      ids: String(2n ** 60n),
      maps: [
        [0, 0],
        [0, 0.5],
      ],
    })
  })

  it('threshold on a single score: {<as>: p, label}', async () => {
    const predictions = await predict([{output: 'p', as: 'probability', threshold: 0.5, labels: ['repaid', 'default']}])
    assert.deepEqual(
      predictions.map((p) => [p.probability, p.label]),
      [
        [0.25, 'repaid'],
        [0.75, 'default'],
      ],
    )
  })

  it('sigmoid before the threshold', async () => {
    // The raw 0.25 is below 0.5; its sigmoid, 0.562, is not.
    const [first] = await predict([{output: 'p', activation: 'sigmoid', threshold: 0.5, labels: ['no', 'yes']}])
    assert.ok(Math.abs((first.p as number) - 1 / (1 + Math.exp(-0.25))) < 1e-7)
    assert.equal(first.label, 'yes')
  })

  it('softmax and argmax to labels: {label, score, probabilities}', async () => {
    const [first] = await predict([{output: 'logits', activation: 'softmax', labels: ['a', 'b', 'c']}])
    const e = [1, Math.E, Math.E ** 2].map((v) => v / (1 + Math.E + Math.E ** 2))
    assert.equal(first.label, 'c')
    assert.ok(Math.abs((first.score as number) - e[2]) < 1e-7)
    const probabilities = first.probabilities as Record<string, number>
    assert.deepEqual(Object.keys(probabilities), ['a', 'b', 'c'])
    assert.ok(Math.abs(probabilities.a - e[0]) < 1e-7)
    assert.equal(first.logits, undefined, 'a decided output replaces the raw scores')
  })

  it('top_k: the k best as {label, score}, best first', async () => {
    const [first] = await predict([{output: 'logits', labels: ['a', 'b', 'c'], top_k: 2, as: 'best'}])
    assert.deepEqual(first.best, {
      label: 'c',
      score: 2,
      top_k: [
        {label: 'c', score: 2},
        {label: 'b', score: 1},
      ],
    })
  })
})

describe('pipeline: request schema', () => {
  const ajv = new Ajv({allErrors: true, strict: false})

  it('accepts good records and rejects bad ones at the HTTP boundary', async () => {
    const pipeline = await pipelineFor(
      {
        features: [
          {name: 'age', type: 'number'},
          {name: 'income', type: 'number', required: false, impute: {value: 100}},
          {name: 'kids', type: 'integer'},
          {name: 'member', type: 'boolean'},
          {name: 'region', type: 'category', categories: ['north', 'south'], encode: {onehot: {}}},
        ],
      },
      tableSignature(6),
    )
    const check = ajv.compile(pipeline.requestSchema)
    const good = {age: 41, income: null, kids: 2, member: true, region: 'north'}
    for (const record of [
      good,
      {...good, income: 'NaN'},
      {...good, age: -3.4e38},
      {age: 1, kids: 0, member: false, region: 'south'},
    ]) {
      assert.ok(check(record), `${JSON.stringify(record)}: ${ajv.errorsText(check.errors)}`)
    }
    const bad: [string, unknown][] = [
      ['numeric string over HTTP', {...good, age: '41'}],
      ['missing required field', {income: 1, kids: 2, member: true, region: 'north'}],
      ['null for a required number', {...good, age: null}],
      ['unknown field', {...good, colour: 'red'}],
      ['category outside the list', {...good, region: 'west'}],
      ['fractional integer', {...good, kids: 1.5}],
      ['string boolean', {...good, member: 'true'}],
      ['"Infinity" for a number that does not allow it', {...good, age: 'Infinity'}],
      ['"-Infinity" for an optional number', {...good, income: '-Infinity'}],
      ['1e308, past the float32 range', {...good, age: 1e308}],
      ['-1e308', {...good, income: -1e308}],
    ]
    for (const [what, record] of bad) assert.equal(check(record), false, what)
  })

  it("a tensor feature is a nested array with the shape's sizes, or tensor JSON", async () => {
    const signature: ModelSignature = {
      inputs: [{name: 'img', dtype: 'float32', shape: ['N', 2, 3]}],
      outputs: [{name: 'y', isTensor: true, dtype: 'float32', shape: ['N', 2]}],
    }
    const check = ajv.compile((await pipelineFor({}, signature)).requestSchema)
    assert.ok(
      check({
        img: [
          [1, 2, 3],
          [4, 5, 'NaN'],
        ],
      }),
    )
    assert.ok(check({img: {dtype: 'float32', shape: [2, 3], data: [1, 2, 3, 4, 5, 6]}}))
    assert.equal(
      check({
        img: [
          [1, 2, 3],
          [4, 5, 6, 7],
        ],
      }),
      false,
    )
    assert.equal(check({img: [[1, 2, 3]]}), false)
    assert.equal(check({}), false)
  })
})

describe('pipeline: the escape-hatch module', () => {
  let dir: string
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'mlops-pipeline-'))
    writeFileSync(
      join(dir, 'pipeline.js'),
      [
        '// Derives bmi from height and weight; adds a note to each prediction.',
        'export function preprocess(records) {',
        '  return records.map(({height, weight}) => ({bmi: weight / (height * height)}))',
        '}',
        'export function postprocess(predictions, records, outputs) {',
        '  return predictions.map((p, i) => ({...p, height: records[i].height, rows: outputs.y.dims[0]}))',
        '}',
      ].join('\n'),
    )
    writeFileSync(join(dir, 'broken.js'), 'export function preprocess() { throw new Error("no scale set") }\n')
    writeFileSync(join(dir, 'empty.js'), 'export const x = 1\n')
  })
  after(() => rmSync(dir, {recursive: true, force: true}))
  const signature = tableSignature(1)

  it('runs preprocess before the features and postprocess after the outputs', async () => {
    const pipeline = await pipelineFor(
      {features: [{name: 'bmi', type: 'number'}], module: 'pipeline.js'},
      signature,
      dir,
    )
    const records = [{height: 2, weight: 80}]
    assert.deepEqual(tensorNumbers((await pipeline.preprocess(records)).x), [20])
    assert.deepEqual(pipeline.validate(records), [])
    assert.deepEqual(pipeline.requestSchema.type, 'object')
    const predictions = await pipeline.postprocess(
      {y: makeTensor('float32', Float32Array.from([0.5]), [1, 1])},
      records,
    )
    assert.deepEqual(predictions, [{y: [0.5], height: 2, rows: 1}])
  })

  it('a missing module, one exporting nothing, and a throwing function name the module', async () => {
    await assert.rejects(
      pipelineFor({features: [{name: 'bmi', type: 'number'}], module: 'nope.js'}, signature, dir),
      (e: MlopsError) => e.code === 'PIPELINE_MODULE_NOT_FOUND' && e.message.includes('nope.js') && e.exitCode === 2,
    )
    await assert.rejects(
      pipelineFor({features: [{name: 'bmi', type: 'number'}], module: 'empty.js'}, signature, dir),
      (e: MlopsError) => e.code === 'PIPELINE_MODULE_INVALID' && e.message.includes('empty.js'),
    )
    const broken = await pipelineFor({features: [{name: 'bmi', type: 'number'}], module: 'broken.js'}, signature, dir)
    await assert.rejects(
      broken.preprocess([{bmi: 1}]),
      (e: MlopsError) =>
        e.code === 'PIPELINE_MODULE_FAILED' &&
        /preprocess\(\) in the pipeline module .*broken\.js threw: no scale set/.test(e.message),
    )
    assert.match(broken.validate([{bmi: 1}])[0].message, /broken\.js threw: no scale set/)
  })
})
