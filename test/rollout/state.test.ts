import assert from 'node:assert/strict'
import {spawn} from 'node:child_process'
import {appendFile, readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {deploy, down} from '../../src/rollout/deploy.js'
import {DEFAULT_MIRROR_CONCURRENCY} from '../../src/rollout/config.js'
import {acquireLock, appendLedger, deployPaths, readLedger, readState, writeState} from '../../src/rollout/state.js'
import type {LedgerEntry} from '../../src/rollout/types.js'
import {tempDir} from '../support/cli.js'
import {stable} from './fixtures.js'
import {type Project, XGB, project} from './helpers.js'

const entry = (version: string): LedgerEntry => ({
  action: 'deploy',
  automatic: false,
  version,
  to: {stage: 'full', weight: 0, stable: version},
  reason: 'first release',
  at: '2025-01-01T00:00:00.000Z',
  actor: 'alice',
  revision: 1,
})

describe('deploy state, ledger and lock', function () {
  this.timeout(60_000)

  it('a state file that is JSON but not a rollout state is refused by name, and down clears it', async () => {
    const dir = await tempDir()
    const paths = deployPaths(dir.path)
    await writeState(paths, stable())
    assert.equal((await readState(paths))?.stable.version, '1.0.0')
    const cases: [string, RegExp][] = [
      [
        '{"schemaVersion":1,"revision":"x","stable":5}',
        /rollout\.json is not a rollout state: revision is not a positive integer/,
      ],
      ['[]', /not a JSON object/],
      [JSON.stringify({...stable(), stage: 'blue'}), /stage "blue" is not full, shadow or canary/],
      [JSON.stringify({...stable(), candidate: {}}), /candidate has no version/],
    ]
    for (const [text, message] of cases) {
      await writeFile(paths.state, text)
      await assert.rejects(readState(paths), {code: 'STATE_CORRUPT', message})
    }
    assert.equal((await down({dir: dir.path, actor: 'test'})).stopped, false)
    assert.equal(await readState(paths), undefined, 'down removed it')
    await dir.remove()
  })

  it('a ledger line torn by a crash is skipped, and the next entry starts on its own line', async () => {
    const dir = await tempDir()
    const paths = deployPaths(dir.path)
    await appendLedger(paths, entry('1.0.0'))
    await appendFile(paths.ledger, '{"action":"deploy","vers')
    await appendLedger(paths, entry('1.1.0'))
    const ledger = await readLedger(paths)
    assert.deepEqual(
      ledger.entries.map((e) => e.version),
      ['1.0.0', '1.1.0'],
    )
    assert.equal(ledger.skipped, 1)
    await dir.remove()
  })

  it('state written before deploy.shadow.concurrency existed is read with its default', async () => {
    const dir = await tempDir()
    const paths = deployPaths(dir.path)
    const {mirrorConcurrency, ...older} = {...stable(), mirrorConcurrency: DEFAULT_MIRROR_CONCURRENCY + 3}
    await writeState(paths, older as typeof older & {mirrorConcurrency: number})
    assert.equal((await readState(paths))?.mirrorConcurrency, DEFAULT_MIRROR_CONCURRENCY)
    await writeState(paths, {...older, mirrorConcurrency})
    assert.equal((await readState(paths))?.mirrorConcurrency, DEFAULT_MIRROR_CONCURRENCY + 3)
    await dir.remove()
  })

  it('the lock refuses a second holder, naming its pid and command, and is free again once released', async () => {
    const dir = await tempDir()
    const paths = deployPaths(dir.path)
    const lock = await acquireLock(paths, 'mlops deploy 1.1.0 --canary')
    await assert.rejects(acquireLock(paths, 'mlops promote'), (error: Error & {code?: string; exitCode?: number}) => {
      assert.equal(error.code, 'DEPLOY_LOCKED')
      assert.equal(error.exitCode, 3)
      assert.match(error.message, new RegExp(`pid ${process.pid} \\(mlops deploy 1.1.0 --canary\\) since \\d{4}-`))
      return true
    })
    lock.release()
    ;(await acquireLock(paths, 'mlops promote')).release()
    await dir.remove()
  })

  it('mlops down waits out an automatic step that holds the lock, where a deploy is refused at once', async () => {
    const dir = await tempDir()
    await writeFile(join(dir.path, 'mlops.yaml'), JSON.stringify({name: 'demo', model: {path: XGB}}))
    const paths = deployPaths(dir.path)
    const lock = await acquireLock(paths, 'gateway (automatic rollback)')
    await assert.rejects(deploy({dir: dir.path, ref: '1.0.0', model: XGB, stage: 'full'}), {code: 'DEPLOY_LOCKED'})
    let released = false
    setTimeout(() => {
      released = true
      lock.release()
    }, 500)
    const result = await down({dir: dir.path, actor: 'test'})
    assert.equal(result.stopped, false)
    assert.ok(released, 'down waited for the lock')
    await dir.remove()
  })

  it('a lock left by a killed process is broken; one held by a live process is not', async () => {
    const dir = await tempDir()
    const paths = deployPaths(dir.path)
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'])
    await new Promise((r) => child.once('spawn', r))
    await acquireLock(paths, 'x').then((l) => l.release())
    await writeFile(
      paths.lock,
      JSON.stringify({
        pid: child.pid,
        command: 'mlops deploy 9.9.9',
        since: new Date().toISOString(),
        host: (await import('node:os')).hostname(),
      }),
    )
    await assert.rejects(acquireLock(paths, 'mlops promote'), /pid \d+ \(mlops deploy 9.9.9\)/)
    child.kill('SIGKILL')
    await new Promise((r) => child.once('exit', r))
    const lock = await acquireLock(paths, 'mlops promote')
    assert.equal(JSON.parse(await readFile(paths.lock, 'utf8')).pid, process.pid)
    lock.release()
    await dir.remove()
  })

  describe('with a deployed project', () => {
    let p: Project
    afterEach(async () => p?.cleanup())

    it('of two concurrent deploys, one is refused', async () => {
      p = await project()
      await deploy({dir: p.dir, ref: '1.0.0', model: XGB, stage: 'full'})
      const results = await Promise.allSettled([
        deploy({dir: p.dir, ref: '1.1.0', model: XGB, stage: 'canary'}),
        deploy({dir: p.dir, ref: '1.2.0', model: XGB, stage: 'canary'}),
      ])
      const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected')
      assert.equal(refused.length, 1, JSON.stringify(results.map((r) => r.status)))
      assert.ok(
        ['DEPLOY_LOCKED', 'ROLLOUT_IN_PROGRESS'].includes((refused[0].reason as {code: string}).code),
        String(refused[0].reason),
      )
    })
  })
})
