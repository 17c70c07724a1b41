// Probing a model with generated inputs: what runs, the sizes and integer ranges it takes, the columns that take NaN.
import assert from 'node:assert/strict'
import {writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {randomFeeds, resolveShapes} from '../../src/init/inputs.js'
import {type ProbeFindings, probeModel} from '../../src/model/probe.js'
import {loadModel} from '../../src/model/signature.js'
import {makeTensor} from '../../src/model/tensor.js'
import {MODELS_DIR, tempDir} from '../support/cli.js'
import {convModel, gatherModel, matMulModel} from '../support/onnx-fixtures.js'

describe('probing a model', function () {
  this.timeout(60_000)
  let tmp: Awaited<ReturnType<typeof tempDir>>
  before(async () => {
    tmp = await tempDir('mlops-probe-')
  })
  after(async () => tmp.remove())

  async function probe(path: string): Promise<ProbeFindings> {
    const model = await loadModel(path)
    try {
      return await probeModel(model, {
        shapes: resolveShapes(model.signature, 'tensor').shapes,
        fixed: new Set(),
        makeFeeds: (shapes, intMax) => randomFeeds(model.signature, shapes, 1, intMax),
      })
    } finally {
      await model.session.release()
    }
  }

  async function made(name: string, bytes: Uint8Array): Promise<ProbeFindings> {
    const path = join(tmp.path, `${name}.onnx`)
    writeFileSync(path, bytes)
    return probe(path)
  }

  it('keeps index inputs within a small table (Gather on 3 rows)', async () => {
    const findings = await made('gather', gatherModel())
    assert.ok(findings.working, findings.error)
    assert.ok(findings.working.intMax <= 2, `integers up to ${findings.working.intMax}`)
    assert.equal(findings.batchOfTwo, true)
  })

  it('finds the one width a MatMul takes and the shortest audio a convolution takes', async () => {
    const needs20 = await made('needs20', matMulModel('k', 20, 2, 'y'))
    assert.deepEqual(needs20.working?.shapes.x, [1, 20])
    assert.deepEqual(needs20.axes, [{input: 'x', axis: 1, min: 20, larger: false}])
    const conv = await made('conv', convModel(200))
    assert.deepEqual(conv.axes, [{input: 'audio', axis: 1, min: 200, larger: true}])
  })

  it('says which columns take NaN: a tree ensemble does, a plain MatMul does not', async () => {
    const trees = await probe(join(MODELS_DIR, 'xgboost_regressor.onnx'))
    assert.deepEqual(trees.missingOk.input ?? Object.values(trees.missingOk)[0], [true, true, true, true])
    const linear = await made('linear', matMulModel(4, 4, 2, 'y'))
    assert.deepEqual(linear.missingOk.x, [false, false, false, false])
  })

  it('starts from real inputs when given (--sample) and still learns which columns take NaN', async () => {
    const model = await loadModel(join(MODELS_DIR, 'xgboost_regressor.onnx'))
    try {
      const base = {input: makeTensor('float32', Float32Array.from([5.1, 3.5, 1.4, 0.2]), [1, 4])}
      const name = model.signature.inputs[0].name
      const findings = await probeModel(model, {
        shapes: {[name]: [1, 4]},
        fixed: new Set([name]),
        makeFeeds: (shapes, intMax) => randomFeeds(model.signature, shapes, 7, intMax),
        base: {[name]: base.input},
      })
      assert.equal(findings.working?.feeds[name], base.input)
      assert.deepEqual(findings.missingOk[name], [true, true, true, true])
    } finally {
      await model.session.release()
    }
  })

  it('runs silero VAD, which needs a state batch of 1 and more than 64 samples', async () => {
    const findings = await probe(join(MODELS_DIR, 'silero_vad_v5.onnx'))
    assert.ok(findings.working, findings.error)
    assert.equal(findings.working.shapes.state[1], 1)
    assert.ok(findings.working.shapes.input[1] > 64)
  })
})
