// `mlops serve --workers 2` over real HTTP: what several workers share behaves as one server's would (a caller's rate,
// the request log and its rotation, feedback kept once per request, /metrics summed, SIGTERM draining every worker).
import assert from 'node:assert/strict'
import {readFileSync, readdirSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {type ResultPromise, execa} from 'execa'
import {request} from 'undici'

import {packageRoot} from '../../src/paths.js'
import {MODELS_DIR, mlops, tempDir} from '../support/cli.js'

const CLI = ['--import', 'tsx', join(packageRoot, 'test', 'support', 'run-source.ts')]
const MODEL = join(MODELS_DIR, 'xgboost_regressor.onnx')

async function serveWorkers(dir: string, env: Record<string, string> = {}) {
  const args = ['serve', '--model', MODEL, '--port', '0', '--json', '--workers', '2', '--dir', dir]
  const child = execa('node', [...CLI, ...args], {env: {CI: 'true', ...env}, reject: false})
  const ready = await new Promise<{url: string; workers: number}>((resolve, reject) => {
    child.stdout.once('data', (chunk: Buffer) => resolve(JSON.parse(chunk.toString().split('\n')[0])))
    void child.once('exit', () => reject(new Error('serve exited before it was ready')))
  })
  assert.equal(ready.workers, 2)
  return {child, url: ready.url}
}

/** A new connection per request: node:cluster hands connections to the workers in turn, so both see traffic. */
async function post(url: string, body: unknown, key?: string) {
  const res = await request(url, {
    method: 'POST',
    headers: {'content-type': 'application/json', ...(key ? {authorization: `Bearer ${key}`} : {})},
    body: JSON.stringify(body),
    reset: true,
    headersTimeout: 30_000,
  })
  return {status: res.statusCode, id: String(res.headers['x-request-id']), body: await res.body.text()}
}

async function stop(child: ResultPromise) {
  child.kill('SIGTERM')
  const result = await child
  assert.equal(result.exitCode, 0, String(result.stderr))
}

const RECORD = {instances: [{X: [1, 2, 3, 4]}]}

describe('mlops serve --workers 2 (child processes, real HTTP)', function () {
  this.timeout(180_000)

  it('shares a caller rate, one request log with its rotation, feedback kept once, and /metrics across workers', async () => {
    const tmp = await tempDir()
    try {
      writeFileSync(
        join(tmp.path, 'mlops.yaml'),
        [
          'name: fixture',
          'model:',
          '  path: model.onnx',
          'serving:',
          '  auth: keys',
          '  request_log:',
          '    path: logs/requests.jsonl',
          '    max_mb: 0.01',
          '    max_files: 1000',
          '',
        ].join('\n'),
      )
      const keys: Record<string, string> = {}
      for (const [name, extra] of [
        ['limited', ['--rate-limit', '1']],
        ['open', []],
      ] as const) {
        const scopes = ['--scope', 'predict,feedback,metrics']
        const made = await mlops(['keys', 'create', name, ...scopes, ...extra, '--json', '--dir', tmp.path])
        assert.equal(made.exitCode, 0, made.stderr)
        keys[name] = (made.json as {key: string}).key
      }
      const {child, url} = await serveWorkers(tmp.path)
      try {
        // One per second, burst one: across two workers it was one each, twice the rate.
        const started = performance.now()
        const limited: number[] = []
        for (let i = 0; i < 8; i++) limited.push((await post(`${url}/v1/predict`, RECORD, keys.limited)).status)
        const seconds = (performance.now() - started) / 1000
        const allowed = limited.filter((s) => s === 200).length
        assert.ok(allowed >= 1, `${limited}`)
        assert.ok(allowed <= 1 + Math.floor(seconds), `${allowed} let through in ${seconds.toFixed(2)} s: ${limited}`)
        assert.ok(limited.includes(429))

        // Concurrent writers: 200 requests on 200 connections while the log rotates every ~30 lines.
        const answers = await Promise.all(Array.from({length: 200}, () => post(`${url}/v1/predict`, RECORD, keys.open)))
        assert.deepEqual(new Set(answers.map((a) => a.status)), new Set([200]))

        // The same request's feedback from two connections (two workers): kept once.
        const feedback = {request_id: answers[0].id, value: 1.5}
        const sent = [await post(`${url}/v1/feedback`, feedback, keys.open)]
        sent.push(await post(`${url}/v1/feedback`, feedback, keys.open))
        assert.deepEqual(
          sent.map((s) => JSON.parse(s.body) as unknown),
          [
            {accepted: 1, duplicates: 0},
            {accepted: 0, duplicates: 1},
          ],
        )

        const metrics = await (await fetch(`${url}/metrics`, {headers: {authorization: `Bearer ${keys.open}`}})).text()
        assert.match(metrics, /^mlops_caller_requests_total\{caller="open"\} 203$/m)
        // Every prediction answered 200, whichever worker answered it: the open caller's and the limited one's let through.
        const predicted = metrics.match(
          /^mlops_requests_total\{route="\/v1\/predict",status="200",version="0\.0\.0"\} (\d+)$/m,
        )
        assert.equal(Number(predicted?.[1]), 200 + allowed, metrics)
      } finally {
        await stop(child)
      }
      const logs = join(tmp.path, 'logs')
      const files = readdirSync(logs).filter((f) => /^requests\.jsonl(\.\d+)?$/.test(f))
      assert.ok(files.length > 3, `rotated: ${files}`)
      const entries = files.flatMap((f) =>
        readFileSync(join(logs, f), 'utf8')
          .trim()
          .split('\n')
          .map((line) => JSON.parse(line) as {id: string; status: number; caller: string}),
      )
      const open = entries.filter((e) => e.caller === 'open' && e.status === 200)
      assert.equal(open.length, 200, 'every answered request is logged once, whole')
      assert.equal(new Set(open.map((e) => e.id)).size, 200)
      const kept = readFileSync(join(logs, 'requests.jsonl.feedback.jsonl'), 'utf8').trim().split('\n')
      assert.equal(kept.length, 1)
    } finally {
      await tmp.remove()
    }
  })

  it('on SIGTERM every worker finishes its in-flight requests, then all exit 0', async () => {
    const tmp = await tempDir()
    try {
      const {child, url} = await serveWorkers(tmp.path, {MLOPS_FAULT_LATENCY_MS: '1500'})
      const inFlight = Array.from({length: 4}, () => post(`${url}/v1/predict`, RECORD))
      await new Promise((resolve) => setTimeout(resolve, 500))
      child.kill('SIGTERM')
      assert.deepEqual(
        (await Promise.all(inFlight)).map((a) => a.status),
        [200, 200, 200, 200],
      )
      const result = await child
      assert.equal(result.exitCode, 0, String(result.stderr))
      await assert.rejects(fetch(`${url}/v2/health/live`), 'still accepting after SIGTERM')
    } finally {
      await tmp.remove()
    }
  })
})
