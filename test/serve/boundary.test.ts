// Client mistakes get the right 4xx, naming the field, and the server stays healthy after each one.
import assert from 'node:assert/strict'
import {request} from 'node:http'
import {connect} from 'node:net'

import {type Running, post, start} from './helpers.js'

describe('serve: bad input at the boundary', function () {
  let r: Running
  const infer = () => `${r.url}/v2/models/xgboost_regressor/infer`
  const predict = () => `${r.url}/v1/predict`
  const good = {inputs: [{name: 'X', shape: [1, 4], datatype: 'FP32', data: [5.1, 3.5, 1.4, 0.2]}]}

  before(async () => {
    r = await start('xgboost_regressor', {maxBodyBytes: 64 * 1024})
  })
  after(async () => r.server.close())

  afterEach(async () => {
    const ready = await fetch(`${r.url}/v2/health/ready`)
    assert.equal(ready.status, 200, 'server not ready after the bad request')
  })

  const cases: {
    name: string
    url: () => string
    body: unknown
    status: number
    field?: string
    message: RegExp
    headers?: Record<string, string>
  }[] = [
    {name: 'malformed JSON', url: infer, body: '{"inputs": [', status: 400, message: /invalid JSON/},
    {name: 'empty body', url: predict, body: '', status: 400, message: /empty/},
    {name: 'missing inputs', url: infer, body: {}, status: 400, field: 'inputs', message: /non-empty array/},
    {name: 'extra field', url: infer, body: {...good, extra: 1}, status: 400, field: 'extra', message: /unknown field/},
    {
      name: 'unknown input',
      url: infer,
      body: {inputs: [{...good.inputs[0], name: 'Y'}]},
      status: 400,
      field: 'inputs[0].name',
      message: /no input "Y"/,
    },
    {
      name: 'wrong datatype',
      url: infer,
      body: {inputs: [{...good.inputs[0], datatype: 'INT64'}]},
      status: 400,
      field: 'inputs[0].datatype',
      message: /is FP32, not INT64/,
    },
    {
      name: 'wrong shape',
      url: infer,
      body: {inputs: [{...good.inputs[0], shape: [1, 3], data: [1, 2, 3]}]},
      status: 400,
      field: 'inputs[0].shape',
      message: /dimension 1 is 3 but the model needs 4/,
    },
    {
      name: 'data count differs from shape',
      url: infer,
      body: {inputs: [{...good.inputs[0], shape: [2, 4]}]},
      status: 400,
      field: 'inputs[0].data',
      message: /needs 8 values, got 4/,
    },
    {
      name: 'string in a float tensor',
      url: infer,
      body: {inputs: [{...good.inputs[0], data: [1, 'x', 3, 4]}]},
      status: 400,
      field: 'inputs[0].data[1]',
      message: /expected a number/,
    },
    {
      name: 'bare NaN literal',
      url: infer,
      body: '{"inputs":[{"name":"X","shape":[1,4],"datatype":"FP32","data":[NaN,1,2,3]}]}',
      status: 400,
      message: /invalid JSON/,
    },
    {
      name: 'unknown output',
      url: infer,
      body: {...good, outputs: [{name: 'nope'}]},
      status: 400,
      field: 'outputs[0].name',
      message: /no output "nope"/,
    },
    {
      name: 'deep nesting',
      url: infer,
      body: '['.repeat(5000) + ']'.repeat(5000),
      status: 400,
      message: /nested deeper/,
    },
    {
      name: 'huge array (over the body limit)',
      url: infer,
      body: {inputs: [{name: 'X', shape: [50_000, 4], datatype: 'FP32', data: new Array(200_000).fill(1)}]},
      status: 413,
      message: /over 65536 bytes/,
    },
    {
      name: 'wrong content type',
      url: infer,
      body: good,
      status: 415,
      message: /text\/plain/,
      headers: {'content-type': 'text/plain'},
    },
    {
      name: 'v1: instances missing',
      url: predict,
      body: {records: []},
      status: 400,
      field: 'records',
      message: /unknown field/,
    },
    {
      name: 'v1: missing field',
      url: predict,
      body: {instances: [{}]},
      status: 400,
      field: 'instances[0].X',
      message: /is required/,
    },
    {
      name: 'v1: extra field',
      url: predict,
      body: {instances: [{X: [1, 2, 3, 4], Z: 1}]},
      status: 400,
      field: 'instances[0].Z',
      message: /not a field/,
    },
    {
      name: 'v1: wrong type',
      url: predict,
      body: {instances: [{X: true}]},
      status: 400,
      field: 'instances[0].X',
      message: /must be array/,
    },
    {
      name: 'v1: wrong row shape',
      url: predict,
      body: {instances: [{X: [1, 2, 3, 4]}, {X: [1, 2]}]},
      status: 400,
      field: 'instances[1].X',
      message: /shape \[2\] but the model needs \[4\]/,
    },
    {
      name: 'v1: not a number',
      url: predict,
      body: {instances: [{X: [1, 2, 'abc', 4]}]},
      status: 400,
      field: 'instances[0].X',
      message: /"abc" is not a number/,
    },
  ]

  for (const c of cases) {
    it(`${c.name} → ${c.status}`, async () => {
      const {status, json} = await post(c.url(), c.body, c.headers)
      assert.equal(status, c.status, JSON.stringify(json))
      const error = c.url === infer ? {message: json.error, code: json.code, field: json.field} : json.error
      assert.match(error.message, c.message)
      assert.match(error.code, /^[A-Z_]+$/)
      if (c.field) assert.equal(error.field, c.field)
      assert.doesNotMatch(JSON.stringify(json), /at .*\.ts:\d+|"properties"/, 'leaks a stack trace or the schema')
    })
  }

  it('NaN and infinities travel as null and the strings "NaN", "Infinity", "-Infinity"', async () => {
    const {status, json} = await post(infer(), {
      inputs: [
        {
          name: 'X',
          shape: [3, 4],
          datatype: 'FP32',
          data: [null, 1, 2, 3, 'NaN', 1, 2, 3, 'Infinity', '-Infinity', 2, 3],
        },
      ],
    })
    assert.equal(status, 200, JSON.stringify(json))
    assert.equal(json.outputs[0].data.length, 3)
  })

  it('refuses a body announced over the limit with 413 before reading it', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(
        `${infer()}`,
        {method: 'POST', headers: {'content-type': 'application/json', 'content-length': String(10 * 1024 * 1024)}},
        (res) => {
          res.resume()
          resolve(res.statusCode!)
        },
      )
      req.on('error', reject)
      req.write('{"inputs": [')
    })
    assert.equal(status, 413)
  })

  it("answers requests the HTTP layer refuses in the route's error shape, and counts them in /metrics", async () => {
    const raw = (bytes: string) =>
      new Promise<string>((resolve, reject) => {
        let text = ''
        const socket = connect(Number(new URL(r.url).port), '127.0.0.1', () => socket.end(bytes))
        socket.on('data', (data: Buffer) => (text += data.toString()))
        socket.on('close', () => resolve(text))
        socket.on('error', reject)
      })
    const chunked = await raw(
      `POST /v2/models/xgboost_regressor/infer HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n10000\r\n${'x'.repeat(0x10000)}\r\n10\r\n${'x'.repeat(16)}\r\n0\r\n\r\n`,
    )
    assert.match(chunked, /^HTTP\/1\.1 413 /)
    assert.deepEqual(JSON.parse(chunked.slice(chunked.indexOf('\r\n\r\n') + 4)), {
      error: 'the request body is over 65536 bytes (serving.max_body_mb); send fewer records per request',
      code: 'BODY_TOO_LARGE',
    })
    const garbage = await raw('HELLO\r\n\r\n')
    assert.match(garbage, /^HTTP\/1\.1 400 [^]*"code":"BAD_REQUEST"/)
    const metrics = await (await fetch(`${r.url}/metrics`)).text()
    assert.match(metrics, /mlops_requests_total\{route="\/v2\/models\/infer",status="413",version="[^"]+"\} [1-9]/)
    assert.match(metrics, /mlops_requests_total\{route="other",status="400",version="[^"]+"\} 1/)
  })

  it('answers 404 for unknown routes and models, 405 with Allow for a wrong method', async () => {
    assert.equal((await fetch(`${r.url}/nope`)).status, 404)
    assert.equal((await post(`${r.url}/v2/models/other/infer`, good)).status, 404)
    assert.equal((await post(`${r.url}/v2/models/xgboost_regressor/versions/9.9.9/infer`, good)).status, 404)
    const wrong = await fetch(infer())
    assert.equal(wrong.status, 405)
    assert.equal(wrong.headers.get('allow'), 'POST')
  })

  it("echoes the caller's x-request-id and makes one otherwise", async () => {
    assert.equal((await post(infer(), good, {'x-request-id': 'trace-42'})).headers.get('x-request-id'), 'trace-42')
    assert.match((await post(infer(), good)).headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/)
  })
})
