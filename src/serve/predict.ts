// Batch prediction: records streamed from JSONL, CSV or Parquet through the serving engine, predictions streamed out as
// JSON lines, CSV or Parquet.
import {createWriteStream, existsSync, realpathSync, statSync} from 'node:fs'
import {readFile, rename, rm, stat} from 'node:fs/promises'
import {once} from 'node:events'
import {basename, dirname, join, resolve} from 'node:path'
import type {Writable} from 'node:stream'

import {ExtraColumns} from '../data/columns.js'
import {type PredictionRow, outputFormat, predictionsWriter} from '../data/predictions-out.js'
import {type RecordRow, readRecords} from '../data/records.js'
import {MlopsError, UsageError} from '../errors.js'
import type {InputRecord} from '../pipeline/types.js'
import {diskError, makeDirectory} from '../system/atomic.js'
import {InferenceEngine} from './engine.js'
import {type LoadServableOptions, loadServable} from './load.js'
import {Predictor} from './predictor.js'
import {rawPipeline} from './raw-pipeline.js'

export interface PredictOptions extends LoadServableOptions {
  /** A .jsonl, .csv or .parquet file, or "-" for JSONL on stdin. */
  input: string
  /** A .jsonl, .csv or .parquet file (by its extension), or "-" for JSON lines on stdout. */
  output: string
  /** Input columns copied into each output row (ids), by name. */
  keep?: string[]
  /** Stop at the first bad row instead of reporting it and going on. */
  failFast?: boolean
  /** Records per model run (default 256). */
  batchSize?: number
  /** Refuse rows with fields the model does not read, rather than leave those out. */
  strict?: boolean
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
  /** Columns left out of every row because the model does not read them (not with --strict). */
  ignoredColumns?: string[]
}

const MAX_ERRORS = 100
const STOP = new Error('fail-fast')

export async function predictFile(options: PredictOptions): Promise<PredictResult> {
  const servable = await loadServable(options)
  const {model, settings} = servable
  const engine = new InferenceEngine({model, batching: settings.batching, maxQueue: Number.POSITIVE_INFINITY})
  const predictor = new Predictor(engine, servable.pipeline ?? rawPipeline(model.signature))
  const extra = options.strict ? undefined : new ExtraColumns(predictor.pipeline.requestSchema)
  const batchSize = options.batchSize ?? 256
  const prepare = recordPreparer(options, servable.images ?? [])
  const out = await Output.open(options.output, options.input)
  const format = options.output === '-' ? 'jsonl' : outputFormat(options.output)
  const writer = predictionsWriter(format, options.keep ?? [], (chunk) => out.write(chunk))
  const result: PredictResult = {
    rows: 0,
    ok: 0,
    failed: 0,
    errors: [],
    output: options.output === '-' ? 'stdout' : resolve(options.output),
  }
  // Lines are written in input order: bad rows found by the reader are held until the batch before them is written.
  let pending: (PredictionRow & {failed: boolean})[] = []
  let batch: RecordRow[] = []

  const fail = (line: number, message: string, record?: RecordRow['record']) => {
    result.failed++
    if (result.errors.length < MAX_ERRORS) result.errors.push({line, message})
    pending.push({line, record, error: message, failed: true})
  }
  const flush = async () => {
    if (batch.length > 0) await predictBatch(predictor, batch, prepare, fail, (row) => pending.push(row), result)
    batch = []
    pending.sort((a, b) => a.line - b.line)
    if (options.failFast) pending = upToFirstFailure(pending, result)
    const rows = pending
    pending = []
    await writer.write(rows)
    options.onProgress?.(result.rows)
  }

  try {
    try {
      for await (const row of readRecords(options.input, {
        onBadRow: (line, message) => {
          result.rows++
          fail(line, message)
          // The reader calls this between the rows it yields: with --fail-fast, stop it here, not at the next good row.
          if (options.failFast) throw STOP
        },
      })) {
        if (options.failFast && result.failed > 0) break
        result.rows++
        batch.push(extra ? {...row, record: extra.strip(row.record)} : row)
        if (batch.length >= batchSize) await flush()
        if (options.failFast && result.failed > 0) break
      }
    } catch (error) {
      if (error !== STOP) throw error
    }
    await flush()
    await writer.end()
    await out.close()
  } finally {
    // Closed: the predictions replaced the file. Anything else (the input unreadable, a failed write): the old file stays.
    await out.discard()
    await model.session.release().catch(() => undefined)
  }
  if (options.failFast && result.failed > 0) result.stopped = true
  if (extra && extra.ignored.length > 0) result.ignoredColumns = extra.ignored
  // Bad rows are found by the reader at once and by the model a batch later: report them in input order.
  result.errors.sort((a, b) => a.line - b.line)
  return result
}

async function opened(path: string, named: string): Promise<Writable> {
  const stream = createWriteStream(path)
  await new Promise<void>((ok, fail) => {
    stream.once('open', () => ok())
    stream.once('error', (error) => fail(diskError(named, error)))
  })
  return stream
}

