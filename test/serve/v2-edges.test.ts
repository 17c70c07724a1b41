// v2 infer on the edges of what onnxruntime-node can run: no inputs at all, an optional(tensor) input, negative zeros.
import assert from 'node:assert/strict'
import {writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {loadModel} from '../../src/model/signature.js'
import {tempDir} from '../support/cli.js'
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
})
