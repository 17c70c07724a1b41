// The shadow mirror's thread: sends copies of client predictions to the candidate, compares the answers with stable's,
// and hands the gateway its counts in batches. Off the gateway's main thread and at a lower CPU priority, the work a
// mirror costs waits behind the client traffic the main thread serves.
import {readlinkSync} from 'node:fs'
import {setPriority} from 'node:os'
import {performance} from 'node:perf_hooks'
import {parentPort, workerData} from 'node:worker_threads'

import {ConnectionPool, requestFor} from '../../http/client.js'
import {compareAnswers} from './compare.js'
import type {MirrorBatch, MirrorRequest, MirrorThreadData, ToMirrorThread} from './mirror.js'
import {ShadowCounter} from './stats.js'

const REPORT_MS = 50
const data = workerData as MirrorThreadData
const done = new Int32Array(data.done)
let pool: ConnectionPool | undefined
let origin: string | undefined
let batch: {generation: number; latencies: number[]; failedLatencies: number[]; comparisons: ShadowCounter} | undefined

try {
  // setpriority(2) on a thread id changes that thread alone; /proc/thread-self names it (Linux). The main thread keeps its priority.
  setPriority(Number(readlinkSync('/proc/thread-self').split('/').pop()), data.nice)
} catch {
  // Not Linux, or not allowed: the mirror still runs off the main thread.
}

function poolFor(url: string): ConnectionPool {
  if (pool && origin === url) return pool
  // Mirrors already out finish and count; the old pool closes behind them.
  pool?.end()
  origin = url
  pool = new ConnectionPool(new URL(url), data.connections, {collect: true, idleMs: 4000, timeoutMs: data.timeoutMs})
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
  const started = performance.now()
  let status = 0
  const finish = (answer: Buffer | undefined) => {
    const ms = performance.now() - started
    const into = batchFor(request.generation)
    // A failed mirror is the candidate's error: its latency is recorded with it, as for client traffic.
    ;(answer === undefined || status >= 500 ? into.failedLatencies : into.latencies).push(ms)
    if (answer !== undefined) {
      into.comparisons.recordComparison(compareAnswers({status: request.status, body: bytes(request.answer).toString('utf8')}, {status, body: answer.toString('utf8')}, request.tolerance))
    }
    Atomics.add(done, 0, 1)
  }
  const target = poolFor(request.url)
  const bytesOut = requestFor(target.origin, request.method, request.path, request.headers, bytes(request.body))
  target.send(bytesOut, () => performance.now(), (answerStatus, error, answer) => {
    status = answerStatus
    finish(error ? undefined : answer?.body)
  }, request.method === 'HEAD')
}

/** A Buffer over the bytes a message carried (they arrive as a plain Uint8Array), without a copy. */
function bytes(view: Uint8Array): Buffer {
  return Buffer.from(view.buffer, view.byteOffset, view.byteLength)
}

setInterval(flush, REPORT_MS)
parentPort!.on('message', (message: ToMirrorThread) => {
  if (message.type === 'mirror') mirror(message)
  else {
    pool?.end()
    pool = undefined
    origin = undefined
  }
})
