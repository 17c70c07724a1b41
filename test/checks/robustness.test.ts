// Robustness: the case set from the example's features (seeded, reproducible), how answers are judged, and a server that answers 500 to a missing field.
import assert from 'node:assert/strict'
import {type Server, createServer} from 'node:http'
import type {AddressInfo} from 'node:net'

import {robustnessCases} from '../../src/checks/robustness/cases.js'
import {judge, runRobustness} from '../../src/checks/robustness/run.js'
import {externalServer} from '../../src/checks/server.js'
import type {Subject} from '../../src/checks/subject.js'
import {exampleSubject} from './helpers.js'

describe('robustness cases', () => {
  let subject: Subject
  before(async () => {
    subject = await exampleSubject()
  })

  it('are the same for the same seed, and differ only in the random ones for another', () => {
    const strip = (seed: number) =>
      robustnessCases(subject, {seed, count: 150}).map((c) => [c.name, c.expect, c.body.toString()])
    assert.deepEqual(strip(7), strip(7))
    const [a, b] = [strip(7), strip(8)]
    const systematic = a.findIndex(([name]) => String(name).startsWith('random '))
    assert.ok(systematic > 50, `${systematic} systematic cases`)
    assert.equal(a.length, 150)
    assert.deepEqual(
      a.slice(0, systematic).filter(([name]) => name !== '512 random bytes'),
      b.slice(0, systematic).filter(([name]) => name !== '512 random bytes'),
    )
    assert.notDeepEqual(a.slice(systematic), b.slice(systematic))
  })

  it('expect a refusal for a missing required field and a prediction where the pipeline imputes', () => {
    const cases = new Map(robustnessCases(subject, {seed: 1, count: 0}).map((c) => [c.name, c]))
    assert.equal(cases.get('missing field age')?.expect, 'reject')
    assert.equal(cases.get('missing field income')?.expect, 'predict', 'income has impute')
    assert.equal(cases.get('income is "NaN"')?.expect, 'predict')
    assert.equal(cases.get('age is "NaN"')?.expect, 'reject')
    assert.equal(cases.get('credit_history_months is 1.5, not an integer')?.expect, 'reject')
    assert.equal(cases.get('region is a category never seen')?.expect, 'handled')
    assert.equal(cases.get('an unknown extra field')?.expect, 'reject')
    assert.ok(cases.has('v2: datatype INT8 instead of FP32'))
    assert.equal(
      Buffer.byteLength(cases.get('a body of 33555456 bytes, over serving.max_body_mb')!.body) >
        subject.serving.maxBodyBytes,
      true,
    )
  })

  it('build the batch cases of a model with megabyte records within the body limit (no "Invalid string length")', () => {
    // A 224x224 RGB image as one record: about 2.4 MB of JSON, so 10,001 copies would be 24 GB.
    const image = Array.from({length: 3}, () =>
      Array.from({length: 224}, () => Array.from({length: 224}, () => 0.123456)),
    )
    const big: Subject = {
      ...subject,
      features: [{name: 'x', type: 'tensor', dtype: 'float32', shape: [3, 224, 224]}],
      golden: [{name: 'g', records: [{x: image}], expected: {predictions: [{}]}}],
    }
    const cases = robustnessCases(big, {seed: 1, count: 0})
    const batches = cases.filter((c) => c.kind === 'large_batch' || c.kind === 'huge_batch')
    assert.equal(batches.length, 2, batches.map((c) => c.name).join('; '))
    for (const c of batches)
      assert.ok(Buffer.byteLength(c.body) <= big.serving.maxBodyBytes, `${c.name}: ${c.body.length}`)
    const huge = JSON.parse(batches.find((c) => c.kind === 'huge_batch')!.body.toString()) as {instances: unknown[]}
    assert.equal(huge.instances.length, big.serving.maxInstances + 1)
  })

  const verdicts: [Parameters<typeof judge>, boolean, string][] = [
    [['reject', 400, '{"error":{"code":"X"}}'], true, 'ok'],
    [['reject', 400, 'bad request'], false, 'bad_error_body'],
    [['reject', 200, '{"predictions":[{"p":0.1}]}'], false, 'accepted_bad_request'],
    [['reject', 500, '{"error":"boom"}'], false, 'server_error'],
    [['predict', 200, '{"predictions":[{"p":0.1,"label":"a"}]}'], true, 'ok'],
    [['predict', 200, '{"predictions":[{"p":"NaN"}]}'], false, 'non_finite_prediction'],
    [['predict', 200, '{"predictions":[{"p":null}]}'], false, 'non_finite_prediction'],
    [['predict', 422, '{"error":"no"}'], false, 'refused_valid_request'],
    [['handled', 413, '{"error":{"code":"BODY_TOO_LARGE"}}'], true, 'ok'],
    [['handled', 200, '{"outputs":[{"data":[1,"Infinity"]}]}'], false, 'non_finite_prediction'],
    [['answered', 200, '{"outputs":[{"data":["NaN"]}]}'], true, 'ok'],
    [['answered', 503, '{"error":"busy"}'], false, 'server_error'],
  ]
  for (const [[expect, status, text], passed, outcome] of verdicts) {
    it(`judges ${status} ${text.slice(0, 30)} when expecting ${expect}: ${outcome}`, () =>
      assert.deepEqual([judge(expect, status, text).passed, judge(expect, status, text).outcome], [passed, outcome]))
  }
})

