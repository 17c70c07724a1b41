// Every datatype onnxruntime-node can feed goes through v2 infer and back unchanged, int64/uint64 exact past 2^53.
import assert from 'node:assert/strict'

import {loadModel} from '../../src/model/signature.js'
import {DATATYPE, post, start} from './helpers.js'
import {identityModel} from './identity-model.js'

const VALUES: Record<string, string> = {
  bool: '[true,false,true,false,false,true]',
  uint8: '[0,1,255,7,8,9]',
  int8: '[-128,0,127,1,2,3]',
  uint16: '[0,65535,3,4,5,6]',
  int16: '[-32768,32767,0,1,2,3]',
  uint32: '[0,4294967295,2,3,4,5]',
  int32: '[-2147483648,2147483647,0,1,2,3]',
  // Past 2^53: a double would round 9007199254740993 to ...992.
  int64: '[9007199254740993,-9223372036854775808,9223372036854775807,0,-1,42]',
  uint64: '[18446744073709551615,9007199254740993,0,1,2,3]',
  float16: '[0.5,-2,65504,0.0999755859375,"NaN","-Infinity"]',
  float32: '[0.5,-2.25,3.4028234663852886e+38,0.10000000149011612,"NaN","Infinity"]',
  float64: '[0.1,-2.5,1.7976931348623157e+308,5e-324,"NaN","-Infinity"]',
  string: '["a","","ünïcödé","with \\"quotes\\"","x","y"]',
}

describe('serve: every v2 datatype round-trips exactly', function () {
  for (const [dtype, data] of Object.entries(VALUES)) {
    it(`${DATATYPE[dtype]}`, async () => {
      const model = await loadModel(identityModel(dtype))
      const {server, url} = await start(`identity_${dtype}`, {}, {model})
      try {
        const body = `{"inputs":[{"name":"x","shape":[2,3],"datatype":"${DATATYPE[dtype]}","data":${data}}]}`
        const {status, text} = await post(`${url}/v2/models/identity_${dtype}/infer`, body)
        assert.equal(status, 200, text)
        // Compare the JSON text of the data: exact digits, no rounding through a double.
        const echoed = /"data":(\[.*\])\}\]\}$/.exec(text)?.[1]
        assert.equal(echoed, data)
        assert.match(text, new RegExp(`"datatype":"${DATATYPE[dtype]}","shape":\\[2,3\\]`))
      } finally {
        await server.close()
      }
    })
  }

  it('accepts nested data and answers the same as flat data', async () => {
    const model = await loadModel(identityModel('int64'))
    const {server, url} = await start('identity_int64', {}, {model})
    try {
      const flat = await post(
        `${url}/v2/models/identity_int64/infer`,
        '{"inputs":[{"name":"x","shape":[2,3],"datatype":"INT64","data":[1,2,3,4,5,9007199254740993]}]}',
      )
      const nested = await post(
        `${url}/v2/models/identity_int64/infer`,
        '{"inputs":[{"name":"x","shape":[2,3],"datatype":"INT64","data":[[1,2,3],[4,5,9007199254740993]]}]}',
      )
      assert.equal(nested.status, 200, nested.text)
      assert.equal(nested.text, flat.text)
    } finally {
      await server.close()
    }
  })
})
