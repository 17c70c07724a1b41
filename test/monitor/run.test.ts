// runMonitor over a request log written by the server's own RequestLog: the time window, what is skipped and why, and its errors.
import assert from 'node:assert/strict'
import {writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {runMonitor} from '../../src/monitor/run.js'
import {RequestLog} from '../../src/serve/request-log.js'
import {tempDir} from '../support/cli.js'
import {assertMatchesSchema} from '../support/schema.js'
import {profileOf, random} from './helpers.js'

function records(seed: number, n: number, shift = 0): Record<string, unknown>[] {
  const r = random(seed)
  return Array.from({length: n}, () => ({x: 10 + r.normal() + shift, color: r.pick(['red', 'blue'], [1, 1])}))
}

const BASELINE = profileOf(records(1, 3000), {x: 'numeric', color: 'categorical'})
const NOW = new Date('2025-03-01T12:00:00Z')

describe('runMonitor over the request log', function () {
  it('reads /v1/predict requests inside the window only, across rotated files, and says what it skipped', async () => {
    const dir = await tempDir()
    try {
      const path = join(dir.path, 'requests.jsonl')
      const settings = {path, inputs: 'all' as const, sampleRate: 1, maxBytes: 8000, maxFiles: 5, buffer: 10_000}
      let log = new RequestLog(settings)
      const at = (hoursAgo: number) => new Date(NOW.getTime() - hoursAgo * 3_600_000).toISOString()
      const model = {name: 'demo', version: '1.0.0'}
      const add = (time: string, inputs: unknown, extra: Record<string, unknown> = {}) =>
        log.add({
          id: `r${Math.random()}`,
          time,
          model,
          route: '/v1/predict',
          status: 200,
          latency_ms: 1,
          inputs,
          outputsJson: JSON.stringify({predictions: (inputs as unknown[]).map(() => ({label: 'a'}))}),
          ...extra,
        })
      // Inside the last 6 hours: 20 requests of 10 shifted records. Outside it: stable ones that must not count.
      const shifted = records(2, 200, 1.5)
      for (let i = 0; i < 20; i++) {
        add(at(5 - i * 0.2), shifted.slice(i * 10, i * 10 + 10))
        // A server restart every few requests: the log rotates when it reopens past max size.
        if (i % 5 === 4) {
          await log.close()
          log = new RequestLog(settings)
        }
      }
      add(at(30), records(3, 10))
      add(at(1), records(4, 10), {status: 500})
      add(at(1), records(4, 10), {model: {name: 'other', version: '2.0.0'}})
      add(at(1), records(4, 10), {route: '/v2/models/demo/infer'})
      log.add({id: 'hashed', time: at(1), model, route: '/v1/predict', status: 200, latency_ms: 1, inputs_sha256: 'ab'})
      await log.close()
      await writeFile(path, '{"truncated', {flag: 'a'})

      // The project's name picks its own model's requests out of a shared log.
      await writeFile(join(dir.path, 'mlops.yaml'), 'name: demo\nmodel: {path: model.onnx}\n')
      const result = await runMonitor({dir: dir.path, baseline: BASELINE, log: path, since: '6h', now: () => NOW})
      assertMatchesSchema(result, 'monitor')
      assert.equal(result.current.records, 200)
      assert.ok(result.current.files.length > 1, 'the log was rotated and every file was read')
      assert.deepEqual(result.current.skipped, {
        'error status': 1,
        'another model': 1,
        'not a /v1/predict request': 1,
        'inputs not logged': 1,
        'unreadable line': 1,
      })
      assert.deepEqual(result.drifted, ['x'])
      assert.equal(result.current.window?.from, '2025-03-01T06:00:00.000Z')
    } finally {
      await dir.remove()
    }
  })

  it('refuses --input with --since, an unknown duration, a missing log, and an empty window', async () => {
    const dir = await tempDir()
    try {
      const log = join(dir.path, 'requests.jsonl')
      await writeFile(log, '')
      const base = {dir: dir.path, baseline: BASELINE, now: () => NOW}
      await assert.rejects(runMonitor({...base, input: 'x.csv', since: '1h'}), {code: 'MONITOR_FLAGS', exitCode: 2})
      await assert.rejects(runMonitor({...base, log, since: 'yesterday'}), {code: 'MONITOR_SINCE_INVALID', exitCode: 2})
      await assert.rejects(runMonitor(base), {
        code: 'MONITOR_NO_LOG',
        exitCode: 2,
        message: /serving\.request_log\.path is not set/,
      })
      await assert.rejects(runMonitor({...base, log: join(dir.path, 'nope.jsonl')}), {
        code: 'MONITOR_NO_LOG',
        exitCode: 2,
      })
      await assert.rejects(runMonitor({...base, log}), {code: 'MONITOR_NO_DATA', exitCode: 1, hint: /--since 7d/})
      await assert.rejects(runMonitor({dir: dir.path, input: log}), {code: 'CONFIG_NOT_FOUND', exitCode: 2})
      const wrong = join(dir.path, 'wrong.csv')
      await writeFile(wrong, 'height,weight\n180,75\n165,60\n')
      await assert.rejects(runMonitor({...base, input: wrong}), {
        code: 'MONITOR_COLUMNS_MISSING',
        exitCode: 2,
        message: /none of the baseline's features \(.+\) is in .*wrong\.csv/,
      })
    } finally {
      await dir.remove()
    }
  })

  it('takes a batch file with --input and ignores its extra columns', async () => {
    const dir = await tempDir()
    try {
      const input = join(dir.path, 'batch.jsonl')
      await writeFile(
        input,
        records(5, 500)
          .map((r) => JSON.stringify({...r, id: 7}))
          .join('\n'),
      )
      const result = await runMonitor({dir: dir.path, baseline: BASELINE, input})
      assert.equal(result.verdict, 'ok')
      assert.deepEqual(result.features.map((c) => c.name).sort(), ['color', 'x'])
    } finally {
      await dir.remove()
    }
  })
})
