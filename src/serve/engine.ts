// The inference core shared by serve and predict: a bounded queue in front of one session, with adaptive batching.
import {type LoadedModel, supportsBatching} from '../model/signature.js'
import {type OrtTensor, type TypedData, makeTensor} from '../model/tensor.js'
import type {BatchingSettings} from './config.js'
import {InferenceError, OverloadedError, TimeoutError, fromOrtError} from './errors.js'
import {type Faults, NO_FAULTS, perturb} from './faults.js'
import type {ServeMetrics} from './metrics.js'

export type Feeds = Record<string, OrtTensor>
export type Outputs = Record<string, OrtTensor>

export interface EngineOptions {
  model: LoadedModel
  batching: BatchingSettings
  /** Requests waiting for the model at most; past it `run` throws OverloadedError (503). */
  maxQueue: number
  metrics?: ServeMetrics
  faults?: Faults
}

interface Job {
  feeds: Feeds
  rows: number
  /** Whether the job may share a run: batching is on and every input has the same first dim. */
  mergeable: boolean
  enqueued: number
  settled: boolean
  /** Whether injected faults apply: to client requests, not to the warm-up. */
  faults: boolean
  timer?: NodeJS.Timeout
  resolve: (outputs: Outputs) => void
  reject: (error: Error) => void
}

/**
 * onnxruntime-node runs a session synchronously on the main thread (deferred by one setImmediate), so runs never overlap:
 * one run at a time, and whatever queued up meanwhile is merged into the next run when the batch dims allow it.
 */
export class InferenceEngine {
  readonly model: LoadedModel
  /** Whether concurrent requests may be merged: batching enabled and every input and output has a dynamic first dim. */
  readonly batching: boolean
  private readonly settings: BatchingSettings
  private readonly maxQueue: number
  private readonly metrics?: ServeMetrics
  private readonly faults: Faults
  private queue: Job[] = []
  private queuedRows = 0
  private active = 0
  /**
   * Runs started at once. Unbatched, several runs share one turn of the event loop (each run is deferred by a
   * setImmediate inside onnxruntime-node, then runs synchronously), so requests do not pay one loop turn each.
   * Batched, one run at a time lets the next batch fill while it runs.
   */
  private readonly slots: number
  private scheduled?: 'now' | NodeJS.Timeout

  constructor(options: EngineOptions) {
    this.model = options.model
    this.settings = options.batching
    this.batching =
      options.batching.enabled && options.batching.maxBatchSize > 1 && supportsBatching(options.model.signature)
    this.maxQueue = options.maxQueue
    this.slots = this.batching ? 1 : 16
    this.metrics = options.metrics
    this.faults = options.faults ?? NO_FAULTS
  }

  get queued(): number {
    return this.queue.length
  }

  get full(): boolean {
    return this.queue.length >= this.maxQueue
  }

  /** Runs the model on `feeds`; throws OverloadedError when the queue is full and TimeoutError past `timeoutMs`. */
  run(feeds: Feeds, timeoutMs?: number): Promise<Outputs> {
    return this.enqueue(feeds, timeoutMs, true)
  }

  /**
   * The warm-up's run: injected faults (MLOPS_FAULT_*) are for what clients see, so they do not keep a server from
   * becoming ready (with an error rate of 5%, one start in twenty failed its warm-up).
   */
  warmUpRun(feeds: Feeds): Promise<Outputs> {
    return this.enqueue(feeds, undefined, false)
  }

  private enqueue(feeds: Feeds, timeoutMs: number | undefined, faults: boolean): Promise<Outputs> {
    if (this.full) throw new OverloadedError(this.queue.length)
    return new Promise<Outputs>((resolve, reject) => {
      const rows = batchRows(feeds)
      const job: Job = {
        feeds,
        rows: rows ?? 1,
        mergeable: this.batching && rows !== undefined,
        enqueued: performance.now(),
        settled: false,
        faults,
        resolve,
        reject,
      }
      if (timeoutMs !== undefined) job.timer = setTimeout(expire, timeoutMs, this, job, timeoutMs)
      this.queue.push(job)
      this.queuedRows += job.rows
      this.metrics?.queueDepth.set(this.queue.length)
      this.schedule()
    })
  }

