// Triton's binary tensor data extension on /v2 infer: raw little-endian tensors after the JSON, both ways, exact for every datatype.
import assert from 'node:assert/strict'
import {readFileSync} from 'node:fs'
import {join} from 'node:path'

import {loadModel} from '../../src/model/signature.js'
import {tensorFromJson} from '../../src/model/tensor.js'
import {tempDir} from '../support/cli.js'
import {type Running, modelInfo, plain, post, start} from './helpers.js'
import {identityModel} from './identity-model.js'

/** A request as tritonclient sends it: the JSON, then the bytes of each binary input, its length in a header. */
async function postBinary(
  url: string,
  json: unknown,
  tensors: Buffer[],
  options: {pad?: number; headers?: Record<string, string>} = {},
): Promise<{status: number; json: any; text: string; binary: Buffer[]; headers: Headers}> {
  const head = Buffer.from(JSON.stringify(json) + ' '.repeat(options.pad ?? 0))
  const response = await fetch(url, {
    method: 'POST',
    body: Buffer.concat([head, ...tensors]),
    headers: {'inference-header-content-length': String(head.length), ...options.headers},
  })
  const body = Buffer.from(await response.arrayBuffer())
  const length = response.headers.get('inference-header-content-length')
  const jsonLength = length === null ? body.length : Number(length)
  const text = body.subarray(0, jsonLength).toString('utf8')
  const parsed = JSON.parse(text)
  const binary: Buffer[] = []
  let offset = jsonLength
  for (const output of parsed.outputs ?? []) {
    const size = output.parameters?.binary_data_size
    if (size === undefined) continue
    binary.push(body.subarray(offset, offset + size))
    offset += size
  }
  if (length !== null) assert.equal(offset, body.length, 'the binary outputs do not add up to the body')
  return {status: response.status, json: parsed, text, binary, headers: response.headers}
}

/** BYTES as the extension has them: each element a 4-byte little-endian length, then its UTF-8 bytes. */
function bytesElements(values: string[]): Buffer {
  return Buffer.concat(
    values.flatMap((v) => {
      const bytes = Buffer.from(v, 'utf8')
      const length = Buffer.alloc(4)
      length.writeUInt32LE(bytes.length)
      return [length, bytes]
    }),
  )
}

const raw = (array: ArrayBufferView) => Buffer.from(array.buffer, array.byteOffset, array.byteLength)

// Six values of each dtype (shape [2,3]) with the edges JSON gets wrong: past 2^53, NaN, infinities, non-ASCII.
const TENSORS: Record<string, {datatype: string; bytes: Buffer}> = {
  bool: {datatype: 'BOOL', bytes: Buffer.from([1, 0, 1, 0, 0, 1])},
  uint8: {datatype: 'UINT8', bytes: raw(new Uint8Array([0, 1, 255, 7, 8, 9]))},
  int8: {datatype: 'INT8', bytes: raw(new Int8Array([-128, 0, 127, 1, 2, 3]))},
  uint16: {datatype: 'UINT16', bytes: raw(new Uint16Array([0, 65_535, 3, 4, 5, 6]))},
  int16: {datatype: 'INT16', bytes: raw(new Int16Array([-32_768, 32_767, 0, 1, 2, 3]))},
  uint32: {datatype: 'UINT32', bytes: raw(new Uint32Array([0, 4_294_967_295, 2, 3, 4, 5]))},
  int32: {datatype: 'INT32', bytes: raw(new Int32Array([-2_147_483_648, 2_147_483_647, 0, 1, 2, 3]))},
  int64: {
    datatype: 'INT64',
    bytes: raw(new BigInt64Array([9_007_199_254_740_993n, -(2n ** 63n), 2n ** 63n - 1n, 0n, -1n, 42n])),
  },
  uint64: {
    datatype: 'UINT64',
    bytes: raw(new BigUint64Array([2n ** 64n - 1n, 9_007_199_254_740_993n, 0n, 1n, 2n, 3n])),
  },
  // Half bits: 0.5, -2, 65504, 0.0999755859375, NaN, -Infinity.
  float16: {datatype: 'FP16', bytes: raw(new Uint16Array([0x3800, 0xc000, 0x7bff, 0x2e66, 0x7e00, 0xfc00]))},
  float32: {
    datatype: 'FP32',
    bytes: raw(new Float32Array([0.5, -2.25, 3.4028234663852886e38, 0.1, Number.NaN, Number.POSITIVE_INFINITY])),
  },
  float64: {
    datatype: 'FP64',
    bytes: raw(new Float64Array([0.1, -2.5, Number.MAX_VALUE, 5e-324, Number.NaN, Number.NEGATIVE_INFINITY])),
  },
  string: {datatype: 'BYTES', bytes: bytesElements(['a', '', 'ünïcödé', 'with "quotes"', 'x', 'y'])},
}

