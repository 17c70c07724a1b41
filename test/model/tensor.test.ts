import assert from 'node:assert/strict'

import {fromHalf, jsonToFloat, tensorFromJson, tensorToJson, toHalf} from '../../src/model/tensor.js'

describe('tensor codec', () => {
  it('round-trips float16 through IEEE half bits', () => {
    for (const v of [0, 1, -2, 0.5, 65504, 6.103515625e-5, 5.960464477539063e-8]) assert.equal(fromHalf(toHalf(v)), v)
    assert.equal(toHalf(1), 0x3c00)
    assert.equal(toHalf(Number.POSITIVE_INFINITY), 0x7c00)
    assert.ok(Number.isNaN(fromHalf(toHalf(Number.NaN))))
    assert.equal(fromHalf(toHalf(1e6)), Number.POSITIVE_INFINITY)
  })

  it('keeps int64 exact past 2^53 given as strings', () => {
    const t = tensorFromJson({dtype: 'int64', shape: [2], data: ['9007199254740993', -3]})
    assert.equal((t.data as BigInt64Array)[0], 9007199254740993n)
    assert.deepEqual(tensorToJson(t).data, ['9007199254740993', -3])
  })

  it('reads the NaN conventions of JSON', () => {
    assert.ok(Number.isNaN(jsonToFloat(null, 'x')))
    assert.ok(Number.isNaN(jsonToFloat('NaN', 'x')))
    assert.equal(jsonToFloat('-Infinity', 'x'), Number.NEGATIVE_INFINITY)
    assert.throws(() => jsonToFloat('abc', 'age'), /age: expected a number/)
    assert.deepEqual(tensorToJson(tensorFromJson({dtype: 'float32', shape: [3], data: [1, 'NaN', 'Infinity']})).data, [
      1,
      'NaN',
      'Infinity',
    ])
  })

  it('refuses data that does not fit the shape or the dtype', () => {
    assert.throws(() => tensorFromJson({dtype: 'float32', shape: [2, 2], data: [1, 2, 3]}), /needs 4 values, got 3/)
    assert.throws(() => tensorFromJson({dtype: 'uint8', shape: [1], data: [300]}), /out of range for uint8/)
    assert.throws(() => tensorFromJson({dtype: 'bool', shape: [1], data: ['yes']}), /expected true or false/)
    assert.throws(() => tensorFromJson({dtype: 'complex64' as never, shape: [1], data: [1]}), /is not one of/)
  })

  it('decodes base64 tensors', () => {
    const raw = Buffer.from(new Float32Array([1.5, -2]).buffer).toString('base64')
    assert.deepEqual(tensorToJson(tensorFromJson({dtype: 'float32', shape: [2], data_b64: raw})).data, [1.5, -2])
  })
})