  /** Resolves when nothing is queued or running. */
  async idle(): Promise<void> {
    while (this.active > 0 || this.queue.length > 0) await new Promise((resolve) => setTimeout(resolve, 5))
  }

  private schedule(): void {
    if (this.active >= this.slots || this.queue.length === 0) return
    const wait = this.batching ? this.settings.maxWaitMs : 0
    const full = this.queuedRows >= this.settings.maxBatchSize
    if (this.scheduled !== undefined) {
      if (!full || this.scheduled === 'now') return
      clearTimeout(this.scheduled)
    }
    if (wait > 0 && !full) {
      this.scheduled = setTimeout(() => this.dispatch(), wait)
    } else {
      this.scheduled = 'now'
      // One turn of the event loop lets requests that arrived together join the same run.
      setImmediate(() => this.dispatch())
    }
  }

  private dispatch(): void {
    this.scheduled = undefined
    while (this.active < this.slots && this.queue.length > 0) {
      const batch = this.take()
      this.active++
      void this.execute(batch).finally(() => {
        this.active--
        this.schedule()
      })
    }
  }

  /** The oldest job and every later one that can share its run, up to the batch size; the rest keep their order. */
  private take(): Job[] {
    const head = this.queue[0]
    if (!head) return []
    if (!head.mergeable || this.queue.length === 1) {
      this.queue.shift()
      this.queuedRows -= head.rows
      this.metrics?.queueDepth.set(this.queue.length)
      return [head]
    }
    const batch: Job[] = [head]
    const rest: Job[] = []
    let rows = head.rows
    for (let i = 1; i < this.queue.length; i++) {
      const job = this.queue[i]
      if (job.mergeable && rows + job.rows <= this.settings.maxBatchSize && sameKind(head.feeds, job.feeds)) {
        batch.push(job)
        rows += job.rows
      } else rest.push(job)
    }
    this.queue = rest
    this.queuedRows -= rows
    this.metrics?.queueDepth.set(rest.length)
    return batch
  }

  /** Past its time limit: out of the queue if it is still there, and answered with a 504. */
  expire(job: Job, timeoutMs: number): void {
    this.remove(job)
    this.settle(job, new TimeoutError(timeoutMs))
  }

  private remove(job: Job): void {
    const index = this.queue.indexOf(job)
    if (index < 0) return
    this.queue.splice(index, 1)
    this.queuedRows -= job.rows
    this.metrics?.queueDepth.set(this.queue.length)
  }

  private async execute(batch: Job[]): Promise<void> {
    const started = performance.now()
    for (const job of batch) this.metrics?.queueTime.observe((started - job.enqueued) / 1000)
    const rows = batch.reduce((sum, job) => sum + job.rows, 0)
    try {
      const feeds =
        batch.length === 1
          ? batch[0].feeds
          : mergeFeeds(
              batch.map((job) => job.feeds),
              rows,
            )
      const outputs = await this.session(feeds)
      this.metrics?.batchSize.observe(rows)
      this.metrics?.inferenceTime.observe((performance.now() - started) / 1000)
      if (batch.length === 1) return this.deliver(batch[0], outputs)
      const parts = splitOutputs(
        outputs,
        batch.map((job) => job.rows),
      )
      if (parts) return batch.forEach((job, i) => this.deliver(job, parts[i]))
      // The model did not keep rows on the first dim: its dynamic dim is not a batch dim, so run each job alone.
      await this.runApart(batch)
    } catch (error) {
      if (batch.length > 1) await this.runApart(batch)
      else this.settle(batch[0], fromOrtError(error))
    }
  }

  /** Runs jobs one by one, so a request whose values the model refuses fails alone. */
  private async runApart(batch: Job[]): Promise<void> {
    for (const job of batch) {
      try {
        const outputs = await this.session(job.feeds)
        this.metrics?.batchSize.observe(job.rows)
        this.deliver(job, outputs)
      } catch (error) {
        this.settle(job, fromOrtError(error))
      }
    }
  }

