// One duration syntax for every flag and setting: the parser, the config schema and the flags agree.
import assert from 'node:assert/strict'

import {Parser} from '@oclif/core'

import Deploy from '../../src/commands/deploy.js'
import {validateConfig} from '../../src/config/load.js'
import {parseDuration} from '../../src/system/duration.js'
import {mlops, tempDir} from '../support/cli.js'

const table: [string, number | undefined][] = [
  ['500ms', 500],
  ['2.5s', 2500],
  ['10s', 10_000],
  ['1.5m', 90_000],
  ['2m', 120_000],
  ['1.5h', 5_400_000],
  ['24h', 86_400_000],
  ['7d', 604_800_000],
  [' 30m ', 1_800_000],
  ['0s', 0],
  ['10', undefined],
  ['10 s', undefined],
  ['-1s', undefined],
  ['.5s', undefined],
  ['1w', undefined],
  ['2hours', undefined],
  ['', undefined],
]

const base = {name: 'm', model: {path: 'model.onnx'}}

describe('durations', () => {
  for (const [text, ms] of table)
    it(`"${text}" is ${ms ?? 'not a duration'}`, () => assert.equal(parseDuration(text), ms))

  it('mlops.yaml takes the same durations in checks and monitor', () => {
    for (const [text, ms] of table) {
      if (text !== text.trim()) continue
      const config = () =>
        validateConfig({...base, checks: {load: {duration: text, warmup: text}}, monitor: {since: text}})
      if (ms === undefined)
        assert.throws(config, /checks\.load\.duration[\s\S]*checks\.load\.warmup[\s\S]*monitor\.since/, text)
      else if (ms > 0) assert.doesNotThrow(config, text)
    }
  })

  it('a duration flag takes units (and a bare number of seconds)', async () => {
    const parse = (timeout: string) =>
      Parser.parse(['1.0.0', '--full', '--wait', '--timeout', timeout], {flags: Deploy.flags, args: Deploy.args})
    assert.equal((await parse('20s')).flags.timeout, 20_000)
    assert.equal((await parse('1.5m')).flags.timeout, 90_000)
    assert.equal((await parse('20')).flags.timeout, 20_000)
    await assert.rejects(parse('500ms'), /shorter than 1s/)
  })

  it('the CLI names the flag and the units when a duration is wrong', async function () {
    this.timeout(60_000)
    const tmp = await tempDir()
    try {
      const bad = await mlops(['deploy', '1.0.0', '--full', '--wait', '--timeout', '20x', '--json', '--dir', tmp.path])
      assert.equal(bad.exitCode, 2)
      assert.deepEqual(bad.json, {
        error: {
          code: 'DURATION_INVALID',
          message: '--timeout: "20x" is not a duration',
          hint: 'Write a number and a unit: 500ms, 10s, 1.5m, 24h or 7d (a bare number is seconds).',
        },
      })
      // Parsed, then refused for what it is about: nothing is deployed here.
      const status = await mlops(['status', '--interval', '1.5s', '--json', '--dir', tmp.path])
      assert.equal((status.json as {error: {code: string}}).error.code, 'NOT_DEPLOYED', status.stdout)
    } finally {
      await tmp.remove()
    }
  })
})
