// Parquet in and out for batch prediction, with hyparquet (pure JavaScript): records read one row group at a time, and
// predictions written one row group at a time, so memory holds a row group, never the file.
import {open} from 'node:fs/promises'

import {type AsyncBuffer, type FileMetaData, parquetMetadataAsync, parquetReadObjects} from 'hyparquet'
import {compressors} from 'hyparquet-compressors'
import {type BasicType, ByteWriter, ParquetWriter, schemaFromColumnData} from 'hyparquet-writer'

import {ExitCode, MlopsError} from '../errors.js'
import type {InputRecord} from '../pipeline/types.js'

/** A row as read: its 1-based row number in the file, and the record. */
export interface ParquetRow {
  line: number
  record: InputRecord
}

/** Rows per row group written; a reader holds one group at a time, so this bounds the memory of both sides. */
export const ROW_GROUP_ROWS = 65_536

/** A file read by range: hyparquet asks for the footer, then each row group's column chunks. */
async function fileBuffer(path: string): Promise<{buffer: AsyncBuffer; close: () => Promise<void>}> {
  const handle = await open(path, 'r')
  const {size} = await handle.stat()
  const buffer: AsyncBuffer = {
    byteLength: size,
    async slice(start: number, end = size) {
      const bytes = Buffer.alloc(Math.max(0, end - start))
      await handle.read(bytes, 0, bytes.length, start)
      return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length)
    },
  }
  return {buffer, close: () => handle.close()}
}

function notParquet(path: string, error: unknown): MlopsError {
  return new MlopsError(
    'RECORDS_INVALID',
    `${path} is not a Parquet file hyparquet can read: ${(error as Error).message}`,
    {
      exitCode: ExitCode.usage,
      hint: 'Check that the file is complete Parquet (it ends in "PAR1"), or pass a .csv or .jsonl file.',
    },
  )
}

/** Values as the pipeline takes JSON: 64-bit integers as numbers (strings past 2^53), dates as ISO text, bytes as base64. */
function plainValue(value: unknown): unknown {
  if (typeof value === 'bigint')
    return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER)
      ? Number(value)
      : value.toString()
  if (value instanceof Date) return value.toISOString()
  if (value instanceof Uint8Array) return Buffer.from(value).toString('base64')
  if (Array.isArray(value)) return value.map(plainValue)
  return value
}

export async function* parquetRows(path: string): AsyncGenerator<ParquetRow> {
  const {buffer, close} = await fileBuffer(path)
  try {
    let metadata: FileMetaData
    try {
      metadata = await parquetMetadataAsync(buffer)
    } catch (error) {
      throw notParquet(path, error)
    }
    let start = 0
    for (const group of metadata.row_groups) {
      const rows = Number(group.num_rows)
      let objects: Record<string, unknown>[]
      try {
        objects = await parquetReadObjects({file: buffer, metadata, rowStart: start, rowEnd: start + rows, compressors})
      } catch (error) {
        throw notParquet(path, error)
      }
      for (let i = 0; i < objects.length; i++) {
        const record: InputRecord = {}
        for (const [key, value] of Object.entries(objects[i])) record[key] = plainValue(value)
        yield {line: start + i + 1, record}
      }
      start += rows
    }
  } finally {
    await close()
  }
}

/** A column's Parquet type from its first value that is not null (all null: a string column). */
function columnType(values: readonly unknown[]): BasicType {
  const sample = values.find((v) => v !== null && v !== undefined)
  if (typeof sample === 'number') return 'DOUBLE'
  if (typeof sample === 'bigint') return 'INT64'
  if (typeof sample === 'boolean') return 'BOOLEAN'
  return 'STRING'
}

/**
 * Writes rows of flat cells as Parquet, a row group at a time, into `sink` (bytes as they are made). Column types are
 * taken from the first row group; a later value of another type is written as text in a string column, or null.
 */
export class ParquetTableWriter {
  private writer?: ParquetWriter
  private types: BasicType[] = []
  private readonly bytes = new ByteWriter()
  private rows: unknown[][] = []

  constructor(
    private readonly columns: readonly string[],
    private readonly sink: (bytes: Uint8Array) => Promise<void>,
  ) {}

  async add(row: readonly unknown[]): Promise<void> {
    this.rows.push([...row])
    if (this.rows.length >= ROW_GROUP_ROWS) await this.flush()
  }

  async finish(): Promise<void> {
    if (this.rows.length > 0 || !this.writer) await this.flush()
    await this.writer!.finish()
    await this.drain()
  }

  private async flush(): Promise<void> {
    const columnData = this.columns.map((name, c) => ({name, data: this.rows.map((r) => r[c] ?? null)}))
    if (!this.writer) {
      this.types = columnData.map((column) => columnType(column.data))
      const schema = schemaFromColumnData({
        columnData: columnData.map((column, c) => ({...column, type: this.types[c], nullable: true})),
      })
      this.writer = new ParquetWriter({writer: this.bytes, schema, createdBy: 'mlops (hyparquet-writer)'})
    }
    const typed = columnData.map((column, c) => ({...column, data: column.data.map((v) => fit(v, this.types[c]))}))
    await this.writer.write({columnData: typed, rowGroupSize: ROW_GROUP_ROWS})
    this.rows = []
    await this.drain()
  }

  /** Hands what the writer has made to the sink and reuses its buffer (it counts offsets apart from the buffer). */
  private async drain(): Promise<void> {
    if (this.bytes.index === 0) return
    const chunk = new Uint8Array(this.bytes.buffer, 0, this.bytes.index).slice()
    this.bytes.index = 0
    await this.sink(chunk)
  }
}

function fit(value: unknown, type: BasicType): unknown {
  if (value === null || value === undefined) return null
  if (type === 'DOUBLE') return typeof value === 'number' ? value : null
  if (type === 'INT64') return typeof value === 'bigint' ? value : null
  if (type === 'BOOLEAN') return typeof value === 'boolean' ? value : null
  return typeof value === 'string' ? value : JSON.stringify(value)
}
