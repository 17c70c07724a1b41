import assert from 'node:assert/strict'

import type {ModelSignature} from '../../src/model/signature.js'
import {parseShapeFlags, resolveShapes} from '../../src/init/inputs.js'
import {renderTemplate} from '../../src/init/render.js'
import {detectTemplate, inferPipeline, looksLikeProbabilities, suggestPipeline} from '../../src/init/suggest.js'

const tabular: ModelSignature = {
  inputs: [{name: 'X', dtype: 'float32', shape: ['', 3]}],
  outputs: [{name: 'scores', isTensor: true, dtype: 'float32', shape: ['', 2]}],
}
const columns: ModelSignature = {
  inputs: [
    {name: 'sex', dtype: 'string', shape: ['', 1]},
    {name: 'age', dtype: 'float32', shape: ['', 1]},
    {name: 'rooms', dtype: 'int64', shape: ['N']},
  ],
  outputs: [
    {name: 'label', isTensor: true, dtype: 'int64', shape: ['']},
    {name: 'probability', isTensor: false},
  ],
}
const image: ModelSignature = {
  inputs: [{name: 'x', dtype: 'float32', shape: ['batch', 3, 'h', 'w']}],
  outputs: [{name: 'logits', isTensor: true, dtype: 'float32', shape: ['batch', 1000]}],
}
const audio: ModelSignature = {
  inputs: [
    {name: 'input', dtype: 'float32', shape: ['', '']},
    {name: 'state', dtype: 'float32', shape: [2, '', 128]},
    {name: 'sr', dtype: 'int64', shape: []},
  ],
  outputs: [{name: 'output', isTensor: true, dtype: 'float32', shape: ['', 1]}],
}

describe('init: template and pipeline from the signature', () => {
  it('picks tabular for columns, image for one rank-4 float input, tensor for the rest', () => {
    assert.equal(detectTemplate(tabular), 'tabular')
    assert.equal(detectTemplate(columns), 'tabular')
    assert.equal(detectTemplate(image), 'image')
    assert.equal(detectTemplate(audio), 'tensor')
    // A flattened 28x28 image is not a table anyone fills in by hand.
    assert.equal(
      detectTemplate({inputs: [{name: 'pixels', dtype: 'float32', shape: ['', 784]}], outputs: tabular.outputs}),
      'tensor',
    )
  })

  it('names the columns f0..f(k-1) for one [N,k] input and after the inputs for several', () => {
    const one = suggestPipeline(tabular, 'tabular')
    assert.deepEqual(one.features, [
      {name: 'f0', type: 'number'},
      {name: 'f1', type: 'number'},
      {name: 'f2', type: 'number'},
    ])
    assert.deepEqual(one.inputs, [{input: 'X', features: ['f0', 'f1', 'f2']}])
    const many = suggestPipeline(columns, 'tabular')
    assert.deepEqual(many.features, [
      {name: 'sex', type: 'string'},
      {name: 'age', type: 'number'},
      {name: 'rooms', type: 'integer'},
    ])
    assert.deepEqual(many.outputs, [{output: 'label'}], 'the ZipMap output is left out')
  })

  it('gives tensor features as one record of the input: a dynamic or fixed-1 first dim is the batch, another fixed one stays', () => {
    assert.deepEqual(suggestPipeline(image, 'image').features, [
      {name: 'x', type: 'tensor', dtype: 'float32', shape: [3, 'h', 'w']},
    ])
    assert.deepEqual(
      suggestPipeline(audio, 'tensor').features.map((f) => f.shape),
      [['?'], [2, '?', 128], []],
    )
    const fixedBatch: ModelSignature = {
      inputs: [{name: 'Input3', dtype: 'float32', shape: [1, 1, 28, 28]}],
      outputs: [],
    }
    assert.deepEqual(suggestPipeline(fixedBatch, 'tensor').features[0].shape, [1, 28, 28])
  })

  it('gives an image feature with steps to the model size for a fixed-size picture input, CHW or HWC', () => {
    const chw: ModelSignature = {inputs: [{name: 'Input3', dtype: 'float32', shape: [1, 1, 28, 28]}], outputs: []}
    assert.deepEqual(suggestPipeline(chw, 'image').features, [
      {
        name: 'Input3',
        type: 'image',
        image: {resize: {width: 28, height: 28, filter: 'linear'}, color: 'grey', scale: 1 / 255, layout: 'chw'},
      },
    ])
    const hwc: ModelSignature = {inputs: [{name: 'x', dtype: 'float32', shape: ['n', 224, 160, 3]}], outputs: []}
    assert.deepEqual(suggestPipeline(hwc, 'image').features[0].image, {
      resize: {width: 160, height: 224, filter: 'linear'},
      color: 'rgb',
      scale: 1 / 255,
      layout: 'hwc',
    })
  })

  it('suggests softmax and an argmax label for class scores, none when the scores already are probabilities', () => {
    assert.deepEqual(suggestPipeline(tabular, 'tabular').outputs, [
      {output: 'scores', activation: 'softmax', labels: ['0', '1']},
    ])
    const probabilities = {scores: {dtype: 'float32' as const, shape: [1, 2], data: [0.25, 0.75]}}
    assert.deepEqual(suggestPipeline(tabular, 'tabular', probabilities).outputs, [
      {output: 'scores', activation: 'none', labels: ['0', '1']},
    ])
    assert.deepEqual(
      suggestPipeline(image, 'image').outputs,
      [{output: 'logits', activation: 'softmax', top_k: 5}],
      '1000 classes: top_k rather than 1000 labels',
    )
    assert.deepEqual(
      suggestPipeline(audio, 'tensor').outputs,
      [{output: 'output'}],
      'a single score per row is not a class distribution',
    )
    assert.equal(looksLikeProbabilities({dtype: 'float32', shape: [1, 2], data: [2.5, -1]}), false)
  })
})

