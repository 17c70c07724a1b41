import assert from 'node:assert/strict'
import {readFileSync} from 'node:fs'
import {join} from 'node:path'

import {parse} from 'yaml'

import {type LoadedModel, loadModel, runModel} from '../../src/model/signature.js'
import {tensorNumbers} from '../../src/model/tensor.js'
import {PipelineInputError, createPipeline, resolvePipeline} from '../../src/pipeline/index.js'
import type {PipelineSpec} from '../../src/pipeline/spec.js'
import type {InputRecord} from '../../src/pipeline/types.js'
import {MODELS, samplesOf} from './helpers.js'

/** A sample's [N,1] (or [N,k]) input tensors as N records of named columns, the way a client would send them. */
function recordsFromColumns(
  inputs: Record<string, {shape: number[]; data?: unknown[]}>,
  names: Record<string, string[]>,
): InputRecord[] {
  const n = Object.values(inputs)[0].shape[0]
  return Array.from({length: n}, (_, i) => {
    const record: InputRecord = {}
    for (const [input, columns] of Object.entries(names)) {
      columns.forEach((column, j) => {
        const value = inputs[input].data![i * columns.length + j]
        // The samples write NaN as null or "NaN"; a client leaves the field out.
        if (value !== null && value !== 'NaN') record[column] = value
      })
    }
    return record
  })
}

const image = () => [Array.from({length: 28}, () => new Array<number>(28).fill(0))]

