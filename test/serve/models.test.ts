// Every shared model Node can run, every sample, through POST /v2/models/{name}/infer: outputs equal the expected ones.
import assert from 'node:assert/strict'

import {ModelUnsupportedError} from '../../src/model/signature.js'
import {type Running, difference, inferBody, load, modelIds, modelInfo, post, start} from './helpers.js'

describe('serve: the shared models through the v2 infer API', function () {
  for (const id of modelIds()) {
    describe(id, function () {
      let running: Running | undefined

      before(async function () {
        try {
          running = await start(id, {}, {model: await load(id)})
        } catch (error) {
          // The only model Node may not load here is the one needing the en_US.UTF-8 locale (see the models README).
          if (error instanceof ModelUnsupportedError && /locale/.test(error.message)) this.skip()
          throw error
        }
      })

      after(async () => running?.server.close())

      for (const sample of modelInfo(id).samples) {
        it(`sample ${sample.name}`, async function () {
          const {status, json, headers} = await post(
            `${running!.url}/v2/models/${id}/infer`,
            inferBody(sample, `req-${sample.name}`),
          )
          assert.equal(status, 200, JSON.stringify(json)?.slice(0, 300))
          assert.equal(json.model_name, id)
          assert.equal(json.model_version, '1.0.0')
          assert.equal(json.id, `req-${sample.name}`)
          assert.equal(headers.get('x-model-version'), '1.0.0')
          for (const [name, expected] of Object.entries(sample.expected_outputs)) {
            const output = json.outputs.find((o: {name: string}) => o.name === name)
            assert.ok(output, `output ${name} missing`)
            assert.deepEqual(output.shape, expected.shape)
            assert.equal(difference(output.data, expected), undefined, `${name} differs`)
          }
        })
      }
    })
  }
})
