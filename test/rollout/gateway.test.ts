import assert from 'node:assert/strict'
import {readFile, readdir, stat, writeFile} from 'node:fs/promises'
import {getPriority} from 'node:os'

import {Pool, request} from 'undici'

import {deploy, down, history, promote, rollback, status, waitForOutcome} from '../../src/rollout/deploy.js'
import {deployPaths} from '../../src/rollout/state.js'
import type {GatewayInfo} from '../../src/targets/local/gateway.js'
import {FAST_ANALYSIS, type Project, XGB, XGB_ANSWER, burst, failures, predict, project, steadyLoad} from './helpers.js'

describe('deploy on the local gateway', function () {
  this.timeout(120_000)
  let p: Project

  afterEach(async () => {
    await p?.cleanup()
  })

  it('a good candidate goes shadow → canary → full by itself under steady load, with zero failed requests', async () => {
    p = await project({steps: [20, 60], analysis: FAST_ANALYSIS})
    await deploy({dir: p.dir, ref: '1.0.0', model: XGB, stage: 'full', actor: 'alice'})
    const load = steadyLoad(p.url, 4)
    const started = await deploy({dir: p.dir, ref: '1.1.0', model: XGB, stage: 'shadow', auto: true, actor: 'alice'})
    const outcome = await waitForOutcome({
      dir: p.dir,
      version: '1.1.0',
      revision: started.status.revision,
      timeoutMs: 90_000,
    })
    const answers = await load.stop()
    assert.equal(outcome.result, 'promoted')
    assert.deepEqual(
      failures(answers).slice(0, 3),
      [],
      `${failures(answers).length} of ${answers.length} requests failed`,
    )
    assert.ok(answers.length > 200, `only ${answers.length} requests were sent`)
    const after = await burst(p.url, 20)
    assert.deepEqual(new Set(after.map((a) => a.version)), new Set(['1.1.0']))
    const {entries} = await history({dir: p.dir})
    assert.deepEqual(
      entries.map(
        (e) => `${e.action}${e.automatic ? '*' : ''} ${e.to?.stage}${e.to?.stage === 'canary' ? e.to.weight : ''}`,
      ),
      ['deploy full', 'deploy shadow', 'promote* canary20', 'promote* canary60', 'promote* full'],
    )
    const shadowStep = entries[2]
    assert.match(shadowStep.actor, /gateway \(--auto, started by alice\)/)
    assert.equal(shadowStep.analysis?.verdict, 'pass')
    assert.ok(
      (shadowStep.analysis?.metrics?.shadow?.compared ?? 0) >= 30,
      'the shadow step was judged on compared answers',
    )
    assert.equal(shadowStep.analysis?.metrics?.shadow?.agreed, shadowStep.analysis?.metrics?.shadow?.compared)
  })

  it('a candidate with 30% errors in canary is rolled back by itself, naming the error rate gate', async () => {
    p = await project({steps: [30], analysis: FAST_ANALYSIS})
    await deploy({dir: p.dir, ref: '1.0.0', model: XGB, stage: 'full'})
    const load = steadyLoad(p.url, 4)
    const started = await deploy({
      dir: p.dir,
      ref: '1.1.0',
      model: XGB,
      stage: 'canary',
      auto: true,
      env: {MLOPS_FAULT_ERROR_RATE: '0.3'},
    })
    await assert.rejects(
      waitForOutcome({dir: p.dir, version: '1.1.0', revision: started.status.revision, timeoutMs: 60_000}),
      (error: Error & {code?: string}) => {
        assert.equal(error.code, 'ROLLED_BACK')
        assert.match(
          error.message,
          /1.1.0 was rolled back by the error_rate gate: analysis failed at canary 30%: error rate: candidate \d+\.\d% vs stable 0\.0%/,
        )
        return true
      },
    )
    await load.stop()
    const after = await burst(p.url, 50)
    assert.deepEqual(failures(after), [])
    assert.deepEqual(new Set(after.map((a) => a.version)), new Set(['1.0.0']))
    const now = await status({dir: p.dir})
    assert.equal(now.phase, 'RolledBack')
    const last = (await history({dir: p.dir})).entries.at(-1)!
    assert.deepEqual([last.action, last.automatic, last.gate], ['rollback', true, 'error_rate'])
    assert.ok(last.analysis!.metrics!.candidate.errors > 0)
  })

  it('shadow answers never reach a client, and wrong answers fail the agreement gate', async () => {
    p = await project({analysis: FAST_ANALYSIS})
    await deploy({dir: p.dir, ref: '1.0.0', model: XGB, stage: 'full'})
    const started = await deploy({
      dir: p.dir,
      ref: '1.1.0',
      model: XGB,
      stage: 'shadow',
      auto: true,
      env: {MLOPS_FAULT_WRONG: '1'},
    })
    const load = steadyLoad(p.url, 4)
    await assert.rejects(
      waitForOutcome({dir: p.dir, version: '1.1.0', revision: started.status.revision, timeoutMs: 60_000}),
      /rolled back by the agreement gate: .*0\.0% of \d+ answers agree/,
    )
    const answers = await load.stop()
    assert.deepEqual(failures(answers), [])
    assert.deepEqual(new Set(answers.map((a) => a.version)), new Set(['1.0.0']))
    assert.deepEqual(
      new Set(answers.map((a) => (JSON.parse(a.body) as {predictions: {variable: number}[]}).predictions[0].variable)),
      new Set([XGB_ANSWER]),
    )
  })

  it('a shadow candidate and the mirror thread run at background CPU priority (SCHED_IDLE, nice 10), every thread of the candidate; taking traffic, it is replaced at normal priority without a failed request', async () => {
    p = await project({steps: [50]})
    await deploy({dir: p.dir, ref: '1.0.0', model: XGB, stage: 'full'})
    const load = steadyLoad(p.url, 4)
    const shadow = await deploy({dir: p.dir, ref: '1.1.0', model: XGB, stage: 'shadow'})
    const background = shadow.status.gateway.servers!.find((s) => s.role === 'candidate')!
    const stable = shadow.status.gateway.servers!.find((s) => s.role === 'stable')!
    assert.equal(background.background, true)
    assert.deepEqual(await threadPriorities(background.pid!), ['idle, nice 10'])
    assert.deepEqual(await threadPriorities(stable.pid!), ['normal, nice 0'])
    // The mirror thread lowers itself as it starts, with chrt: give it a moment.
    let gateway = await threadsOf(shadow.status.gateway.pid!)
    for (let i = 0; i < 50 && !gateway.some((t) => t.priority === 'idle, nice 10'); i++) {
      await new Promise((r) => setTimeout(r, 100))
      gateway = await threadsOf(shadow.status.gateway.pid!)
    }
    assert.deepEqual(
      gateway.filter((t) => t.priority === 'idle, nice 10').length,
      1,
      'one thread of the gateway (the mirror thread) is in the background',
    )
    assert.equal(
      gateway.find((t) => t.tid === shadow.status.gateway.pid)?.priority,
      'normal, nice 0',
      "the gateway's main thread keeps its priority",
    )
    const canary = await promote({dir: p.dir})
    const normal = canary.status.gateway.servers!.find((s) => s.role === 'candidate')!
    assert.notEqual(normal.pid, background.pid)
    assert.equal(normal.background, undefined)
    assert.deepEqual(await threadPriorities(normal.pid!), ['normal, nice 0'])
    await waitGone(background.pid!)
    const answers = await load.stop()
    assert.deepEqual(failures(answers).slice(0, 3), [], `${failures(answers).length} of ${answers.length} failed`)
    assert.ok(
      answers.some((a) => a.version === '1.1.0'),
      'the candidate answered clients in canary',
    )
  })

  /** Ten requests at once, stable fast and the candidate 300 ms slow: what the gateway mirrors, drops and has at the candidate at once. */
  async function mirrorBurst(shadow: {
    concurrency: number
    max_in_flight: number
  }): Promise<{counts: {mirrored?: number; dropped?: number; compared?: number}; most: number; atCandidate: number[]}> {
    p = await project({shadow})
    await deploy({dir: p.dir, ref: '1.0.0', model: XGB, stage: 'full'})
    const started = await deploy({
      dir: p.dir,
      ref: '1.1.0',
      model: XGB,
      stage: 'shadow',
      env: {MLOPS_FAULT_LATENCY_MS: '300'},
    })
    const candidate = started.status.gateway.servers!.find((s) => s.role === 'candidate')!
    const answers = await burst(p.url, 10, 10)
    assert.deepEqual(failures(answers), [])
    const atCandidate: number[] = []
    let counts = (await status({dir: p.dir})).metrics?.shadow
    for (let i = 0; i < 200 && (counts?.compared ?? 0) < shadow.max_in_flight; i++) {
      atCandidate.push(await inFlightAt(candidate.url!, p.dir))
      counts = (await status({dir: p.dir})).metrics?.shadow
    }
    return {
      counts: {mirrored: counts?.mirrored, dropped: counts?.dropped, compared: counts?.compared},
      most: Math.max(...atCandidate),
      atCandidate,
    }
  }

  it('mirrors past deploy.shadow.concurrency wait their turn, and past max_in_flight are dropped and counted', async () => {
    // Stable answers all ten long before the first mirror's 300 ms are up: three are held (one sent, two waiting), seven dropped.
    const {counts, most, atCandidate} = await mirrorBurst({concurrency: 1, max_in_flight: 3})
    assert.deepEqual(counts, {mirrored: 3, dropped: 7, compared: 3})
    assert.equal(most, 1, `requests at the candidate while mirrors were out: ${atCandidate.join(' ')}`)
  })

  it('with deploy.shadow.concurrency above one, that many mirrors are at the candidate at once, and each answer is compared', async () => {
    // Six held: three sent together, three waiting for their turn; four dropped.
    const {counts, most, atCandidate} = await mirrorBurst({concurrency: 3, max_in_flight: 6})
    assert.deepEqual(counts, {mirrored: 6, dropped: 4, compared: 6})
    assert.equal(most, 3, `requests at the candidate while mirrors were out: ${atCandidate.join(' ')}`)
    const shadow = (await status({dir: p.dir})).metrics?.shadow
    assert.equal(shadow?.agreed, 6, 'the same model agrees with itself on every mirrored answer')
  })

  it('a much slower candidate in shadow is rolled back by itself, naming the latency gate', async () => {
    p = await project({analysis: FAST_ANALYSIS})
    await deploy({dir: p.dir, ref: '1.0.0', model: XGB, stage: 'full'})
    const load = steadyLoad(p.url, 4)
    const started = await deploy({
      dir: p.dir,
      ref: '1.1.0',
      model: XGB,
      stage: 'shadow',
      auto: true,
      env: {MLOPS_FAULT_LATENCY_MS: '1500'},
    })
    await assert.rejects(
      waitForOutcome({dir: p.dir, version: '1.1.0', revision: started.status.revision, timeoutMs: 60_000}),
      /rolled back by the latency gate: .*p50 candidate [\d.]+ (ms|s) vs stable/,
    )
    const answers = await load.stop()
    assert.deepEqual(failures(answers), [])
    assert.deepEqual(new Set(answers.map((a) => a.version)), new Set(['1.0.0']))
  })

  it('canary N% answers N% of requests, within a 4-sigma binomial interval; every answer names its version', async () => {
    p = await project()
    await deploy({dir: p.dir, ref: '1.0.0', model: XGB, stage: 'full'})
    await deploy({dir: p.dir, ref: '1.1.0', model: XGB, stage: 'canary', weight: 20})
    const n = 3000
    const answers = await burst(p.url, n, 16)
    assert.deepEqual(failures(answers), [])
    const candidate = answers.filter((a) => a.version === '1.1.0').length
    assert.equal(candidate + answers.filter((a) => a.version === '1.0.0').length, n)
    const sigma = Math.sqrt(n * 0.2 * 0.8)
    assert.ok(
      Math.abs(candidate - n * 0.2) <= 4 * sigma,
      `${candidate} of ${n} answered by the canary; expected ${n * 0.2} ± ${Math.round(4 * sigma)}`,
    )
    for (const a of answers) assert.equal(JSON.parse(a.body).version, a.version)
    const v2 = await request(`${p.url}/v2/models/xgboost_regressor/infer`, {
      method: 'POST',
      headers: {'content-type': 'application/json'},
      body: JSON.stringify({inputs: [{name: 'X', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4]}]}),
    })
    const body = (await v2.body.json()) as {model_version: string}
    assert.equal(v2.statusCode, 200)
    assert.equal(body.model_version, v2.headers['x-model-version'])
  })

  it('sticky routing keeps each key on one version', async () => {
    p = await project({sticky_header: 'X-User'})
    await deploy({dir: p.dir, ref: '1.0.0', model: XGB, stage: 'full'})
    await deploy({dir: p.dir, ref: '1.1.0', model: XGB, stage: 'canary', weight: 50})
    const answers = await burst(p.url, 600, 8, (i) => ({'x-user': `user-${i % 60}`}))
    const seen = new Map<string, Set<string>>()
    answers.forEach((a, i) => {
      const key = `user-${i % 60}`
      seen.set(key, (seen.get(key) ?? new Set()).add(a.version!))
    })
    for (const [key, versions] of seen) assert.equal(versions.size, 1, `${key} saw ${[...versions].join(' and ')}`)
    const versions = new Set([...seen.values()].flatMap((s) => [...s]))
    assert.deepEqual(versions, new Set(['1.0.0', '1.1.0']))
  })

  it('weight changes, promotion to full and rollback under load lose no request', async () => {
    p = await project({steps: [10, 50]})
    await deploy({dir: p.dir, ref: '1.0.0', model: XGB, stage: 'full'})
    const load = steadyLoad(p.url, 8)
    await deploy({dir: p.dir, ref: '1.1.0', model: XGB, stage: 'canary'})
    await promote({dir: p.dir})
    await promote({dir: p.dir, to: 100})
    await deploy({dir: p.dir, ref: '1.2.0', model: XGB, stage: 'canary', weight: 50})
    await rollback({dir: p.dir, reason: 'test'})
    const answers = await load.stop()
    assert.deepEqual(failures(answers).slice(0, 3), [], `${failures(answers).length} of ${answers.length} failed`)
    const versions = new Set(answers.map((a) => a.version))
    assert.deepEqual(versions, new Set(['1.0.0', '1.1.0', '1.2.0']))
    assert.equal(answers.at(-1)!.version, '1.1.0')
  })

  it('after kill -9 of the gateway mid-rollout, status says so and promote carries on', async () => {
    p = await project({steps: [10, 50]})
    await deploy({dir: p.dir, ref: '1.0.0', model: XGB, stage: 'full'})
    await deploy({dir: p.dir, ref: '1.1.0', model: XGB, stage: 'canary'})
    const paths = deployPaths(p.dir)
    const info = JSON.parse(await readFile(paths.gateway, 'utf8')) as GatewayInfo
    const servers = JSON.parse(await readFile(paths.servers, 'utf8')) as {pid: number}[]
    assert.equal(servers.length, 2)
    process.kill(info.pid, 'SIGKILL')
    await waitGone(info.pid)
    const down = await status({dir: p.dir})
    assert.equal(down.phase, 'Degraded')
    assert.match(down.reason, /no measurement: the gateway is not running/)
    assert.equal(down.gateway.running, false)
    const promoted = await promote({dir: p.dir})
    assert.equal(promoted.status.candidate?.weight, 50)
    assert.equal(promoted.status.gateway.running, true)
    assert.notEqual(promoted.status.gateway.pid, info.pid)
    for (const server of servers) await waitGone(server.pid)
    const answers = await burst(p.url, 100)
    assert.deepEqual(failures(answers), [])
    assert.deepEqual(new Set(answers.map((a) => a.version)), new Set(['1.0.0', '1.1.0']))
  })

  it('a gateway whose file is damaged is still found: status names it, deploy refuses to start a second, down stops it', async () => {
    p = await project()
    await deploy({dir: p.dir, ref: '1.0.0', model: XGB, stage: 'full'})
    const paths = deployPaths(p.dir)
    const info = JSON.parse(await readFile(paths.gateway, 'utf8')) as GatewayInfo
    const servers = JSON.parse(await readFile(paths.servers, 'utf8')) as {pid: number}[]
    await writeFile(paths.gateway, '{"pid": 12')
    const seen = await status({dir: p.dir})
    assert.equal(seen.phase, 'Degraded')
    assert.match(
      seen.reason,
      new RegExp(
        `a gateway \\(pid ${info.pid}\\) runs for this project, but .*gateway\\.json does not say how to reach it \\(removed or damaged\\); run "mlops down"`,
      ),
    )
    await assert.rejects(deploy({dir: p.dir, ref: '1.0.1', model: XGB, stage: 'full'}), {code: 'GATEWAY_UNREACHABLE'})
    assert.equal((await status({dir: p.dir})).stable.version, '1.0.0', 'the refused deploy changed nothing')
    assert.deepEqual(failures(await burst(p.url, 20)), [], 'the gateway still serves meanwhile')
    const stopped = await down({dir: p.dir})
    assert.deepEqual([stopped.stopped, stopped.pid], [true, info.pid])
    await waitGone(info.pid)
    for (const server of servers) await waitGone(server.pid)
    assert.equal((await burst(p.url, 1))[0].status, 0, 'nothing answers after down')
  })

  it('the control API refuses requests without the token', async () => {
    p = await project()
    await deploy({dir: p.dir, ref: '1.0.0', model: XGB, stage: 'full'})
    const info = JSON.parse(await readFile(deployPaths(p.dir).gateway, 'utf8')) as GatewayInfo
    const base = `http://127.0.0.1:${info.controlPort}`
    const none = await request(`${base}/v1/status`)
    assert.equal(none.statusCode, 401)
    await none.body.dump()
    const wrong = await request(`${base}/v1/shutdown`, {
      method: 'POST',
      headers: {authorization: `Bearer ${'0'.repeat(64)}`},
    })
    assert.equal(wrong.statusCode, 401)
    await wrong.body.dump()
    const pool = new Pool(p.url)
    assert.equal((await predict(pool)).status, 200, 'a refused shutdown leaves the gateway serving')
    await pool.close()
    const ok = await request(`${base}/v1/status`, {headers: {authorization: `Bearer ${info.token}`}})
    assert.equal(ok.statusCode, 200)
    assert.equal(((await ok.body.json()) as {port: number}).port, p.port)
  })

  it("the control API answers a malformed body with 400, and the deploy files are the user's alone (0600)", async () => {
    p = await project()
    await deploy({dir: p.dir, ref: '1.0.0', model: XGB, stage: 'full'})
    const paths = deployPaths(p.dir)
    const info = JSON.parse(await readFile(paths.gateway, 'utf8')) as GatewayInfo
    const authorization = `Bearer ${info.token}`
    for (const body of ['{not json', '{"servers": 3}', '[1,2]']) {
      const refused = await request(`http://127.0.0.1:${info.controlPort}/v1/prepare`, {
        method: 'POST',
        headers: {authorization, 'content-type': 'application/json'},
        body,
      })
      assert.equal(refused.statusCode, 400, body)
      assert.equal(((await refused.body.json()) as {error: {code: string}}).error.code, 'BAD_REQUEST')
    }
    for (const file of [paths.gateway, paths.state, paths.ledger, paths.servers, paths.log])
      assert.equal((await stat(file)).mode & 0o777, 0o600, file)
  })
})

