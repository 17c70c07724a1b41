// Streams records from JSONL, CSV or Parquet files (JSONL and CSV from stdin too) as {line, record}, with bounded memory: for predict and data profiling.
import {createReadStream} from 'node:fs'
import {extname} from 'node:path'
import type {Readable} from 'node:stream'
import {createInterface} from 'node:readline'

import {parse as parseCsv} from 'csv-parse'

import {ExitCode, MlopsError, UsageError} from '../errors.js'
import type {InputRecord} from '../pipeline/types.js'
import {parseJson} from './json.js'
import {parquetRows} from './parquet.js'

export type RecordFormat = 'jsonl' | 'csv' | 'parquet'

export interface RecordRow {
  /** 1-based line of the file where the record ends (CSV rows may span lines inside quotes); a Parquet file's row number. */
  line: number
  record: InputRecord
}

export interface ReadRecordsOptions {
  /** Default: from the file extension (.csv, .tsv → csv; .parquet, .pq → parquet), else jsonl. */
  format?: RecordFormat
  /**
   * Called for a row that is not a record (bad JSON, not an object, wrong CSV column count); the row is skipped.
   * Without it, the first bad row throws RECORDS_INVALID.
   */
  onBadRow?: (line: number, message: string) => void
}

export function recordFormat(path: string): RecordFormat {
  const ext = extname(path).toLowerCase()
  if (ext === '.parquet' || ext === '.pq') return 'parquet'
  return ext === '.csv' || ext === '.tsv' ? 'csv' : 'jsonl'
}

/** Records of a file, or of stdin when `source` is "-" (or a stream). */
export async function* readRecords(
  source: string | Readable,
  options: ReadRecordsOptions = {},
): AsyncGenerator<RecordRow> {
  const name = typeof source === 'string' ? (source === '-' ? 'stdin' : source) : 'the input stream'
  const format = options.format ?? (typeof source === 'string' && source !== '-' ? recordFormat(source) : 'jsonl')
  if (format === 'parquet') {
    // Parquet is read by range (the footer first), which a stream cannot do.
    if (typeof source !== 'string' || source === '-')
      throw new UsageError('INPUT_NOT_SEEKABLE', 'Parquet records cannot be read from a stream', {
        hint: 'Pass the path of the .parquet file, or send JSON lines or CSV on stdin.',
      })
    yield* inputErrors(name, () => parquetRows(source))
    return
  }
  const stream = typeof source === 'string' ? (source === '-' ? process.stdin : createReadStream(source)) : source
  const bad = (line: number, message: string) => {
    if (!options.onBadRow)
      throw new MlopsError('RECORDS_INVALID', `${name}:${line}: ${message}`, {
        exitCode: ExitCode.usage,
        hint:
          format === 'csv'
            ? 'Each CSV row needs one cell per header column.'
            : 'Each line must be one JSON object, e.g. {"age": 42, "city": "Lyon"}.',
      })
    options.onBadRow(line, message)
  }
  yield* inputErrors(name, () => (format === 'csv' ? csvRows(stream, bad, tsvOf(source)) : jsonlRows(stream, bad)))
}

/** The rows of a reader, with a missing, unreadable or directory input said in the user's words. */
async function* inputErrors(name: string, rows: () => AsyncGenerator<RecordRow>): AsyncGenerator<RecordRow> {
  try {
    yield* rows()
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOENT')
      throw new UsageError('INPUT_NOT_FOUND', `The input file ${name} does not exist`, {
        hint: 'Check the path, or pass "-" to read records from stdin.',
      })
    if (code === 'EISDIR')
      throw new UsageError('INPUT_IS_DIRECTORY', `The input ${name} is a directory, not a file of records`, {
        hint: 'Pass a .csv, .tsv, .jsonl or .parquet file in it, or "-" to read records from stdin.',
      })
    if (code === 'EACCES')
      throw new UsageError('INPUT_UNREADABLE', `The input file ${name} cannot be read: permission denied`, {
        hint: 'Check its permissions.',
      })
    throw error
  }
}

function tsvOf(source: string | Readable): boolean {
  return typeof source === 'string' && extname(source).toLowerCase() === '.tsv'
}

async function* jsonlRows(stream: Readable, bad: (line: number, message: string) => void): AsyncGenerator<RecordRow> {
  let line = 0
  for await (const text of createInterface({input: stream, crlfDelay: Infinity})) {
    line++
    if (!text.trim()) continue
    let value: unknown
    try {
      value = parseJson(text)
    } catch (error) {
      bad(line, (error as Error).message)
      continue
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      bad(
        line,
        `expected a JSON object, got ${Array.isArray(value) ? 'an array' : value === null ? 'null' : typeof value}`,
      )
      continue
    }
    yield {line, record: value as InputRecord}
  }
}

/** CSV cells stay strings (the pipeline coerces them to its feature types); an empty cell is null, i.e. missing. */
async function* csvRows(
  stream: Readable,
  bad: (line: number, message: string) => void,
  tsv: boolean,
): AsyncGenerator<RecordRow> {
  const parser = stream.pipe(
    parseCsv({
      columns: true,
      bom: true,
      delimiter: tsv ? '\t' : ',',
      info: true,
      relax_column_count: true,
      skip_empty_lines: true,
      cast: (value, context) => (value === '' && !context.quoting ? null : value),
    }),
  )
  stream.on('error', (error) => parser.destroy(error))
  // info.invalid_field_length counts bad rows so far: a row is bad when the count grows.
  let invalidSoFar = 0
  try {
    for await (const row of parser as AsyncIterable<{
      record: Record<string, string | null>
      info: {lines: number; invalid_field_length: number; columns: unknown[]}
    }>) {
      const {record, info} = row
      if (info.invalid_field_length > invalidSoFar) {
        invalidSoFar = info.invalid_field_length
        bad(info.lines, `expected ${info.columns.length} cells (one per header column), got a different count`)
        continue
      }
      yield {line: info.lines, record}
    }
  } catch (error) {
    const csvError = error as {code?: string; lines?: number; message: string}
    if (csvError.code?.startsWith('CSV_'))
      throw new MlopsError('RECORDS_INVALID', `CSV line ${csvError.lines ?? '?'}: ${csvError.message}`, {
        exitCode: ExitCode.usage,
        hint: 'Fix the CSV syntax (quotes must be closed and doubled inside a quoted cell).',
      })
    throw error
  }
}
