// v2 infer on the edges of what onnxruntime-node can run: no inputs at all, an optional(tensor) input, negative zeros,
// and inputs of a shape the graph cannot take.
import assert from 'node:assert/strict'
import {writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {loadModel} from '../../src/model/signature.js'
import {MODELS_DIR, tempDir} from '../support/cli.js'
import {noInputModel, optionalInputModel} from '../support/onnx-fixtures.js'
import {post, start} from './helpers.js'
import {identityModel} from './identity-model.js'

describe('serve: v2 infer on edge models', function () {
  let tmp: Awaited<ReturnType<typeof tempDir>>
  before(async () => {
    tmp = await tempDir('mlops-v2-edges-')
  })
  after(async () => tmp.remove())

  async function serving(name: string, bytes: Uint8Array) {
    const path = join(tmp.path, `${name}.onnx`)
    writeFileSync(path, bytes)
    return start(name, {}, {model: await loadModel(path)})
  }

  it('calls a model without inputs with {"inputs": []}', async () => {
    const {server, url} = await serving('constant', noInputModel())
    try {
      const {status, text} = await post(`${url}/v2/models/constant/infer`, '{"inputs":[]}')
      assert.equal(status, 200, text)
      assert.match(text, /"name":"y","datatype":"FP32","shape":\[1,3\]/)
    } finally {
      await server.close()
    }
  })

  it('feeds a plain tensor to an optional(tensor) input', async () => {
    const {server, url} = await serving('optional', optionalInputModel())
    try {
      const body = '{"inputs":[{"name":"x","shape":[2,2],"datatype":"FP32","data":[1,2,3,4]}]}'
      const {status, text} = await post(`${url}/v2/models/optional/infer`, body)
      assert.equal(status, 200, text)
      assert.match(text, /"data":\[1,2,3,4\]/)
    } finally {
      await server.close()
    }
  })

  it('keeps -0 as -0 in JSON answers', async () => {
    const {server, url} = await start('identity_float32', {}, {model: await loadModel(identityModel('float32'))})
    try {
      const body = '{"inputs":[{"name":"x","shape":[2,3],"datatype":"FP32","data":[-0,0,-0.5,1,-0,2]}]}'
      const {status, text} = await post(`${url}/v2/models/identity_float32/infer`, body)
      assert.equal(status, 200, text)
      assert.equal(/"data":(\[.*?\])/.exec(text)?.[1], '[-0,0,-0.5,1,-0,2]')
    } finally {
      await server.close()
    }
  })

  it('answers 400 naming the shape the model takes when a kernel fails on the inputs (v2 and /v1), never 500', async () => {
    // Audio of one sample: silero's STFT Pad needs two or more, so onnxruntime fails inside the graph.
    const {server, url} = await start('silero', {}, {model: await loadModel(join(MODELS_DIR, 'silero_vad_v5.onnx'))})
    const state = {name: 'state', shape: [2, 1, 128], datatype: 'FP32', data: new Array(256).fill(0)}
    const sr = {name: 'sr', shape: [], datatype: 'INT64', data: [16000]}
    try {
      const audio = (samples: number) => ({
        name: 'input',
        shape: [1, samples],
        datatype: 'FP32',
        data: new Array(samples).fill(0.1),
      })
      const short = await post(`${url}/v2/models/silero/infer`, JSON.stringify({inputs: [audio(1), state, sr]}))
      assert.equal(short.status, 400, short.text)
      const error = JSON.parse(short.text) as {error: string; code: string; field: string}
      assert.equal(error.code, 'INPUT_REJECTED')
      assert.equal(error.field, 'inputs')
      assert.match(error.error, /input float32\[1,1\].*it takes input float32\[\?,\?\]/)
      assert.match(error.error, /Pad reflect requires axis length >= 2/)
      const enough = await post(`${url}/v2/models/silero/infer`, JSON.stringify({inputs: [audio(512), state, sr]}))
      assert.equal(enough.status, 200, enough.text)

      const v1 = await post(
        `${url}/v1/predict`,
        JSON.stringify({
          instances: [{input: [[0.1]], state: [[new Array(128).fill(0)], [new Array(128).fill(0)]], sr: 16000}],
        }),
      )
      assert.equal(v1.status, 400, v1.text)
      assert.match(v1.text, /"code":"INPUT_REJECTED".*the model cannot run on these inputs/)
    } finally {
      await server.close()
    }
  })
})