describe('serve: the binary tensor data extension', function () {
  describe('every datatype round-trips byte for byte', function () {
    for (const [dtype, {datatype, bytes}] of Object.entries(TENSORS)) {
      it(datatype, async () => {
        const model = await loadModel(identityModel(dtype))
        const {server, url} = await start(`identity_${dtype}`, {}, {model})
        try {
          const infer = `${url}/v2/models/identity_${dtype}/infer`
          const input = {name: 'x', shape: [2, 3], datatype, parameters: {binary_data_size: bytes.length}}
          // Padding the JSON puts the tensor on and off an 8-byte boundary: a view of the body and a copy of it.
          for (const pad of [0, 1, 3]) {
            const answer = await postBinary(
              infer,
              {inputs: [input], outputs: [{name: 'y', parameters: {binary_data: true}}]},
              [bytes],
              {pad},
            )
            assert.equal(answer.status, 200, JSON.stringify(answer.json))
            assert.deepEqual(answer.json.outputs, [
              {name: 'y', datatype, shape: [2, 3], parameters: {binary_data_size: bytes.length}},
            ])
            assert.equal(answer.headers.get('content-type'), 'application/octet-stream')
            assert.ok(
              answer.binary[0].equals(bytes),
              `pad ${pad}: ${answer.binary[0].toString('hex')} != ${bytes.toString('hex')}`,
            )
          }
          // Binary in, JSON out: the same values the JSON API gives for them, compared as text so 64-bit stays exact.
          const asJson = await postBinary(infer, {inputs: [input]}, [bytes])
          assert.equal(asJson.status, 200, asJson.text)
          assert.equal(asJson.headers.get('inference-header-content-length'), null)
          const data = /"data":(\[.*\])\}\]\}$/.exec(asJson.text)![1]
          const viaJson = await post(
            infer,
            `{"inputs":[{"name":"x","shape":[2,3],"datatype":"${datatype}","data":${data}}]}`,
          )
          assert.equal(viaJson.text, asJson.text)
        } finally {
          await server.close()
        }
      })
    }
  })

  describe('on real models', function () {
    let titanic: Running
    const infer = () => `${titanic.url}/v2/models/titanic_logreg_pipeline_zipmap/infer`
    const rows = {
      pclass: ['1', '3'],
      sex: ['female', 'male'],
      age: [29, 22],
      fare: [211.3375, 7.25],
      embarked: ['S', 'Q'],
    }
    const jsonInput = (name: keyof typeof rows) => ({
      name,
      shape: [2, 1],
      datatype: typeof rows[name][0] === 'string' ? 'BYTES' : 'FP32',
      data: rows[name],
    })

    before(async () => {
      titanic = await start('titanic_logreg_pipeline_zipmap')
    })
    after(async () => titanic.server.close())

    it('takes JSON and binary inputs mixed in one request and answers as the all-JSON request does', async () => {
      const reference = await post(infer(), {inputs: (Object.keys(rows) as (keyof typeof rows)[]).map(jsonInput)})
      assert.equal(reference.status, 200, reference.text)
      const pclass = bytesElements(rows.pclass)
      const fare = raw(new Float32Array(rows.fare))
      const answer = await postBinary(
        infer(),
        {
          id: 'mixed',
          inputs: [
            {name: 'pclass', shape: [2, 1], datatype: 'BYTES', parameters: {binary_data_size: pclass.length}},
            jsonInput('sex'),
            jsonInput('age'),
            {name: 'fare', shape: [2, 1], datatype: 'FP32', parameters: {binary_data_size: fare.length}},
            jsonInput('embarked'),
          ],
          outputs: [{name: 'output_label', parameters: {binary_data: true}}],
        },
        [pclass, fare],
      )
      assert.equal(answer.status, 200, JSON.stringify(answer.json))
      assert.equal(answer.json.id, 'mixed')
      const labels = new BigInt64Array(new Uint8Array(answer.binary[0]).buffer)
      assert.deepEqual(
        Array.from(labels, Number),
        reference.json.outputs.find((o: {name: string}) => o.name === 'output_label').data,
      )
    })

    it('sends every output as binary data when parameters.binary_data_output is true, and says so in Inference-Header-Content-Length', async () => {
      const answer = await postBinary(
        infer(),
        {parameters: {binary_data_output: true}, inputs: (Object.keys(rows) as (keyof typeof rows)[]).map(jsonInput)},
        [],
      )
      assert.equal(answer.status, 200, JSON.stringify(answer.json))
      assert.ok(answer.json.outputs.length > 0)
      for (const output of answer.json.outputs) {
        assert.equal(output.data, undefined)
        assert.ok(output.parameters.binary_data_size > 0)
      }
      assert.equal(answer.binary.length, answer.json.outputs.length)
    })

    it("lists binary_tensor_data among the server's extensions", async () => {
      const metadata = (await (await fetch(`${titanic.url}/v2`)).json()) as {extensions: string[]}
      assert.deepEqual(metadata.extensions, ['binary_tensor_data'])
    })

    const fare = raw(new Float32Array([1, 2]))
    const others = (['pclass', 'sex', 'age', 'embarked'] as const).map(jsonInput)
    const fareInput = (size: number) => ({
      name: 'fare',
      shape: [2, 1],
      datatype: 'FP32',
      parameters: {binary_data_size: size},
    })
    const bad: {
      name: string
      json: unknown
      tensors: Buffer[]
      headers?: Record<string, string>
      pad?: number
      field: string
      message: RegExp
    }[] = [
      {
        name: 'binary_data_size past the end of the body',
        json: {inputs: [...others, fareInput(12)]},
        tensors: [fare],
        field: 'inputs[4].parameters.binary_data_size',
        message: /runs past the end/,
      },
      {
        name: 'bytes left over after the last input',
        json: {inputs: [...others, fareInput(8)]},
        tensors: [fare, Buffer.from([1, 2, 3])],
        field: 'inputs',
        message: /11 bytes, but the inputs' binary_data_size add up to 8/,
      },
      {
        name: 'size that does not fit the shape',
        json: {inputs: [...others, {...fareInput(4), shape: [2, 1]}]},
        tensors: [fare.subarray(0, 4)],
        field: 'inputs[4].parameters.binary_data_size',
        message: /takes 8/,
      },
      {
        name: 'BYTES element longer than the tensor',
        json: {
          inputs: [
            {name: 'pclass', shape: [2, 1], datatype: 'BYTES', parameters: {binary_data_size: 9}},
            ...(['sex', 'age', 'fare', 'embarked'] as const).map(jsonInput),
          ],
        },
        tensors: [Buffer.from([1, 0, 0, 0, 0x31, 9, 0, 0, 0])],
        field: 'inputs[0].parameters.binary_data_size',
        message: /element 1 runs past the end/,
      },
      {
        name: 'BYTES shape far larger than its bytes',
        json: {
          inputs: [
            {name: 'pclass', shape: [1_000_000, 1], datatype: 'BYTES', parameters: {binary_data_size: 5}},
            ...(['sex', 'age', 'fare', 'embarked'] as const).map(jsonInput),
          ],
        },
        tensors: [Buffer.from([1, 0, 0, 0, 0x31])],
        field: 'inputs[0].parameters.binary_data_size',
        message: /needs at least 4000000 bytes/,
      },
      {
        name: 'BYTES element that is not UTF-8',
        json: {
          inputs: [
            {name: 'pclass', shape: [2, 1], datatype: 'BYTES', parameters: {binary_data_size: 10}},
            ...(['sex', 'age', 'fare', 'embarked'] as const).map(jsonInput),
          ],
        },
        tensors: [Buffer.from([1, 0, 0, 0, 0xff, 1, 0, 0, 0, 0x31])],
        field: 'inputs[0].parameters.binary_data_size',
        message: /not valid UTF-8/,
      },
      {
        name: 'negative binary_data_size',
        json: {inputs: [...others, fareInput(-8)]},
        tensors: [fare],
        field: 'inputs[4].parameters.binary_data_size',
        message: /non-negative integer/,
      },
      {
        name: 'both data and binary_data_size',
        json: {inputs: [...others, {...fareInput(8), data: [1, 2]}]},
        tensors: [fare],
        field: 'inputs[4].data',
        message: /not both/,
      },
      {
        name: 'binary_data that is not a boolean',
        json: {
          inputs: (Object.keys(rows) as (keyof typeof rows)[]).map(jsonInput),
          outputs: [{name: 'output_label', parameters: {binary_data: 'yes'}}],
        },
        tensors: [],
        field: 'outputs[0].parameters.binary_data',
        message: /true or false/,
      },
      {
        name: 'header longer than the body',
        json: {inputs: [...others, fareInput(8)]},
        tensors: [fare],
        headers: {'inference-header-content-length': '100000'},
        field: 'inference-header-content-length',
        message: /only \d+ bytes/,
      },
      {
        name: 'header that is not a number',
        json: {inputs: [...others, fareInput(8)]},
        tensors: [fare],
        headers: {'inference-header-content-length': '12abc'},
        field: 'inference-header-content-length',
        message: /length in bytes/,
      },
    ]
    for (const c of bad) {
      it(`${c.name} → 400 naming ${c.field}`, async () => {
        const answer = await postBinary(infer(), c.json, c.tensors, {headers: c.headers})
        assert.equal(answer.status, 400, JSON.stringify(answer.json))
        assert.equal(answer.json.field, c.field)
        assert.match(answer.json.error, c.message)
        assert.equal((await fetch(`${titanic.url}/v2/health/ready`)).status, 200)
      })
    }

    it('refuses binary_data_size in a plain JSON request, which has no binary part', async () => {
      const answer = await post(infer(), {inputs: [...others, fareInput(8)]})
      assert.equal(answer.status, 400, answer.text)
      assert.equal(answer.json.code, 'NO_BINARY_DATA')
      assert.match(answer.json.error, /Inference-Header-Content-Length/)
    })

    it('refuses a BOOL byte other than 0 or 1', async () => {
      const model = await loadModel(identityModel('bool'))
      const {server, url} = await start('identity_bool', {}, {model})
      try {
        const answer = await postBinary(
          `${url}/v2/models/identity_bool/infer`,
          {inputs: [{name: 'x', shape: [2, 3], datatype: 'BOOL', parameters: {binary_data_size: 6}}]},
          [Buffer.from([0, 1, 2, 0, 0, 0])],
        )
        assert.equal(answer.status, 400, JSON.stringify(answer.json))
        assert.match(answer.json.error, /element 2 is 2/)
      } finally {
        await server.close()
      }
    })
  })

  it('reads an image sent in many chunks and answers as for the same image in JSON', async () => {
    const sample = modelInfo('ppocr_mobile_v2_text_direction_cls').samples[0]
    const image = tensorFromJson(sample.inputs.x)
    const {server, url} = await start('ppocr_mobile_v2_text_direction_cls')
    try {
      const infer = `${url}/v2/models/ppocr_mobile_v2_text_direction_cls/infer`
      const json = await post(infer, {
        inputs: [{name: 'x', shape: image.dims, datatype: 'FP32', data: plain(sample.inputs.x).data}],
      })
      const bytes = raw(image.data as Float32Array)
      assert.ok(bytes.length > 64 * 1024, 'the body should not fit one read')
      const binary = await postBinary(
        infer,
        {
          inputs: [{name: 'x', shape: image.dims, datatype: 'FP32', parameters: {binary_data_size: bytes.length}}],
          outputs: [{name: 'softmax_0.tmp_0', parameters: {binary_data: true}}],
        },
        [bytes],
      )
      assert.equal(binary.status, 200, JSON.stringify(binary.json))
      assert.deepEqual(Array.from(new Float32Array(new Uint8Array(binary.binary[0]).buffer)), json.json.outputs[0].data)
    } finally {
      await server.close()
    }
  })

  it('answers with the configured fallback in the form asked for, marked as the fallback', async () => {
    const fallback = {outputs: {variable: {dtype: 'float32' as const, shape: [1, 1], data: [0.5]}}}
    const {server, url} = await start(
      'xgboost_regressor',
      {timeoutMs: 20, fallback},
      {faults: {latencyMs: 200, errorRate: 0, wrong: false}},
    )
    try {
      const x = raw(new Float32Array([5.1, 3.5, 1.4, 0.2]))
      const answer = await postBinary(
        `${url}/v2/models/xgboost_regressor/infer`,
        {
          inputs: [{name: 'X', shape: [1, 4], datatype: 'FP32', parameters: {binary_data_size: 16}}],
          outputs: [{name: 'variable', parameters: {binary_data: true}}],
        },
        [x],
      )
      assert.equal(answer.status, 200, JSON.stringify(answer.json))
      assert.deepEqual(answer.json.parameters, {fallback: true})
      assert.deepEqual(answer.json.outputs, [
        {name: 'variable', datatype: 'FP32', shape: [1, 1], parameters: {binary_data_size: 4}},
      ])
      assert.equal(answer.binary[0].readFloatLE(0), 0.5)
      const asJson = await post(`${url}/v2/models/xgboost_regressor/infer`, {
        inputs: [{name: 'X', shape: [1, 4], datatype: 'FP32', data: [5.1, 3.5, 1.4, 0.2]}],
      })
      assert.deepEqual(asJson.json.outputs, [{name: 'variable', datatype: 'FP32', shape: [1, 1], data: [0.5]}])
    } finally {
      await server.close()
    }
  })

  it('logs binary inputs with their values, as if they came as JSON', async () => {
    const dir = await tempDir()
    const path = join(dir.path, 'requests.jsonl')
    const {server, url} = await start('xgboost_regressor', {
      requestLog: {path, inputs: 'all', sampleRate: 1, maxBytes: 1e6, maxFiles: 1, buffer: 100},
    })
    try {
      const x = raw(new Float32Array([5.1, 3.5, 1.4, 0.25]))
      const answer = await postBinary(
        `${url}/v2/models/xgboost_regressor/infer`,
        {
          inputs: [{name: 'X', shape: [1, 4], datatype: 'FP32', parameters: {binary_data_size: 16}}],
          parameters: {binary_data_output: true},
        },
        [x],
      )
      assert.equal(answer.status, 200, JSON.stringify(answer.json))
      await server.close()
      const entry = JSON.parse(readFileSync(path, 'utf8').trim())
      assert.deepEqual(entry.inputs, [
        {name: 'X', shape: [1, 4], datatype: 'FP32', data: [5.099999904632568, 3.5, 1.399999976158142, 0.25]},
      ])
      assert.equal(entry.outputs[0].data.length, 1)
    } finally {
      await server.close()
      await dir.remove()
    }
  })
})