describe('init: what a run of the model says about its outputs and features', () => {
  const float = (name: string, shape: (number | string)[]) => ({name, isTensor: true, dtype: 'float32' as const, shape})
  const rows = (data: number[], width: number) => ({
    dtype: 'float32' as const,
    shape: [data.length / width, width],
    data,
  })

  it('gives numbers, not invented classes, to regressions with two outputs, embeddings and 2-D projections', () => {
    const regressor: ModelSignature = {inputs: tabular.inputs, outputs: [float('variable', ['', 2])]}
    const observed = {variable: rows([12.5, -3, 40.1, 7.25], 2)}
    const {pipeline, inferred} = inferPipeline(regressor, 'tabular', {observed})
    assert.deepEqual(pipeline.outputs, [{output: 'variable'}])
    assert.match(inferred.find((i) => i.name === 'variable')!.decision, /numbers/)
    const embedding: ModelSignature = {inputs: tabular.inputs, outputs: [float('embedding', ['', 64])]}
    assert.deepEqual(suggestPipeline(embedding, 'tabular', {embedding: rows(Array(64).fill(0.3), 64)}).outputs, [
      {output: 'embedding'},
    ])
  })

  it('labels one of two float outputs of the same shape at most, so the config init writes is valid', () => {
    const twin: ModelSignature = {
      inputs: tabular.inputs,
      outputs: [float('probs_a', ['', 3]), float('probs_b', ['', 3])],
    }
    const p = [0.2, 0.3, 0.5]
    const {pipeline} = inferPipeline(twin, 'tabular', {observed: {probs_a: rows(p, 3), probs_b: rows(p, 3)}})
    assert.equal(pipeline.outputs.filter((o) => o.labels || o.top_k).length, 1, JSON.stringify(pipeline.outputs))
  })

  it('labels class scores that sum to one, or whose name says so, and leaves scores beside a label output unlabelled', () => {
    const plain: ModelSignature = {inputs: tabular.inputs, outputs: [float('output_0', ['', 3])]}
    assert.deepEqual(suggestPipeline(plain, 'tabular', {output_0: rows([0.1, 0.6, 0.3], 3)}).outputs, [
      {output: 'output_0', activation: 'none', labels: ['0', '1', '2']},
    ])
    const withLabel: ModelSignature = {
      inputs: tabular.inputs,
      outputs: [{name: 'label', isTensor: true, dtype: 'int64', shape: ['']}, float('probabilities', ['', 3])],
    }
    const {pipeline, inferred} = inferPipeline(withLabel, 'tabular', {
      observed: {probabilities: rows([0.1, 0.6, 0.3], 3)},
    })
    assert.deepEqual(pipeline.outputs, [{output: 'label'}, {output: 'probabilities'}])
    assert.deepEqual(
      inferred.filter((i) => i.kind === 'output').map((i) => i.name),
      ['label', 'probabilities'],
    )
  })

  it('reads the class count from a run when the model leaves it dynamic', () => {
    const dynamic: ModelSignature = {inputs: tabular.inputs, outputs: [float('probabilities', ['', 'classes'])]}
    assert.deepEqual(suggestPipeline(dynamic, 'tabular', {probabilities: rows([0.1, 0.6, 0.3], 3)}).outputs, [
      {output: 'probabilities', activation: 'none', labels: ['0', '1', '2']},
    ])
  })

  it('makes a feature optional where the model took a missing value, required where it did not', () => {
    const {pipeline, inferred} = inferPipeline(tabular, 'tabular', {missingOk: {X: [true, false, true]}})
    assert.deepEqual(
      pipeline.features.map((f) => [f.name, f.required]),
      [
        ['f0', false],
        ['f1', undefined],
        ['f2', false],
      ],
    )
    assert.deepEqual(
      inferred.filter((i) => i.kind === 'feature').map((i) => `${i.name} ${i.decision}`),
      ['f0 optional', 'f1 required', 'f2 optional'],
    )
  })

  it('fixes a dynamic dimension the model ran at one size only', () => {
    const free: ModelSignature = {inputs: [{name: 'x', dtype: 'float32', shape: ['N', 'k']}], outputs: audio.outputs}
    const {pipeline} = inferPipeline(free, 'tensor', {
      axes: [{input: 'x', axis: 1, min: 20, larger: false}],
      shapes: {x: [1, 20]},
    })
    assert.deepEqual(pipeline.features[0].shape, [20])
  })
})

