import assert from 'node:assert/strict'
import {existsSync} from 'node:fs'
import {fileURLToPath} from 'node:url'

import {execa} from 'execa'

import {assertMatchesSchema} from '../support/schema.js'
import {FAST_ANALYSIS, type Project, XGB, burst, failures, project} from './helpers.js'

const FIXTURE = fileURLToPath(new URL('../support/run-source.ts', import.meta.url))

async function mlops(
  dir: string,
  args: string[],
): Promise<{exitCode: number; json: Record<string, unknown>; stderr: string}> {
  const result = await execa(process.execPath, ['--import', 'tsx', FIXTURE, ...args, '--dir', dir], {
    reject: false,
    env: {CI: 'true', MLOPS_ACTOR: 'ci-bot'},
    timeout: 120_000,
  })
  let json: Record<string, unknown> = {}
  try {
    json = JSON.parse(String(result.stdout)) as Record<string, unknown>
  } catch {
    assert.fail(`not JSON: ${result.stdout}\n${result.stderr}`)
  }
  return {exitCode: result.exitCode ?? -1, json, stderr: String(result.stderr)}
}

describe('rollout commands through the CLI', function () {
  this.timeout(180_000)
  let p: Project

  afterEach(async () => {
    await p?.cleanup()
  })

  it('deploy, status, promote, history and down print their schemas; --auto --wait exits 1 naming the failed gate', async () => {
    p = await project({steps: [50], analysis: FAST_ANALYSIS})
    const first = await mlops(p.dir, ['deploy', '1.0.0', '--full', '--model', XGB, '--json'])
    assert.equal(first.exitCode, 0, first.stderr)
    assertMatchesSchema(first.json, 'deploy')
    assert.equal((first.json.status as {phase: string}).phase, 'Healthy')

    const canary = await mlops(p.dir, ['deploy', '1.1.0', '--canary', '10', '--model', XGB, '--json'])
    assert.equal(canary.exitCode, 0, canary.stderr)
    assertMatchesSchema(canary.json, 'deploy')
    await burst(p.url, 200)
    const status = await mlops(p.dir, ['status', '--json'])
    assertMatchesSchema(status.json, 'status')
    assert.equal(status.json.phase, 'Paused')
    assert.ok((status.json.metrics as {candidate: {requests: number}}).candidate.requests > 0)

    const promoted = await mlops(p.dir, ['promote', '--to', '100', '--json'])
    assert.equal(promoted.exitCode, 0, promoted.stderr)
    assertMatchesSchema(promoted.json, 'promote')

    const waiting = execa(
      process.execPath,
      [
        '--import',
        'tsx',
        FIXTURE,
        'deploy',
        '1.2.0',
        '--canary',
        '50',
        '--auto',
        '--wait',
        '--model',
        XGB,
        '--env',
        'MLOPS_FAULT_ERROR_RATE=0.5',
        '--json',
        '--dir',
        p.dir,
      ],
      {reject: false, env: {CI: 'true'}, timeout: 120_000},
    )
    // Traffic for the analysis to judge, until the rollout ends.
    let done = false
    void waiting.finally(() => (done = true))
    while (!done) await burst(p.url, 50, 4)
    const failed = await waiting
    assert.equal(failed.exitCode, 1, String(failed.stderr))
    const error = (JSON.parse(String(failed.stdout)) as {error: {code: string; message: string}}).error
    assert.equal(error.code, 'ROLLED_BACK')
    assert.match(error.message, /1.2.0 was rolled back by the error_rate gate/)
    assert.deepEqual(failures(await burst(p.url, 30)), [])

    const history = await mlops(p.dir, ['history', '--json'])
    assertMatchesSchema(history.json, 'history')
    const entries = history.json.entries as {action: string; actor: string; automatic: boolean}[]
    assert.deepEqual(
      entries.map((e) => e.action),
      ['deploy', 'deploy', 'promote', 'deploy', 'rollback'],
    )
    assert.equal(entries[0].actor, 'ci-bot')
    assert.equal(entries[4].automatic, true)

    const refused = await mlops(p.dir, ['down', '--json'])
    assert.equal(refused.exitCode, 2)
    assert.equal((refused.json.error as {code: string}).code, 'CONFIRMATION_REQUIRED')
    const stopped = await mlops(p.dir, ['down', '--yes', '--json'])
    assert.equal(stopped.exitCode, 0)
    assertMatchesSchema(stopped.json, 'down')
    assert.equal(stopped.json.stopped, true)
    const after = await burst(p.url, 1)
    assert.equal(after[0].status, 0, 'nothing answers after down')
    const gone = await mlops(p.dir, ['status', '--json'])
    assert.equal(gone.exitCode, 2)
    assert.equal((gone.json.error as {code: string}).code, 'NOT_DEPLOYED')
  })

  it('--dry-run prints the change deploy, promote and rollback would make, and starts, locks and writes nothing', async () => {
    p = await project({steps: [5, 50]})
    const ledger = () =>
      mlops(p.dir, ['history', '--json']).then((r) => (r.json.entries as unknown[] | undefined)?.length ?? 0)
    const first = await mlops(p.dir, ['deploy', '1.0.0', '--full', '--model', XGB, '--dry-run', '--json'])
    assert.equal(first.exitCode, 0, first.stderr)
    assertMatchesSchema(first.json, 'deploy')
    assert.deepEqual([first.json.dryRun, first.json.changed, first.json.status], [true, true, undefined])
    assert.deepEqual((first.json.plan as {to: unknown}).to, {stage: 'full', weight: 0, stable: '1.0.0'})
    assert.equal(
      ((await mlops(p.dir, ['status', '--json'])).json.error as {code: string}).code,
      'NOT_DEPLOYED',
      'a dry run deploys nothing',
    )
    assert.equal((await burst(p.url, 1))[0].status, 0, 'no gateway was started')

    // What the command would refuse, the dry run refuses.
    const refused = await mlops(p.dir, ['deploy', '1.1.0', '--shadow', '--model', XGB, '--dry-run', '--json'])
    assert.deepEqual([refused.exitCode, (refused.json.error as {code: string}).code], [2, 'NO_STABLE_RELEASE'])

    await mlops(p.dir, ['deploy', '1.0.0', '--full', '--model', XGB, '--json'])
    const canary = await mlops(p.dir, ['deploy', '1.1.0', '--canary', '5', '--model', XGB, '--dry-run', '--json'])
    assert.equal(canary.exitCode, 0, canary.stderr)
    assertMatchesSchema(canary.json, 'deploy')
    assert.deepEqual((canary.json.plan as {from: unknown; to: unknown}).to, {
      stage: 'canary',
      weight: 5,
      stable: '1.0.0',
      candidate: '1.1.0',
    })
    assert.equal((canary.json.status as {revision: number}).revision, 1, 'the status is of what runs now')
    assert.deepEqual(new Set((await burst(p.url, 100)).map((a) => a.version)), new Set(['1.0.0']))

    await mlops(p.dir, ['deploy', '1.1.0', '--canary', '5', '--model', XGB, '--json'])
    const before = await ledger()
    const promote = await mlops(p.dir, ['promote', '--dry-run', '--json'])
    assertMatchesSchema(promote.json, 'promote')
    assert.deepEqual((promote.json.plan as {to: unknown}).to, {
      stage: 'canary',
      weight: 50,
      stable: '1.0.0',
      candidate: '1.1.0',
    })
    const rollback = await mlops(p.dir, ['rollback', '--dry-run', '--json'])
    assertMatchesSchema(rollback.json, 'rollback')
    assert.deepEqual((rollback.json.plan as {to: unknown}).to, {stage: 'full', weight: 0, stable: '1.0.0'})
    const now = await mlops(p.dir, ['status', '--json'])
    assert.deepEqual(
      [now.json.stage, (now.json.candidate as {weight: number}).weight, now.json.revision],
      ['canary', 5, 2],
    )
    assert.equal(await ledger(), before, 'no ledger entry')

    const text = await execa(process.execPath, ['--import', 'tsx', FIXTURE, 'promote', '--dry-run', '--dir', p.dir], {
      env: {CI: 'true'},
    })
    assert.match(
      text.stdout,
      /^would promote 1\.1\.0: 1\.1\.0 5% → 1\.1\.0 50% \(.+\)\ndry run: nothing was started, locked or written\n\nPaused {2}/,
    )
  })

  it('a --dir that does not exist is a usage error for status, history and down, and nothing is created there', async () => {
    p = await project()
    const missing = `${p.dir}-typo`
    for (const args of [['status'], ['history'], ['down', '--yes']]) {
      const result = await mlops(missing, [...args, '--json'])
      assert.deepEqual(
        [result.exitCode, (result.json.error as {code: string}).code],
        [2, 'DIR_NOT_FOUND'],
        args.join(' '),
      )
    }
    assert.equal(existsSync(missing), false)
  })
})
