// Batch prediction: records streamed from JSONL or CSV through the serving engine, predictions streamed out as JSONL.
import {createWriteStream, existsSync, realpathSync, statSync} from 'node:fs'
import {rename, rm} from 'node:fs/promises'
import {once} from 'node:events'
import {basename, dirname, join, resolve} from 'node:path'
import type {Writable} from 'node:stream'

import {type RecordRow, readRecords} from '../data/records.js'
import {MlopsError, UsageError} from '../errors.js'
import {bigintReplacer} from '../model/tensor.js'
import {diskError, makeDirectory} from '../system/atomic.js'
import type {InputRecord} from '../pipeline/types.js'
import {InferenceEngine} from './engine.js'
import {type LoadServableOptions, loadServable} from './load.js'
import {Predictor} from './predictor.js'
import {rawPipeline} from './raw-pipeline.js'

export interface PredictOptions extends LoadServableOptions {
  /** A .jsonl or .csv file, or "-" for JSONL on stdin. */
  input: string
  /** A .jsonl file, or "-" for stdout. */
  output: string
  /** Stop at the first bad row instead of reporting it and going on. */
  failFast?: boolean
  /** Records per model run (default 256). */
  batchSize?: number
  onProgress?: (rows: number) => void
}

export interface RowError {
  line: number
  message: string
}

export interface PredictResult {
  rows: number
  ok: number
  failed: number
  /** The first 100 bad rows. */
  errors: RowError[]
  output: string
  /** True when --fail-fast stopped the run at a bad row. */
  stopped?: boolean
}

const MAX_ERRORS = 100

export async function predictFile(options: PredictOptions): Promise<PredictResult> {
  const servable = await loadServable(options)
  const {model, settings} = servable
  const engine = new InferenceEngine({model, batching: settings.batching, maxQueue: Number.POSITIVE_INFINITY})
  const predictor = new Predictor(engine, servable.pipeline ?? rawPipeline(model.signature))
  const batchSize = options.batchSize ?? 256
  const out = await Output.open(options.output, options.input)
  const result: PredictResult = {rows: 0, ok: 0, failed: 0, errors: [], output: options.output === '-' ? 'stdout' : resolve(options.output)}
  // Lines are written in input order: bad rows found by the reader are held until the batch before them is written.
  let pending: {line: number; text: string}[] = []
  let batch: RecordRow[] = []

  const fail = (line: number, message: string) => {
    result.failed++
    if (result.errors.length < MAX_ERRORS) result.errors.push({line, message})
    pending.push({line, text: JSON.stringify({line, error: message})})
  }
  const flush = async () => {
    if (batch.length > 0) await predictBatch(predictor, batch, fail, (line, text) => pending.push({line, text}), result)
    batch = []
    pending.sort((a, b) => a.line - b.line)
    const text = pending.map((p) => p.text + '\n').join('')
    pending = []
    if (text) await out.write(text)
    options.onProgress?.(result.rows)
  }

  try {
    for await (const row of readRecords(options.input, {onBadRow: (line, message) => {
      result.rows++
      fail(line, message)
    }})) {
      if (options.failFast && result.failed > 0) break
      result.rows++
      batch.push(row)
      if (batch.length >= batchSize) await flush()
      if (options.failFast && result.failed > 0) break
    }
    await flush()
    await out.close()
  } finally {
    // Closed: the predictions replaced the file. Anything else (the input unreadable, a failed write): the old file stays.
    await out.discard()
    await model.session.release().catch(() => undefined)
  }
  if (options.failFast && result.failed > 0) result.stopped = true
  return result
}

/** Runs a batch; when one record spoils it, the records run one by one so only the bad ones fail. */
async function predictBatch(predictor: Predictor, rows: RecordRow[], fail: (line: number, message: string) => void, write: (line: number, text: string) => void, result: PredictResult): Promise<void> {
  const outcomes = await predictor.predictEach(rows.map((row) => row.record as InputRecord))
  rows.forEach((row, i) => {
    const outcome = outcomes[i]
    if ('problem' in outcome) return fail(row.line, outcome.problem)
    result.ok++
    write(row.line, JSON.stringify({line: row.line, prediction: outcome.prediction}, bigintReplacer))
  })
}


/**
 * Where predictions go, a file or stdout: a write that fails (a full disk, a closed pipe) fails the run, naming it. A file
 * is written beside its final name and renamed over it once complete, so a run that fails or is killed never leaves a
 * half-written file in place of the previous one.
 */
class Output {
  private failure: unknown
  private closed = false

  private constructor(private readonly stream: Writable, private readonly path: string, private readonly temp?: string) {
    stream.on('error', (error) => (this.failure ??= error))
  }

  static async open(path: string, input: string): Promise<Output> {
    if (path === '-') return new Output(process.stdout, 'stdout')
    const target = resolve(path)
    if (existsSync(target) && statSync(target).isDirectory()) throw new UsageError('OUTPUT_IS_DIRECTORY', `--output ${path} is a directory`, {hint: `Name a file in it, e.g. --output ${join(path, 'predictions.jsonl')}.`})
    if (input !== '-' && existsSync(input) && existsSync(target) && realpathSync(input) === realpathSync(target)) {
      throw new UsageError('OUTPUT_IS_INPUT', `--output ${path} is the input file: the predictions would replace the records they come from`, {hint: 'Write them to another file, e.g. --output predictions.jsonl.'})
    }
    await makeDirectory(dirname(target))
    const temp = join(dirname(target), `.${basename(target)}.${process.pid}.partial`)
    const stream = createWriteStream(temp)
    await new Promise<void>((ok, fail) => {
      stream.once('open', () => ok())
      stream.once('error', (error) => fail(diskError(target, error)))
    })
    return new Output(stream, target, temp)
  }

  async write(text: string): Promise<void> {
    this.check()
    if (this.stream.write(text)) return
    // once() rejects when the stream fails while we wait.
    await once(this.stream, 'drain').catch((error: unknown) => (this.failure ??= error))
    this.check()
  }

  /** Flushes and puts the file in place. */
  async close(): Promise<void> {
    if (this.temp && this.failure === undefined) {
      await new Promise<void>((ok) =>
        this.stream.end((error?: Error | null) => {
          if (error) this.failure ??= error
          ok()
        }),
      )
    }
    this.check()
    if (this.temp) await rename(this.temp, this.path).catch((error: unknown) => (this.failure ??= error))
    this.check()
    this.closed = true
  }

  /** After a failure: the partial file goes, whatever was at the path stays. */
  async discard(): Promise<void> {
    if (this.closed || !this.temp) return
    this.stream.destroy()
    await rm(this.temp, {force: true})
  }

  private check(): void {
    if (this.failure === undefined) return
    if (this.path === 'stdout' && (this.failure as NodeJS.ErrnoException).code === 'EPIPE') {
      throw new MlopsError('OUTPUT_CLOSED', 'stdout was closed by its reader (head, say) before every prediction was written', {hint: 'Write them all to a file with --output FILE.', cause: this.failure})
    }
    throw diskError(this.path, this.failure)
  }
}