describe('init: shapes of generated inputs', () => {
  it('uses batch 1, image sides 224, --shape sizes, and one size per named dynamic dim', () => {
    assert.deepEqual(resolveShapes(image, 'image').shapes, {x: [1, 3, 224, 224]})
    assert.deepEqual(resolveShapes(image, 'image', {x: [1, 3, 48, 192]}), {shapes: {x: [1, 3, 48, 192]}, defaulted: []})
    const shared: ModelSignature = {
      inputs: [
        {name: 'ids', dtype: 'int64', shape: ['batch', 'seq']},
        {name: 'mask', dtype: 'int64', shape: ['batch', 'seq']},
      ],
      outputs: [],
    }
    assert.deepEqual(resolveShapes(shared, 'tensor', {ids: [1, 7]}).shapes, {ids: [1, 7], mask: [1, 7]})
    assert.deepEqual(resolveShapes(audio, 'tensor').defaulted, ['input', 'state'])
  })

  it('refuses --shape values that do not fit the model, naming the input', () => {
    assert.throws(() => parseShapeFlags(['x:1,2']), /--shape x:1,2: expected INPUT=D0,D1/)
    assert.throws(() => resolveShapes(image, 'image', {y: [1, 3, 2, 2]}), /no input "y"; its inputs are x/)
    assert.throws(() => resolveShapes(image, 'image', {x: [1, 3, 2]}), /rank 4/)
    assert.throws(() => resolveShapes(image, 'image', {x: [1, 1, 2, 2]}), /dimension 1 .* is fixed at 3/)
    assert.throws(() => resolveShapes(image, 'image', {x: [1, 3, 100_000, 100_000]}), {
      code: 'INIT_SHAPE_TOO_LARGE',
      message: /30,000,000,000 values per case/,
    })
    assert.deepEqual(resolveShapes(image, 'image', {x: [1, 3, 1024, 1024]}).shapes.x, [1, 3, 1024, 1024])
  })
})

describe('init: template rendering', () => {
  it('fills {{var}} and leaves GitHub Actions ${{ }} expressions alone', () => {
    assert.equal(
      renderTemplate('name: {{name}}\nif: ${{ github.ref }}', {name: 'credit-risk'}),
      'name: credit-risk\nif: ${{ github.ref }}',
    )
    assert.throws(() => renderTemplate('{{missing}}', {}), /\{\{missing\}\}/)
  })
})