/**
 * --fail-fast stops at the first bad row, but a batch runs whole: what came after that row in it is neither written nor
 * counted, as if the run had stopped there.
 */
function upToFirstFailure<T extends {line: number; failed: boolean}>(pending: T[], result: PredictResult): T[] {
  const first = pending.findIndex((p) => p.failed)
  if (first === -1) return pending
  const after = pending.slice(first + 1)
  result.rows -= after.length
  result.failed -= after.filter((p) => p.failed).length
  result.ok -= after.filter((p) => !p.failed).length
  result.errors = result.errors.filter((e) => e.line <= pending[first].line)
  return pending.slice(0, first + 1)
}

/** Runs a batch; when one record spoils it, the records run one by one so only the bad ones fail. */
async function predictBatch(
  predictor: Predictor,
  rows: RecordRow[],
  prepare: (record: InputRecord) => Promise<InputRecord | string>,
  fail: (line: number, message: string, record: InputRecord) => void,
  write: (row: PredictionRow & {failed: false}) => void,
  result: PredictResult,
): Promise<void> {
  const prepared = await Promise.all(rows.map((row) => prepare(row.record)))
  const outcomes = await predictor.predictEach(prepared.filter((p): p is InputRecord => typeof p !== 'string'))
  let next = 0
  rows.forEach(({line, record}, i) => {
    const problem = prepared[i]
    const outcome = typeof problem === 'string' ? {problem} : outcomes[next++]
    if ('problem' in outcome) return fail(line, outcome.problem, record)
    result.ok++
    write({line, record, prediction: outcome.prediction, failed: false})
  })
}

/** Image files over this are refused: no camera picture is near it. */
const MAX_IMAGE_BYTES = 64 * 1024 * 1024

/**
 * A record as the model takes it: without the kept columns (ids are for the output; the pipeline would refuse them),
 * and with each image feature's file read, a path relative to the input file's folder (or a data: URL, left as it is).
 */
function recordPreparer(options: PredictOptions, images: readonly string[]) {
  const keep = options.keep ?? []
  const base = options.input === '-' ? process.cwd() : dirname(resolve(options.input))
  return async (record: InputRecord): Promise<InputRecord | string> => {
    const out = {...record}
    for (const name of keep) delete out[name]
    for (const name of images) {
      const value = out[name]
      if (typeof value !== 'string' || value.startsWith('data:')) continue
      try {
        const path = resolve(base, value)
        if ((await stat(path)).size > MAX_IMAGE_BYTES) return `${name}: the image file ${value} is over 64 MB`
        out[name] = await readFile(path)
      } catch (error) {
        return `${name}: cannot read the image file ${value} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); paths are relative to the input file's folder`
      }
    }
    return out
  }
}

/**
 * Where predictions go, a file or stdout: a write that fails (a full disk, a closed pipe) fails the run, naming it. A file
 * is written beside its final name and renamed over it once complete, so a run that fails or is killed never leaves a
 * half-written file in place of the previous one.
 */
class Output {
  private failure: unknown
  private closed = false

  private constructor(
    private readonly stream: Writable,
    private readonly path: string,
    private readonly temp?: string,
  ) {
    stream.on('error', (error) => (this.failure ??= error))
  }

  static async open(path: string, input: string): Promise<Output> {
    if (path === '-') return new Output(process.stdout, 'stdout')
    const target = resolve(path)
    const existing = statSync(target, {throwIfNoEntry: false})
    if (existing?.isDirectory())
      throw new UsageError('OUTPUT_IS_DIRECTORY', `--output ${path} is a directory`, {
        hint: `Name a file in it, e.g. --output ${join(path, 'predictions.jsonl')}.`,
      })
    // Through a symbolic link, the file it names is the one replaced.
    const final = existing ? realpathSync(target) : target
    if (existing && input !== '-' && existsSync(input) && realpathSync(input) === final) {
      throw new UsageError(
        'OUTPUT_IS_INPUT',
        `--output ${path} is the input file: the predictions would replace the records they come from`,
        {hint: 'Write them to another file, e.g. --output predictions.jsonl.'},
      )
    }
    // A device or a pipe (/dev/null, a FIFO) is written in place: there is no file to keep, and a rename would replace it.
    if (existing && !existing.isFile()) return new Output(await opened(target, target), target)
    await makeDirectory(dirname(final))
    const temp = join(dirname(final), `.${basename(final)}.${process.pid}.partial`)
    return new Output(await opened(temp, target), final, temp)
  }

  async write(text: string | Uint8Array): Promise<void> {
    this.check()
    if (this.stream.write(text)) return
    // once() rejects when the stream fails while we wait.
    await once(this.stream, 'drain').catch((error: unknown) => (this.failure ??= error))
    this.check()
  }

  /** Flushes and puts the file in place. */
  async close(): Promise<void> {
    if (this.stream !== process.stdout && this.failure === undefined) {
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
      throw new MlopsError(
        'OUTPUT_CLOSED',
        'stdout was closed by its reader (head, say) before every prediction was written',
        {hint: 'Write them all to a file with --output FILE.', cause: this.failure},
      )
    }
    throw diskError(this.path, this.failure)
  }
}
