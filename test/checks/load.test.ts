// The load generator process against real node:http servers on 127.0.0.1: schedule, statuses, failures, and no coordinated omission.
import assert from 'node:assert/strict'
import {type IncomingMessage, type Server, type ServerResponse, createServer} from 'node:http'
import type {AddressInfo} from 'node:net'

import type {LoadJob} from '../../src/checks/load/protocol.js'
import {runLoadPhase} from '../../src/checks/load/run.js'

async function serve(
  handler: (req: IncomingMessage, res: ServerResponse, n: number) => void,
): Promise<{origin: string; server: Server}> {
  let n = 0
  const server = createServer((req, res) => {
    req.resume()
    req.on('end', () => handler(req, res, n++))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server}
}

function answer(res: ServerResponse, status = 200): void {
  res.writeHead(status, {'content-type': 'application/json'})
  res.end(status === 200 ? '{"predictions":[{"y":1}]}' : '{"error":{"code":"X","message":"no"}}')
}

function job(origin: string, over: Partial<LoadJob> = {}): LoadJob {
  return {
    origin,
    requests: [{path: '/v1/predict', body: '{"instances":[{"x":1}]}'}],
    mode: 'open',
    rate: 100,
    concurrency: 16,
    warmupMs: 300,
    durationMs: 1500,
    timeoutMs: 5000,
    ...over,
  }
}

describe('load generator', function () {
  this.timeout(30_000)
  const servers: Server[] = []
  afterEach(() => {
    for (const s of servers.splice(0)) {
      s.closeAllConnections()
      s.close()
    }
  })

  it('sends on schedule in the open model and times from the intended send', async () => {
    const {origin, server} = await serve((_req, res) => setTimeout(() => answer(res), 20))
    servers.push(server)
    const phase = await runLoadPhase(job(origin))
    assert.equal(phase.requests, 150, '100 rps for 1.5 s')
    assert.deepEqual(phase.statuses, {200: 150})
    assert.equal(phase.errorRate, 0)
    assert.ok(phase.latencyMs.p50 >= 20, `nothing answers faster than the server's 20 ms (p50 ${phase.latencyMs.p50})`)
    assert.ok(
      phase.latencyMs.p99 >= phase.serviceMs.p99,
      'from the intended send is never shorter than from the actual send',
    )
    assert.equal(
      phase.histogram.counts.reduce((a, b) => a + b, 0),
      150,
    )
  })

  it('charges a stalled server for every request it kept waiting (open), where a closed loop sees one slow request', async () => {
    // Each server blocks its event loop for 600 ms once, 1 s after its first request (past the warm-up): the generator,
    // in its own process, keeps sending.
    const stalling = () => {
      let first: number | undefined
      let stalled = false
      return (_req: IncomingMessage, res: ServerResponse) => {
        first ??= performance.now()
        if (!stalled && performance.now() - first > 1000) {
          stalled = true
          const until = performance.now() + 600
          while (performance.now() < until);
        }
        answer(res)
      }
    }
    const open = await serve(stalling())
    const closed = await serve(stalling())
    servers.push(open.server, closed.server)
    const openPhase = await runLoadPhase(job(open.origin, {durationMs: 2000}))
    const closedPhase = await runLoadPhase(
      job(closed.origin, {mode: 'closed', rate: undefined, concurrency: 1, durationMs: 2000}),
    )
    // ~60 requests fell due during the stall: a quarter of the 200 measured waited 300 ms on average.
    assert.ok(
      openPhase.latencyMs.p90 >= 100,
      `open p90 ${openPhase.latencyMs.p90} ms counts the queue behind the stall`,
    )
    assert.ok(
      closedPhase.latencyMs.p90 < 100,
      `closed p90 ${closedPhase.latencyMs.p90} ms: the stall is one sample among many`,
    )
    assert.ok(closedPhase.latencyMs.max >= 500, 'the closed loop did see the stalled request itself')
  })

  it('counts statuses and failures: 500s, refused connections and timeouts', async () => {
    const flaky = await serve((_req, res, n) => answer(res, n % 4 === 3 ? 500 : 200))
    const silent = await serve(() => undefined)
    servers.push(flaky.server, silent.server)
    const errors = await runLoadPhase(
      job(flaky.origin, {mode: 'closed', rate: undefined, concurrency: 1, durationMs: 1000}),
    )
    assert.ok(Math.abs(errors.errorRate - 0.25) < 0.01, `every 4th answer is a 500: ${errors.errorRate}`)
    assert.equal(errors.statuses['500'] + errors.statuses['200'], errors.requests)

    const timeouts = await runLoadPhase(job(silent.origin, {rate: 20, durationMs: 500, warmupMs: 0, timeoutMs: 300}))
    assert.deepEqual(timeouts.statuses, {timeout: 10})
    assert.equal(timeouts.errorRate, 1)
    assert.match(timeouts.samples[0], /^timeout/)

    const port = (silent.server.address() as AddressInfo).port
    silent.server.close()
    const refused = await runLoadPhase(job(`http://127.0.0.1:${port}`, {rate: 20, durationMs: 500, warmupMs: 0}))
    assert.equal(refused.ok, 0)
    assert.equal(refused.statuses.refused, 10)
  })
})
