// deploy.gateway_workers: the gateway's client port served by worker processes, which take the gateway's routes, report
// its counts, hand shadow mirrors back to it and check callers as it would.
import assert from 'node:assert/strict'
import {readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {Pool} from 'undici'

import {createKey} from '../../src/auth/keys.js'
import {deploy, status} from '../../src/rollout/deploy.js'
import {deployPaths} from '../../src/rollout/state.js'
import {isAlive} from '../../src/system/process.js'
import type {GatewayInfo} from '../../src/targets/local/gateway.js'
import {FAST_ANALYSIS, type Project, XGB, burst, failures, predict, project, until} from './helpers.js'

/** The gateway's client-port workers: its children that run the gateway's own entry (the model servers run serve). */
async function frontWorkers(dir: string): Promise<number[]> {
  const {pid} = JSON.parse(await readFile(deployPaths(dir).gateway, 'utf8')) as GatewayInfo
  const children = (await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8')).trim().split(/\s+/).filter(Boolean)
  const workers: number[] = []
  for (const child of children.map(Number)) {
    const cmdline = await readFile(`/proc/${child}/cmdline`, 'utf8').catch(() => '')
    if (/[/\\]main\.[jt]s\0/.test(cmdline)) workers.push(child)
  }
  return workers.sort()
}

describe('gateway workers (deploy.gateway_workers)', function () {
  this.timeout(120_000)
  let p: Project

  afterEach(async () => {
    await p?.cleanup()
  })

  it('two workers serve the port and split a canary; status counts what both answered; one killed is replaced; down stops them', async () => {
    p = await project({gateway_workers: 2})
    await deploy({dir: p.dir, ref: '1.0.0', model: XGB, stage: 'full'})
    const workers = await frontWorkers(p.dir)
    assert.equal(workers.length, 2, `gateway workers: ${workers.join(', ')}`)
    await deploy({dir: p.dir, ref: '1.1.0', model: XGB, stage: 'canary', weight: 50})
    // Connections are dealt to the workers in turn: 8 of them reach both.
    const first = await burst(p.url, 200, 8)
    assert.deepEqual(failures(first), [])
    const versions = new Set(first.map((a) => a.version))
    assert.deepEqual(versions, new Set(['1.0.0', '1.1.0']))

    // A worker reports its counts every 200 ms: one killed loses what it counted since its last report.
    await until('the first burst counted', async () => {
      const metrics = (await status({dir: p.dir})).metrics
      return (metrics?.stable.requests ?? 0) + (metrics?.candidate.requests ?? 0) >= 200 ? true : undefined
    })
    process.kill(workers[0], 'SIGKILL')
    const replaced = await until('a replacement worker', async () => {
      const now = await frontWorkers(p.dir)
      return now.length === 2 && !now.includes(workers[0]) ? now : undefined
    })
    assert.ok(replaced.includes(workers[1]))
    const second = await burst(p.url, 100, 8)
    assert.deepEqual(failures(second), [])
    // What the killed worker reported before it died still counts: 300 predictions in this step, as the clients saw them.
    const counted = await until(
      'every prediction counted',
      async () => {
        const metrics = (await status({dir: p.dir})).metrics
        const sum = (metrics?.stable.requests ?? 0) + (metrics?.candidate.requests ?? 0)
        return sum >= 300 ? metrics : undefined
      },
      5000,
    )
    const byVersion = (version: string) => [...first, ...second].filter((a) => a.version === version).length
    assert.equal(counted?.stable.requests, byVersion('1.0.0'))
    assert.equal(counted?.candidate.requests, byVersion('1.1.0'))

    await p.cleanup()
    p = undefined as unknown as Project
    assert.deepEqual(
      replaced.filter((pid) => isAlive({pid})),
      [],
    )
  })

  it('in shadow, predictions the workers answered are mirrored and compared by the gateway', async () => {
    p = await project({gateway_workers: 2, analysis: FAST_ANALYSIS})
    await deploy({dir: p.dir, ref: '1.0.0', model: XGB, stage: 'full'})
    await deploy({dir: p.dir, ref: '1.1.0', model: XGB, stage: 'shadow'})
    const answers = await burst(p.url, 100, 4)
    assert.deepEqual(failures(answers), [])
    assert.deepEqual(new Set(answers.map((a) => a.version)), new Set(['1.0.0']))
    const shadow = await until('mirrors compared', async () => {
      const stats = (await status({dir: p.dir})).metrics?.shadow
      return stats && stats.compared + stats.dropped >= 100 ? stats : undefined
    })
    assert.ok(shadow.compared > 0, JSON.stringify(shadow))
    assert.equal(shadow.agreed, shadow.compared)
  })

  it('the workers check callers: 401 without a key, 200 with one, and the rate limit holds for the port, not per worker', async () => {
    p = await project({gateway_workers: 2})
    const config = JSON.parse(await readFile(join(p.dir, 'mlops.yaml'), 'utf8')) as Record<string, unknown>
    config.serving = {auth: {mode: 'keys', rate_limit: {per_second: 0.01, burst: 10}}}
    await writeFile(join(p.dir, 'mlops.yaml'), JSON.stringify(config))
    const {key} = await createKey(join(p.dir, '.mlops', 'keys.json'), {name: 'shop', scopes: ['predict']})
    await deploy({dir: p.dir, ref: '1.0.0', model: XGB, stage: 'full', authMode: 'keys'})
    const pool = new Pool(p.url, {connections: 8})
    try {
      assert.equal((await predict(pool)).status, 401)
      const answers = await Promise.all(Array.from({length: 16}, () => predict(pool, {authorization: `Bearer ${key}`})))
      const statuses = answers.map((a) => a.status).sort()
      // One bucket of 10 for the port: with one per worker, up to 20 would pass.
      assert.equal(statuses.filter((s) => s === 200).length, 10, statuses.join(' '))
      assert.equal(statuses.filter((s) => s === 429).length, 6, statuses.join(' '))
    } finally {
      await pool.close()
    }
  })
})
