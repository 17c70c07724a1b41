// The checks section: latency gates as written, defaults and overrides, schema and semantic errors by field path.
import assert from 'node:assert/strict'

import {checkSettings, parseLatencyGate} from '../../src/checks/config.js'
import {validateConfig} from '../../src/config/load.js'
import {ConfigError} from '../../src/errors.js'

function issuesOf(checks: unknown): string[] {
  try {
    validateConfig({name: 'm', model: {path: 'm.onnx'}, checks})
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error))
    return error.issues.map((i) => `${i.path}: ${i.message}`)
  }
  return []
}

describe('checks config', () => {
  const gates: [string, ReturnType<typeof parseLatencyGate>][] = [
    ['p99 <= 50ms', {text: 'p99 <= 50ms', percentile: 'p99', maxMs: 50}],
    ['p50<=5ms at 200 rps', {text: 'p50<=5ms at 200 rps', percentile: 'p50', maxMs: 5, rate: 200}],
    ['p99.9 <= 1.5s', {text: 'p99.9 <= 1.5s', percentile: 'p99.9', maxMs: 1500}],
    ['max <= 800us at 10.5rps', {text: 'max <= 800us at 10.5rps', percentile: 'max', maxMs: 0.8, rate: 10.5}],
    ['p98 <= 5ms', undefined],
    ['p99 < 5ms', undefined],
    ['p99 <= 5', undefined],
    ['p99 <= 5ms at fast', undefined],
  ]
  for (const [text, expected] of gates) {
    it(`reads the latency gate "${text}"`, () => assert.deepEqual(parseLatencyGate(text), expected))
  }

  it('fills defaults, and flags override the config', () => {
    const defaults = checkSettings()
    assert.equal(defaults.load.mode, 'open')
    assert.equal(defaults.load.durationMs, 10_000)
    assert.deepEqual(
      defaults.latency.gates.map((g) => g.text),
      ['p50 <= 25ms', 'p99 <= 100ms'],
    )
    const s = checkSettings(
      {load: {mode: 'closed', rate: 10, duration: '3s'}, robustness: {seed: 7}},
      {rate: 99, duration: '1s', seed: 3},
    )
    assert.equal(s.load.mode, 'closed')
    assert.equal(s.load.rate, 99)
    assert.equal(s.load.durationMs, 1000)
    assert.equal(s.robustness.seed, 3)
    assert.throws(() => checkSettings({}, {duration: 'soon'}), /duration "soon" is not a duration/)
    assert.throws(() => checkSettings({}, {duration: '0s'}), {
      code: 'CHECKS_DURATION_INVALID',
      message: /duration "0s" is no time at all/,
    })
    assert.equal(checkSettings({load: {warmup: '0s'}}).load.warmupMs, 0)
  })

  it('names the field of each schema and semantic error', () => {
    assert.deepEqual(issuesOf({load: {mode: 'burst'}}), ['checks.load.mode: must be one of "open", "closed"'])
    assert.deepEqual(issuesOf({load: {max_error_rate: 2}}), ['checks.load.max_error_rate: must be between 0 and 1'])
    assert.match(issuesOf({latency: {gates: ['p99 <= 50ms', 'p99 fast']}}).join('\n'), /checks\.latency\.gates\[1\]/)
    assert.match(
      issuesOf({load: {duratoin: '5s'}}).join('\n'),
      /checks\.load\.duratoin: unknown key; did you mean "duration"\?/,
    )
    assert.deepEqual(issuesOf({load: {rate: 100, find_max: {max_rate: 50}}}), [
      'checks.load.find_max.max_rate: must be at least checks.load.rate (100)',
    ])
    assert.deepEqual(issuesOf({load: {duration: '0ms', warmup: '0s'}}), [
      'checks.load.duration: "0ms" is no time at all: nothing would be measured; give it a length, e.g. 10s',
    ])
    assert.deepEqual(
      issuesOf({
        load: {rate: 100, duration: '5s'},
        latency: {gates: ['p99 <= 50ms at 200 rps']},
        regression: {tolerances: {probability: {atol: 1e-3}}},
      }),
      [],
    )
  })
})