describe('robustness against a server that answers 500 to a missing field', function () {
  this.timeout(30_000)
  let server: Server
  let url: string
  before(async () => {
    const subject = await exampleSubject()
    const required = subject.features!.filter((f) => f.required).map((f) => f.name)
    // A careless server: validates types sloppily, and dereferences a missing field into a crash it catches as a 500.
    server = createServer((req, res) => {
      let body = ''
      req.on('data', (chunk: Buffer) => (body += chunk.toString()))
      req.on('end', () => {
        const reply = (status: number, value: unknown) => {
          res.writeHead(status, {'content-type': 'application/json'})
          res.end(JSON.stringify(value))
        }
        if (req.url === '/v2/health/ready') return reply(200, {ready: true})
        let parsed: {instances?: Record<string, unknown>[]}
        try {
          parsed = JSON.parse(body)
        } catch {
          return reply(400, {error: 'not JSON'})
        }
        const records = parsed?.instances
        if (
          !Array.isArray(records) ||
          records.length === 0 ||
          records.some((r) => r === null || typeof r !== 'object' || Array.isArray(r))
        )
          return reply(400, {error: 'bad instances'})
        if (records.some((r) => required.some((name) => !(name in r))))
          return reply(500, {error: "TypeError: Cannot read properties of undefined (reading 'toFixed')"})
        return reply(400, {error: 'refused'})
      })
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })
  after(() => server.close())

  it('fails every missing-required-field case with the request that broke it', async () => {
    const subject = await exampleSubject()
    const cases = robustnessCases(subject, {seed: 3, count: 0}).filter((c) => !c.kind.startsWith('oversized'))
    const run = await runRobustness(externalServer(url), cases, {timeoutMs: 2000})
    assert.deepEqual(
      run.results
        .filter((r) => r.outcome === 'crash' || r.outcome === 'unhealthy')
        .map((r) => `${r.name}: ${r.detail}`),
      [],
    )
    assert.equal(run.crashed, false)
    assert.equal(run.healthyAfter, true)
    const serverErrors = run.results.filter((r) => r.outcome === 'server_error')
    const names = serverErrors.map((r) => r.name)
    for (const field of ['age', 'debt_ratio', 'credit_history_months', 'region', 'employment', 'has_prior_default'])
      assert.ok(names.includes(`missing field ${field}`), `missing field ${field} is listed: ${names.join(', ')}`)
    assert.ok(!names.includes('missing field income'), 'income is optional: the server does not fail without it')
    for (const r of serverErrors) {
      assert.equal(r.status, 500)
      assert.equal(r.intermittent, undefined, "a 500 that comes back every time is the input's fault")
      assert.equal(r.request?.path, '/v1/predict')
      assert.ok(r.request.bytes > 0 && r.request.body.length > 0, 'the request that broke it is shown')
    }
    const age = serverErrors.find((r) => r.name === 'missing field age')!
    assert.equal(
      'age' in JSON.parse(age.request!.body).instances[0],
      false,
      'the request shown is the one without the field',
    )
  })
})
