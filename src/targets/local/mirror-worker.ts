// The shadow mirror's thread: sends copies of client predictions to the candidate, compares the answers with stable's,
// and hands the gateway its counts in batches. Off the gateway's main thread and at background CPU priority (SCHED_IDLE),
// the work a mirror costs runs only on a core the client traffic leaves idle.
import {performance} from 'node:perf_hooks'
import {parentPort, workerData} from 'node:worker_threads'

import {Upstream} from '../../http/client.js'
import {backgroundThisThread} from '../../system/priority.js'
import {compareAnswers} from './compare.js'
import type {MirrorBatch, MirrorRequest, MirrorThreadData, ToMirrorThread} from './mirror.js'
import {ShadowCounter} from './stats.js'

const REPORT_MS = 50
const data = workerData as MirrorThreadData
const done = new Int32Array(data.done)
let pool: Upstream | undefined
let poolOrigin: string | undefined
let poolSize = 0
let batch: {generation: number; latencies: number[]; failedLatencies: number[]; comparisons: ShadowCounter} | undefined

// This thread alone; where that is not possible (not Linux), the mirror still runs off the main thread.
const priority = backgroundThisThread()

/**
 * At most `concurrency` mirrors are at the candidate at once, pipelined on one connection (the model server reads the
 * next request while it works on the one before, and batches what it has); the others wait in the pool, in order, for
 * one to come back, so a burst is mirrored when the cores are free again instead of being dropped or piling onto the
 * candidate.
 */
function poolFor(url: string, concurrency: number): Upstream {
  if (pool && poolOrigin === url && poolSize === concurrency) return pool
  // Mirrors already out finish and count; the old pool closes behind them.
  void pool?.end()
  poolOrigin = url
  poolSize = concurrency
  pool = new Upstream(new URL(url), {connections: 1, idleMs: 4000, timeoutMs: data.timeoutMs, pipelining: concurrency})
  return pool
}

function batchFor(generation: number): NonNullable<typeof batch> {
  if (batch && batch.generation !== generation) flush()
  batch ??= {generation, latencies: [], failedLatencies: [], comparisons: new ShadowCounter()}
  return batch
}

function flush(): void {
  if (!batch) return
  parentPort!.postMessage({...batch, comparisons: batch.comparisons.totals()} satisfies MirrorBatch)
  batch = undefined
}

function mirror(request: MirrorRequest): void {
  // The candidate's latency counts from the send: the wait for a free connection is the gateway's, not the candidate's.
  let sent = performance.now()
  let status = 0
  const finish = (answer: Buffer | undefined) => {
    const ms = performance.now() - sent
    const into = batchFor(request.generation)
    // A failed mirror is the candidate's error: its latency is recorded with it, as for client traffic.
    ;(answer === undefined || status >= 500 ? into.failedLatencies : into.latencies).push(ms)
    if (answer !== undefined) {
      into.comparisons.recordComparison(
        compareAnswers(
          {status: request.status, body: bytes(request.answer).toString('utf8')},
          {status, body: answer.toString('utf8')},
          request.tolerance,
        ),
      )
    }
    Atomics.add(done, 0, 1)
  }
  const target = poolFor(request.url, request.concurrency)
  target.send(
    {method: request.method, path: request.path, headers: request.headers, body: bytes(request.body)},
    (answerStatus, error, answer) => {
      status = answerStatus
      finish(error ? undefined : answer?.body)
    },
    {onStart: () => (sent = performance.now())},
  )
}

/** A Buffer over the bytes a message carried (they arrive as a plain Uint8Array), without a copy. */
function bytes(view: Uint8Array): Buffer {
  return Buffer.from(view.buffer, view.byteOffset, view.byteLength)
}

/**
 * With more than one mirror allowed at the candidate, mirrors wait up to this long to leave together: pipelined back to
 * back, the candidate reads them in one go and runs them as one batch. Measured here at 3000 req/s with 8 at once, the
 * candidate spent 75–78 µs of CPU per mirror this way, 110–117 µs when each left on its own, and 143–182 µs with one
 * mirror at a time; the wait is the gateway's, not counted in the candidate's latency.
 */
const WINDOW_MS = 2
const queued: MirrorRequest[] = []
let windowTimer: NodeJS.Timeout | undefined

function enqueue(request: MirrorRequest): void {
  if (request.concurrency <= 1) return mirror(request)
  // A new candidate: what waits for the old one leaves first.
  if (queued.length > 0 && queued[0].url !== request.url) sendQueued()
  queued.push(request)
  if (queued.length >= request.concurrency) sendQueued()
  else windowTimer ??= setTimeout(sendQueued, WINDOW_MS)
}

function sendQueued(): void {
  clearTimeout(windowTimer)
  windowTimer = undefined
  const leaving = queued.splice(0)
  if (leaving.length === 0) return
  for (const request of leaving) mirror(request)
}

setInterval(flush, REPORT_MS)
// Mirrors wait for the priority change: the first ones would otherwise be sent at normal priority.
await priority
parentPort!.on('message', (message: ToMirrorThread) => {
  if (message.type === 'mirror') enqueue(message)
  else {
    // The shadow step is over: what waits is not sent, and its answers would count nowhere.
    clearTimeout(windowTimer)
    windowTimer = undefined
    Atomics.add(done, 0, queued.splice(0).length)
    void pool?.end()
    pool = undefined
    poolOrigin = undefined
  }
})