  private session(feeds: Feeds): Promise<Outputs> {
    return this.model.session.run(feeds, this.model.fetches)
  }

  private deliver(job: Job, outputs: Outputs): void {
    const faults = job.faults ? this.faults : NO_FAULTS
    if (faults.errorRate > 0 && Math.random() < faults.errorRate)
      return this.settle(job, new InferenceError('injected fault (MLOPS_FAULT_ERROR_RATE)', false))
    const result = faults.wrong ? perturb(outputs) : outputs
    if (faults.latencyMs > 0) setTimeout(() => this.settle(job, result), faults.latencyMs)
    else this.settle(job, result)
  }

  private settle(job: Job, result: Outputs | Error): void {
    if (job.settled) return
    job.settled = true
    if (job.timer) clearTimeout(job.timer)
    if (result instanceof Error) job.reject(result)
    else job.resolve(result)
  }
}

// A plain function with arguments rather than a closure per request.
function expire(engine: InferenceEngine, job: Job, timeoutMs: number): void {
  engine.expire(job, timeoutMs)
}

/** The shared first dim of every input, or undefined when the inputs disagree or one is a scalar. */
function batchRows(feeds: Feeds): number | undefined {
  let rows: number | undefined
  for (const tensor of Object.values(feeds)) {
    if (tensor.dims.length === 0) return undefined
    if (rows === undefined) rows = tensor.dims[0]
    else if (tensor.dims[0] !== rows) return undefined
  }
  return rows
}

/** Same inputs, dtypes and dims past the first: the two can be stacked along the first dim into one run. */
function sameKind(a: Feeds, b: Feeds): boolean {
  let count = 0
  for (const name in a) {
    const x = a[name]
    const y = b[name]
    if (y === undefined || x.type !== y.type || x.dims.length !== y.dims.length) return false
    for (let d = 1; d < x.dims.length; d++) if (x.dims[d] !== y.dims[d]) return false
    count++
  }
  for (const _ in b) count--
  return count === 0
}

export function mergeFeeds(parts: Feeds[], rows: number): Feeds {
  const merged: Feeds = {}
  for (const name of Object.keys(parts[0]))
    merged[name] = concatRows(
      parts.map((p) => p[name]),
      rows,
    )
  return merged
}

function concatRows(tensors: OrtTensor[], rows: number): OrtTensor {
  const first = tensors[0]
  const dims = [rows, ...first.dims.slice(1)]
  if (first.type === 'string')
    return makeTensor(
      'string',
      tensors.flatMap((t) => t.data as string[]),
      dims,
    )
  const total = tensors.reduce((sum, t) => sum + (t.data as TypedArray).length, 0)
  const Ctor = (first.data as TypedArray).constructor as new (length: number) => TypedArray
  const out = new Ctor(total)
  let offset = 0
  for (const tensor of tensors) {
    out.set(tensor.data as never, offset)
    offset += (tensor.data as TypedArray).length
  }
  return makeTensor(first.type as never, out as TypedData, dims)
}

type TypedArray = Exclude<TypedData, string[]>

/** Splits each output along its first dim by the rows of each job; undefined when an output's first dim is not the total. */
export function splitOutputs(outputs: Outputs, rows: number[]): Outputs[] | undefined {
  const total = rows.reduce((a, b) => a + b, 0)
  const parts: Outputs[] = rows.map(() => ({}))
  for (const [name, tensor] of Object.entries(outputs)) {
    if (tensor.dims.length === 0 || tensor.dims[0] !== total) return undefined
    const rowSize = tensor.dims.slice(1).reduce((a, b) => a * b, 1)
    let offset = 0
    rows.forEach((n, i) => {
      const start = offset * rowSize
      const end = (offset + n) * rowSize
      const data =
        tensor.type === 'string'
          ? (tensor.data as string[]).slice(start, end)
          : (tensor.data as TypedArray).subarray(start, end)
      parts[i][name] = makeTensor(tensor.type as never, data, [n, ...tensor.dims.slice(1)])
      offset += n
    })
  }
  return parts
}