async function waitGone(pid: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    try {
      process.kill(pid, 0)
    } catch {
      return
    }
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`pid ${pid} is still alive`)
}

/** Requests a model server is handling now, read from its /metrics (less the /metrics request itself). */
async function inFlightAt(url: string, dir: string): Promise<number> {
  // The gateway's model servers answer only requests carrying its token.
  const {upstreamToken} = JSON.parse(await readFile(deployPaths(dir).gateway, 'utf8')) as GatewayInfo
  const {body} = await request(`${url}/metrics`, {headers: {'x-mlops-gateway-token': upstreamToken}})
  const line = (await body.text()).split('\n').find((l) => l.startsWith('mlops_requests_in_flight '))
  return Number(line?.split(' ')[1]) - 1
}

/** A process's threads with their scheduling policy and nice value (Linux: /proc/PID/task lists them). */
async function threadsOf(pid: number): Promise<{tid: number; priority: string}[]> {
  const tids = (await readdir(`/proc/${pid}/task`)).map(Number)
  return Promise.all(
    tids.map(async (tid) => {
      const stat = await readFile(`/proc/${pid}/task/${tid}/stat`, 'utf8')
      // proc(5): field 41 is the policy; the fields after the command name in parentheses start at field 3.
      const policy = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[41 - 3])
      return {
        tid,
        priority: `${policy === 5 ? 'idle' : policy === 0 ? 'normal' : `policy ${policy}`}, nice ${getPriority(tid)}`,
      }
    }),
  )
}

/** The distinct priorities among a process's threads. */
async function threadPriorities(pid: number): Promise<string[]> {
  return [...new Set((await threadsOf(pid)).map((t) => t.priority))]
}
