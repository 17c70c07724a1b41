// The request log for audit and drift: JSON lines written off the request path, rotated by size, dropping (and counting) when the disk lags.
import {createHash} from 'node:crypto'
import {open, rename, rm, stat} from 'node:fs/promises'
import type {FileHandle} from 'node:fs/promises'
import {dirname} from 'node:path'

import {bigintReplacer} from '../model/tensor.js'
import {makeDirectory, tornLineEnd} from '../system/atomic.js'
import {Serial} from '../system/serial.js'
import type {LoggedInputs, RequestLogSettings} from './config.js'

export interface RequestLogEntry {
  id: string
  time: string
  model: {name: string; version: string; digest?: string}
  route: string
  status: number
  latency_ms: number
  fallback?: boolean
  /** Who called: an API key's name or a token's subject, never the secret. */
  caller?: string
  /** The inputs (records or tensors): serialized only when the entry is written. */
  inputs?: unknown
  /** The answer as JSON text, already serialized for the response. */
  outputsJson?: string
}

/** What goes in the log in place of the inputs, under the configured policy. */
export function loggedInputs(
  policy: LoggedInputs,
  sampleRate: number,
  inputs: () => unknown,
  body: string | Buffer,
): {inputs?: unknown; inputs_sha256?: string} {
  if (policy === 'all' || (policy === 'sampled' && Math.random() < sampleRate)) return {inputs: inputs()}
  if (policy === 'hashed') return {inputs_sha256: createHash('sha256').update(body).digest('hex')}
  return {}
}

function serialize(entry: RequestLogEntry & {inputs_sha256?: string}): string {
  const {outputsJson, ...rest} = entry
  const head = JSON.stringify(rest, bigintReplacer)
  return outputsJson === undefined ? `${head}\n` : `${head.slice(0, -1)},"outputs":${outputsJson}}\n`
}

export class RequestLog {
  private buffer: (RequestLogEntry & {inputs_sha256?: string})[] = []
  private readonly file?: LogFile
  private readonly sink: (text: string) => Promise<void>
  private writing?: Promise<void>
  private closed = false
  private failing = false
  /** Entries dropped because the buffer was full. */
  dropped = 0
  written = 0

  /** `sink` takes the serialized lines in place of the file (a worker of several hands them to its primary). */
  constructor(
    readonly settings: RequestLogSettings,
    private readonly onDrop: () => void = () => undefined,
    sink?: (text: string) => Promise<void>,
  ) {
    if (!sink) this.file = new LogFile(settings)
    this.sink = sink ?? ((text) => this.file!.write(text))
  }

  /** Never waits and never throws: the entry is buffered, or dropped when the buffer is full. */
  add(entry: RequestLogEntry & {inputs_sha256?: string}): void {
    if (this.closed || this.buffer.length >= this.settings.buffer) {
      this.dropped++
      this.onDrop()
      return
    }
    this.buffer.push(entry)
    this.writing ??= this.drain()
  }

  /** Writes what is buffered and closes the file. */
  async close(): Promise<void> {
    this.closed = true
    while (this.writing) await this.writing
    await this.file?.close()
  }

  private async drain(): Promise<void> {
    // Let the response go out first: serialization happens a turn later, off the request path.
    await new Promise((resolve) => setImmediate(resolve))
    try {
      while (this.buffer.length > 0) {
        const entries = this.buffer
        this.buffer = []
        const text = entries.map(serialize).join('')
        await this.sink(text)
        this.written += entries.length
      }
      this.failing = false
    } catch (error) {
      // Once per spell of failures, not once per request.
      if (!this.failing)
        process.stderr.write(
          `mlops serve: request log ${this.settings.path} cannot be written (${(error as Error).message}); entries are dropped until it can\n`,
        )
      this.failing = true
      this.dropped += this.buffer.length
      this.buffer = []
    } finally {
      this.writing = undefined
    }
  }
}

/**
 * The file of a request log: whole lines appended, rotated by size. Its only writer: with several serving workers the
 * primary holds it and writes what each sends, so lines never interleave and rotation happens once.
 */
export class LogFile {
  private file?: FileHandle
  private size = 0
  private readonly serial = new Serial()

  constructor(readonly settings: Pick<RequestLogSettings, 'path' | 'maxBytes' | 'maxFiles'>) {}

  /** Appends `text` (whole lines) after any write still under way. */
  write(text: string): Promise<void> {
    return this.serial.run(() => this.append(text))
  }

  async close(): Promise<void> {
    await this.serial.idle()
    await this.file?.close()
    this.file = undefined
  }

  private async append(text: string): Promise<void> {
    const bytes = Buffer.byteLength(text)
    if (this.file && this.size > 0 && this.size + bytes > this.settings.maxBytes) await this.rotate()
    if (!this.file) {
      await makeDirectory(dirname(this.settings.path))
      // Inputs of real requests: the user's alone.
      this.file = await open(this.settings.path, 'a+', 0o600)
      this.size = (await stat(this.settings.path)).size
      if (this.size > 0 && this.size + bytes > this.settings.maxBytes)
        return this.rotate().then(() => this.append(text))
      text = (await tornLineEnd(this.file, this.size)) + text
    }
    await this.file.write(text)
    this.size += Buffer.byteLength(text)
  }

  /** requests.jsonl → requests.jsonl.1 → … → .N (the oldest is removed). */
  private async rotate(): Promise<void> {
    await this.file?.close()
    this.file = undefined
    const {path, maxFiles} = this.settings
    await rm(`${path}.${maxFiles}`, {force: true})
    for (let i = maxFiles - 1; i >= 1; i--) await rename(`${path}.${i}`, `${path}.${i + 1}`).catch(() => undefined)
    await rename(path, `${path}.1`).catch(() => undefined)
    this.size = 0
  }
}