describe('pipeline: on the shared models', function () {
  this.timeout(30_000)
  const models: LoadedModel[] = []
  after(async () => Promise.all(models.map((m) => m.session.release())))
  async function load(file: string): Promise<LoadedModel> {
    const model = await loadModel(file)
    models.push(model)
    return model
  }

  it("titanic: five named features feed five [N,1] inputs (3 string, 2 float32), a missing age reaches the model's own imputer", async () => {
    const model = await load(join(MODELS, 'titanic_logreg_pipeline_zipmap.onnx'))
    const spec: PipelineSpec = {
      features: [
        {name: 'pclass', type: 'category', categories: ['1', '2', '3']},
        {name: 'sex', type: 'category', categories: ['female', 'male']},
        {name: 'age', type: 'number', required: false},
        {name: 'fare', type: 'number'},
        {name: 'embarked', type: 'category', categories: ['C', 'Q', 'S']},
      ],
    }
    const resolved = await resolvePipeline(spec, model.signature)
    assert.deepEqual(
      resolved.inputs!.map((a) => a.input),
      ['pclass', 'sex', 'age', 'fare', 'embarked'],
    )
    const pipeline = await createPipeline(resolved, model.signature)
    assert.equal(pipeline.batchable, true)
    const names = {pclass: ['pclass'], sex: ['sex'], age: ['age'], fare: ['fare'], embarked: ['embarked']}
    let sawMissingAge = false
    for (const sample of samplesOf('titanic_logreg_pipeline_zipmap')) {
      const records = recordsFromColumns(sample.inputs, names)
      sawMissingAge ||= records.some((r) => !('age' in r))
      const feeds = await pipeline.preprocess(records)
      assert.deepEqual(Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, [t.type, t.dims]])), {
        pclass: ['string', [records.length, 1]],
        sex: ['string', [records.length, 1]],
        age: ['float32', [records.length, 1]],
        fare: ['float32', [records.length, 1]],
        embarked: ['string', [records.length, 1]],
      })
      const predictions = await pipeline.postprocess(await runModel(model, feeds), records)
      assert.deepEqual(
        predictions.map((p) => p.output_label),
        sample.expected_outputs.output_label.data,
        sample.name,
      )
    }
    assert.ok(sawMissingAge, 'batch5 has a passenger without an age')
  })

  it('xgboost regressor: four features concatenated into [N,4] give the expected outputs within rtol 1e-4', async () => {
    const model = await load(join(MODELS, 'xgboost_regressor.onnx'))
    const columns = ['sepal_length', 'sepal_width', 'petal_length', 'petal_width']
    const resolved = await resolvePipeline({features: columns.map((name) => ({name, type: 'number'}))}, model.signature)
    const pipeline = await createPipeline(resolved, model.signature)
    for (const sample of samplesOf('xgboost_regressor')) {
      // CSV cells are strings: the pipeline coerces them.
      const records = recordsFromColumns(sample.inputs, {X: columns}).map((r) =>
        Object.fromEntries(Object.entries(r).map(([k, v]) => [k, String(v)])),
      )
      const feeds = await pipeline.preprocess(records)
      assert.deepEqual(feeds.X.dims, [records.length, 4])
      const predictions = await pipeline.postprocess(await runModel(model, feeds), records)
      const expected = sample.expected_outputs.variable.data as number[]
      assert.equal(predictions.length, expected.length)
      predictions.forEach((p, i) => {
        const [value] = p.variable as number[]
        assert.ok(
          Math.abs(value - expected[i]) <= 1e-4 * Math.abs(expected[i]) + 1e-7,
          `${sample.name}[${i}]: ${value} vs ${expected[i]}`,
        )
      })
    }
  })

  it('mnist in generic tensor mode: a [1,28,28] nested array per record, one record per run, argmax label', async () => {
    const model = await load(join(MODELS, 'mnist_cnn.onnx'))
    const resolved = await resolvePipeline(
      {
        outputs: [
          {
            output: 'Plus214_Output_0',
            activation: 'softmax',
            labels: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'],
          },
        ],
      },
      model.signature,
    )
    assert.deepEqual(resolved.features, [{name: 'Input3', type: 'tensor', dtype: 'float32', shape: [1, 28, 28]}])
    const pipeline = await createPipeline(resolved, model.signature)
    assert.equal(pipeline.batchable, false)
    for (const sample of samplesOf('mnist_cnn')) {
      const pixels = sample.inputs.Input3.data as number[]
      const image = [Array.from({length: 28}, (_, r) => pixels.slice(r * 28, r * 28 + 28))]
      const feeds = await pipeline.preprocess([{Input3: image}])
      assert.deepEqual(feeds.Input3.dims, [1, 1, 28, 28])
      const [prediction] = await pipeline.postprocess(await runModel(model, feeds), [{Input3: image}])
      const logits = sample.expected_outputs.Plus214_Output_0.data as number[]
      assert.equal(prediction.label, String(logits.indexOf(Math.max(...logits))), sample.name)
      const probabilities = prediction.probabilities as Record<string, number>
      assert.ok(Math.abs(Object.values(probabilities).reduce((a, b) => a + b, 0) - 1) < 1e-6)
      assert.equal(prediction.score, probabilities[prediction.label])
      // The same image as tensor JSON (the sample's own [1,1,28,28] form) gives the same answer.
      const [again] = await pipeline.postprocess(
        await runModel(model, await pipeline.preprocess([{Input3: sample.inputs.Input3}])),
        [{}],
      )
      assert.equal(again.label, prediction.label)
    }
    const issues = pipeline.validate([{Input3: [[[1, 2]]]}])
    assert.equal(issues.length, 1)
    assert.match(issues[0].message, /has shape \[1,1,2\] but the model needs \[1,28,28\]/)
    await assert.rejects(
      pipeline.preprocess([{Input3: 'x'}]),
      (error) =>
        error instanceof PipelineInputError &&
        error.exitCode === 2 &&
        error.issues[0].field === 'Input3' &&
        /expected a nested array/.test(error.issues[0].message),
    )
    assert.deepEqual(
      pipeline.validate([{Input3: image()}, {Input3: image()}]).map((i) => [i.index, i.message]),
      [[1, 'the model takes one record per run (input "Input3" is [1,1,28,28])']],
    )
  })

  it('silero in generic tensor mode: a stacked audio chunk, a whole state tensor and a scalar sample rate', async () => {
    const model = await load(join(MODELS, 'silero_vad_v5.onnx'))
    const resolved = await resolvePipeline({}, model.signature)
    // state is [2,?,128]: its first dim is not a batch, so a record holds the whole tensor.
    assert.deepEqual(
      resolved.features!.map((f) => [f.name, f.shape]),
      [
        ['input', ['']],
        ['state', [2, '', 128]],
        ['sr', []],
      ],
    )
    const pipeline = await createPipeline(resolved, model.signature)
    assert.equal(pipeline.batchable, false)
    for (const sample of samplesOf('silero_vad_v5')) {
      const record = {input: sample.inputs.input.data, state: sample.inputs.state, sr: sample.inputs.sr.data![0]}
      const feeds = await pipeline.preprocess([record])
      assert.deepEqual(
        Object.values(feeds).map((t) => [t.type, t.dims]),
        [
          ['float32', [1, 512]],
          ['float32', [2, 1, 128]],
          ['int64', []],
        ],
      )
      const [prediction] = await pipeline.postprocess(await runModel(model, feeds), [record])
      const expected = sample.expected_outputs.output.data![0] as number
      assert.ok(
        Math.abs((prediction.output as number[])[0] - expected) < 1e-5,
        `${sample.name}: ${JSON.stringify(prediction.output)} vs ${expected}`,
      )
      assert.equal((prediction.stateN as number[][][]).length, 2)
    }
  })

  it('the bundled credit-risk example gives its golden predictions exactly as {probability, label}', async () => {
    const dir = join(import.meta.dirname, '..', '..', 'examples', 'credit-risk')
    const model = await load(join(dir, 'model', 'model.onnx'))
    const config = parse(readFileSync(join(dir, 'mlops.yaml'), 'utf8')) as {pipeline: PipelineSpec}
    const pipeline = await createPipeline(await resolvePipeline(config.pipeline, model.signature), model.signature)
    const cases = readFileSync(join(dir, 'golden.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map(
        (l) =>
          JSON.parse(l) as {records: InputRecord[]; expected: {predictions: {probability: number; label: string}[]}},
      )
    for (const golden of cases) {
      const predictions = await pipeline.postprocess(
        await runModel(model, await pipeline.preprocess(golden.records)),
        golden.records,
      )
      predictions.forEach((p, i) => {
        const expected = golden.expected.predictions[i]
        assert.deepEqual(Object.keys(p), ['probability', 'label'])
        assert.equal(typeof p.probability, 'number')
        assert.equal(p.label, expected.label)
        assert.ok(Math.abs((p.probability as number) - expected.probability) < 1e-5)
      })
    }
    const scores = tensorNumbers((await pipeline.preprocess([cases[0].records[0]])).features)
    assert.equal(scores.length, 13)
  })
})
