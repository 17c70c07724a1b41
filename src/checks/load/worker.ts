// The load generator: a process of its own (forked by load/run.ts) so it shares no event loop with the tool or the server.
// Open model: requests go out on a fixed schedule whether or not earlier ones returned, and latency counts from the
// intended send time, so a stalled server is charged for the requests it made wait (no coordinated omission).
import {performance} from 'node:perf_hooks'

import * as hdr from 'hdr-histogram-js'

import {Upstream, type UpstreamRequest} from '../../http/client.js'
import {type LoadJob, type LoadOutcome, type WorkerMessage} from './protocol.js'

const PROGRESS_MS = 250
const SAMPLE_LIMIT = 5

function histogram(): hdr.Histogram {
  return hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 3_600_000_000,
    numberOfSignificantValueDigits: 3,
    bitBucketSize: 64,
    useWebAssembly: false,
  })
}

function failureKind(error: unknown): string {
  const e = error as {name?: string; code?: string}
  if (e.code === 'TIMEOUT') return 'timeout'
  if (e.code === 'ECONNREFUSED') return 'refused'
  if (e.code === 'ECONNRESET' || e.code === 'EPIPE') return 'reset'
  return 'error'
}

export async function generateLoad(job: LoadJob, send: (message: WorkerMessage) => void): Promise<LoadOutcome> {
  // Open model: one pool the schedule feeds. Closed model: a connection per user, as wrk and autocannon have, so no
  // request waits in a pool for a connection its own user just freed.
  const origin = new URL(job.origin)
  // undici's timeouts fail a request with no answer head (or no body bytes) for timeoutMs, as TIMEOUT.
  const limits = {timeoutMs: job.timeoutMs, idleMs: 4000}
  const pool = new Upstream(origin, {connections: job.concurrency, ...limits})
  const users =
    job.mode === 'closed'
      ? Array.from({length: job.concurrency}, () => new Upstream(origin, {connections: 1, single: true, ...limits}))
      : []
  const bodies: UpstreamRequest[] = job.requests.map((r) => ({
    method: 'POST',
    path: r.path,
    headers: ['content-type', 'application/json'],
    body: Buffer.from(r.body),
  }))
  const latency = histogram()
  const service = histogram()
  const lag = histogram()
  const statuses: Record<string, number> = {}
  const samples: string[] = []
  let sent = 0
  let completed = 0
  let failed = 0
  let measured = 0
  let measuredDone = 0
  let ok = 0
  let lastDone = 0
  let next = 0
  let inFlight = 0
  let draining = false
  let onIdle: (() => void) | undefined
  const elu0 = performance.eventLoopUtilization()
  const start = performance.now() + 5
  const measureFrom = start + job.warmupMs
  const end = measureFrom + job.durationMs

  function record(intended: number, sentAt: number, counted: boolean, status: string): void {
    const doneAt = performance.now()
    completed++
    inFlight--
    if (!status.startsWith('2')) failed++
    if (counted) {
      measuredDone++
      lastDone = doneAt
      statuses[status] = (statuses[status] ?? 0) + 1
      if (status.startsWith('2')) ok++
      const ms = doneAt - intended
      latency.recordValue(Math.max(1, Math.round(ms * 1000)))
      service.recordValue(Math.max(1, Math.round((doneAt - sentAt) * 1000)))
    }
  }

  /** After the closed model's next request went out (or did not): idle only when no user has one out. */
  function settled(then?: () => void): void {
    then?.()
    if (inFlight === 0 && onIdle) onIdle()
  }

  /**
   * One request: `intended` is when the schedule said to send it (the actual send time in the closed model); in the open
   * model it may wait in the pool for a connection, and its latency counts from `intended` all the same.
   */
  function fire(intended: number, then?: () => void, user?: Upstream): void {
    const request = bodies[next++ % bodies.length]
    const counted = intended >= measureFrom
    const sentAt = performance.now()
    if (counted) {
      measured++
      // The generator's own slip from its schedule; waiting for a free connection is the server's share (service time).
      if (job.mode === 'open') lag.recordValue(Math.max(1, Math.round((sentAt - intended) * 1000)))
    }
    sent++
    inFlight++
    // Service time counts from here, connection queueing included; the timeout from when the bytes are written.
    const done = (status: number, error?: Error & {code?: string}) => {
      if (error) {
        // Requests still out when the drain deadline passed are cut off: no answer in time.
        const kind = draining ? 'timeout' : failureKind(error)
        if (samples.length < SAMPLE_LIMIT) samples.push(`${kind}: ${error.message}`)
        record(intended, sentAt, counted, kind)
      } else {
        record(intended, sentAt, counted, String(status))
      }
      settled(then)
    }
    ;(user ?? pool).send(request, done, {collect: false})
  }

  const progress = setInterval(() => {
    const now = performance.now()
    send({
      type: 'progress',
      elapsedMs: Math.max(0, now - start),
      phase: now < measureFrom ? 'warmup' : now < end ? 'measure' : 'drain',
      sent,
      completed,
      failed,
    })
  }, PROGRESS_MS)

  if (job.mode === 'open') {
    const interval = 1000 / job.rate!
    const total = Math.floor(((job.warmupMs + job.durationMs) / 1000) * job.rate!)
    let i = 0
    await new Promise<void>((resolve) => {
      const tick = () => {
        const now = performance.now()
        // Everything due by now goes out in this turn; a timer fires at 1 ms resolution at best.
        while (i < total && start + i * interval <= now) fire(start + i++ * interval)
        if (i >= total) resolve()
        else setTimeout(tick, Math.max(0, Math.floor(start + i * interval - performance.now())))
      }
      setTimeout(tick, Math.max(0, start - performance.now()))
    })
  } else {
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, start - performance.now())))
    for (const connection of users) {
      const user = () => {
        if (performance.now() < end) fire(performance.now(), user, connection)
      }
      user()
    }
  }
  if (inFlight > 0) {
    // Whatever is still out after the timeout never answered in time; closing the pool fails it as a timeout.
    const idle = new Promise<void>((resolve) => (onIdle = resolve))
    const deadline = setTimeout(
      () => {
        draining = true
        const cutOff = new Error('the run ended before the answer came')
        for (const c of [pool, ...users]) void c.close(cutOff)
      },
      job.timeoutMs + Math.max(0, end - performance.now()),
    )
    await idle
    clearTimeout(deadline)
  }
  clearInterval(progress)
  const elu = performance.eventLoopUtilization(elu0).utilization
  await Promise.all([pool, ...users].map((c) => c.close()))
  return {
    type: 'result',
    measured,
    completed: measuredDone,
    ok,
    statuses,
    elapsedS: Math.max(job.durationMs, lastDone - measureFrom) / 1000,
    latency: hdr.encodeIntoCompressedBase64(latency),
    service: hdr.encodeIntoCompressedBase64(service),
    lag: hdr.encodeIntoCompressedBase64(lag),
    elu,
    samples,
  }
}

// Run as a forked child: one job in, progress and one result out, then exit.
if (process.send) {
  const send = (message: WorkerMessage) => process.send!(message)
  process.once('message', (job: LoadJob) => {
    generateLoad(job, send)
      .then(
        (result) => send(result),
        (error: unknown) => send({type: 'error', message: (error as Error).message ?? String(error)}),
      )
      .finally(() => process.disconnect())
  })
}
