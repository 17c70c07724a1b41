// Predictions as JSON lines, CSV or Parquet: one row per input row, with its row number, the input columns kept
// (--keep) and the prediction (flattened into columns for the tables) or the error.
import {extname} from 'node:path'

import {stringify} from 'csv-stringify/sync'

import {MlopsError, UsageError} from '../errors.js'
import {bigintReplacer} from '../model/tensor.js'
import type {InputRecord, Prediction} from '../pipeline/types.js'
import {ParquetTableWriter} from './parquet.js'

export type OutputFormat = 'jsonl' | 'csv' | 'parquet'

export interface PredictionRow {
  line: number
  record?: InputRecord
  prediction?: Prediction
  error?: string
}

export interface PredictionsWriter {
  write(rows: readonly PredictionRow[]): Promise<void>
  end(): Promise<void>
}

type Sink = (chunk: string | Uint8Array) => Promise<void>

const RESERVED = new Set(['line', 'prediction', 'error'])
/** Rows held back, when none so far has a prediction, before the table's columns are fixed without prediction columns. */
const MAX_HELD = 4096

/** From the extension: .csv, .parquet/.pq, else JSON lines (stdout too). */
export function outputFormat(path: string): OutputFormat {
  const ext = extname(path).toLowerCase()
  if (ext === '.parquet' || ext === '.pq') return 'parquet'
  return ext === '.csv' ? 'csv' : 'jsonl'
}

export function checkKeep(keep: readonly string[]): void {
  const clash = keep.find((name) => RESERVED.has(name))
  if (clash)
    throw new UsageError('KEEP_RESERVED', `--keep ${clash}: "${clash}" is a column of the predictions themselves`, {
      hint: 'Keep input columns other than line, prediction and error.',
    })
}

export function predictionsWriter(format: OutputFormat, keep: readonly string[], sink: Sink): PredictionsWriter {
  checkKeep(keep)
  return format === 'jsonl' ? jsonLines(keep, sink) : new TableWriter(format, keep, sink)
}

function kept(keep: readonly string[], record: InputRecord | undefined): Record<string, unknown> {
  const values: Record<string, unknown> = {}
  for (const name of keep) values[name] = record?.[name] ?? null
  return values
}

/** A kept column the input does not have is a mistake to say at once, not a column of nulls. */
function checkKept(keep: readonly string[], rows: readonly PredictionRow[]): void {
  const record = rows.find((r) => r.record)?.record
  const missing = record && keep.find((name) => !(name in record))
  if (missing)
    throw new UsageError('KEEP_NOT_IN_INPUT', `--keep ${missing}: the input has no column "${missing}"`, {
      hint: `Its columns are ${Object.keys(record).join(', ')}.`,
    })
}

function jsonLines(keep: readonly string[], sink: Sink): PredictionsWriter {
  let checked = false
  return {
    async write(rows) {
      if (!checked && rows.some((r) => r.record)) {
        checkKept(keep, rows)
        checked = true
      }
      const text = rows
        .map(({line, record, prediction, error}) => {
          const outcome = error === undefined ? {prediction} : {error}
          return JSON.stringify({line, ...kept(keep, record), ...outcome}, bigintReplacer) + '\n'
        })
        .join('')
      if (text) await sink(text)
    },
    async end() {},
  }
}

/** Nested objects become dotted columns (probabilities.yes); arrays, one cell of JSON. */
function flatten(prediction: Prediction, prefix = '', into: Record<string, unknown> = {}): Record<string, unknown> {
  for (const [key, value] of Object.entries(prediction)) {
    const name = prefix + key
    if (value !== null && typeof value === 'object' && !Array.isArray(value))
      flatten(value as Prediction, `${name}.`, into)
    else into[name] = Array.isArray(value) ? JSON.stringify(value, bigintReplacer) : value
  }
  return into
}

/** CSV or Parquet: the columns are fixed by the first rows with a prediction (rows before them are held till then). */
class TableWriter implements PredictionsWriter {
  private columns?: string[]
  private known = new Set<string>()
  private held: PredictionRow[] = []
  private parquet?: ParquetTableWriter

  constructor(
    private readonly format: 'csv' | 'parquet',
    private readonly keep: readonly string[],
    private readonly sink: Sink,
  ) {}

  async write(rows: readonly PredictionRow[]): Promise<void> {
    if (!this.columns) {
      this.held.push(...rows)
      if (!this.held.some((r) => r.prediction) && this.held.length < MAX_HELD) return
      await this.start()
      rows = this.held
      this.held = []
    }
    const cells = rows.map((row) => this.cells(row))
    if (this.parquet) for (const row of cells) await this.parquet.add(row)
    else if (cells.length > 0) await this.sink(csv(cells))
  }

  async end(): Promise<void> {
    if (!this.columns) {
      await this.start()
      await this.write(this.held.splice(0))
    }
    await this.parquet?.finish()
  }

  private async start(): Promise<void> {
    checkKept(this.keep, this.held)
    const names = new Set<string>()
    for (const row of this.held)
      if (row.prediction) for (const name of Object.keys(flatten(row.prediction))) names.add(name)
    const clash = this.keep.find((name) => names.has(name))
    if (clash)
      throw new UsageError('KEEP_CLASHES', `--keep ${clash}: the predictions have a field "${clash}" too`, {
        hint: 'Write JSON lines (--output FILE.jsonl), where the prediction is an object of its own.',
      })
    this.columns = ['line', ...this.keep, ...names, 'error']
    this.known = new Set(this.columns)
    if (this.format === 'parquet') this.parquet = new ParquetTableWriter(this.columns, this.sink)
    else await this.sink(csv([this.columns]))
  }

  private cells({line, record, prediction, error}: PredictionRow): unknown[] {
    const values: Record<string, unknown> = {...kept(this.keep, record), ...(prediction ? flatten(prediction) : {})}
    for (const name of Object.keys(values))
      if (!this.known.has(name))
        throw new MlopsError(
          'OUTPUT_COLUMNS',
          `row ${line}: the prediction has a field "${name}" the first rows had not`,
          {
            hint: 'Write JSON lines (--output FILE.jsonl), which take predictions of any shape.',
          },
        )
    return this.columns!.map((name) => {
      if (name === 'line') return this.parquet ? BigInt(line) : line
      if (name === 'error') return error ?? null
      return values[name] ?? null
    })
  }
}

function csv(rows: unknown[][]): string {
  return stringify(rows, {
    cast: {
      boolean: (value) => String(value),
      object: (value) => JSON.stringify(value, bigintReplacer),
    },
  })
}
