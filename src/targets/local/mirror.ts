// Shadow mirroring as the gateway's main thread sees it: a copy of a prediction and stable's answer handed to the mirror
// thread (mirror-worker.ts) in one message, and the candidate's latencies and comparisons merged back in batches.
import {Worker} from 'node:worker_threads'

import type {ComparisonTotals, StepWindow} from './stats.js'

export interface MirrorRequest {
  type: 'mirror'
  generation: number
  /** The candidate's origin. */
  url: string
  /** Mirrors at the candidate at once, at most; more wait their turn in the mirror thread. */
  concurrency: number
  method: string
  path: string
  /** Names and values, alternating. */
  headers: string[]
  body: Uint8Array
  /** Stable's answer, compared with the candidate's. */
  status: number
  answer: Uint8Array
  tolerance: number
}

export type ToMirrorThread = MirrorRequest | {type: 'idle'}

/** What the mirror thread reports every few milliseconds. */
export interface MirrorBatch {
  generation: number
  /** Milliseconds from send to answer, of mirrors the candidate answered below 500, and of the others. */
  latencies: number[]
  failedLatencies: number[]
  comparisons: ComparisonTotals
}

export interface MirrorThreadData {
  /** One Int32 on shared memory: mirrors finished, so the main thread counts those in flight without a message. */
  done: SharedArrayBuffer
  timeoutMs: number
}

const fromSources = import.meta.url.endsWith('.ts')

export class ShadowMirror {
  private readonly worker: Worker
  private readonly done = new Int32Array(new SharedArrayBuffer(4))
  private posted = 0
  private generation = 0
  private window?: StepWindow
  /** Why the mirror thread stopped, if it did: mirrors are then dropped and the client path goes on. */
  private failure?: string

  constructor(options: {log: (line: string) => void; timeoutMs?: number}) {
    const data: MirrorThreadData = {done: this.done.buffer, timeoutMs: options.timeoutMs ?? 30_000}
    this.worker = startThread(data)
    this.worker.unref()
    this.worker.on('message', (batch: MirrorBatch) => this.merge(batch))
    const fail = (why: string) => {
      if (this.failure !== undefined) return
      this.failure = why
      options.log(`shadow mirroring stopped: ${why}`)
    }
    this.worker.on('error', (error) => fail(error.message))
    this.worker.on('exit', (code) => fail(`the mirror thread exited with code ${code}`))
  }

  /** False once the mirror thread failed: comparisons stop, and the step's analysis waits for data it will not get. */
  get running(): boolean {
    return this.failure === undefined
  }

  /** Mirrors handed over and not yet answered (or failed): waiting in the mirror thread or at the candidate. */
  get inFlight(): number {
    return this.posted - Atomics.load(this.done, 0)
  }

  /** Counts from now on go to this step's window; answers to mirrors of an earlier step are left out of it. */
  use(window: StepWindow | undefined): void {
    if (window === this.window) return
    this.window = window
    this.generation++
    if (!window) this.worker.postMessage({type: 'idle'} satisfies ToMirrorThread)
  }

  send(request: Omit<MirrorRequest, 'type' | 'generation'>): void {
    this.posted++
    this.worker.postMessage({type: 'mirror', generation: this.generation, ...request} satisfies MirrorRequest)
  }

  async close(): Promise<void> {
    this.failure ??= 'closed'
    await this.worker.terminate()
  }

  private merge(batch: MirrorBatch): void {
    const window = this.window
    if (!window || batch.generation !== this.generation) return
    for (const ms of batch.latencies) window.candidate.record(ms, false)
    for (const ms of batch.failedLatencies) window.candidate.record(ms, true)
    window.shadow.merge(batch.comparisons)
  }
}

function startThread(workerData: MirrorThreadData): Worker {
  const entry = new URL(`./mirror-worker.${fromSources ? 'ts' : 'js'}`, import.meta.url)
  if (!fromSources) return new Worker(entry, {workerData})
  // Run from the sources, tsx's loader does not reach worker threads (Node 20): the thread registers it, then loads the entry.
  const tsx = import.meta.resolve('tsx/esm/api')
  return new Worker(
    `import(${JSON.stringify(tsx)}).then((api) => { api.register(); return import(${JSON.stringify(entry.href)}) })`,
    {eval: true, workerData},
  )
}
