// `mlops feedback`: ground truth from a file, by request id or by a key column joined to a field of the logged requests.
import {existsSync} from 'node:fs'

import {loadConfig} from '../config/load.js'
import {readRecords} from '../data/records.js'
import {UsageError} from '../errors.js'
import {rotatedFiles} from '../monitor/current.js'
import {requestLogPath} from '../monitor/performance.js'
import {shortPath} from '../report/write.js'
import {type Feedback, FeedbackLog, feedbackPath, parseFeedback} from './store.js'

export interface FeedbackOptions {
  dir: string
  /** CSV or JSONL rows: request_id (or the `key` column), label or value, and optionally time. */
  input: string
  /** A column of the input matched against `join`, a field of the logged requests' inputs (e.g. transaction_id). */
  key?: string
  join?: string
  /** The request log; default serving.request_log.path. */
  log?: string
  now?: () => Date
}

export interface FeedbackResult {
  file: string
  rows: number
  accepted: number
  duplicates: number
  /** Rows whose key matched no logged request. */
  unmatched: number
}

export async function ingestFeedback(options: FeedbackOptions): Promise<FeedbackResult> {
  if ((options.key === undefined) !== (options.join === undefined))
    throw new UsageError('FEEDBACK_JOIN', '--key and --join go together', {
      hint: 'Pass "--key transaction_id --join transaction_id": the input column and the logged input field it matches.',
    })
  const log = requestLogPath(options.log, await loadConfig(options.dir), 'mlops feedback')
  const index = options.join ? await joinIndex(log, options.join) : undefined
  const received = (options.now ?? (() => new Date()))()
  const items: Feedback[] = []
  let rows = 0
  let unmatched = 0
  for await (const {line, record} of readRecords(options.input)) {
    rows++
    const row: Record<string, unknown> = {...record}
    if (options.key !== undefined) {
      const id = index!.get(String(row[options.key]))
      delete row[options.key]
      if (id === undefined) {
        unmatched++
        continue
      }
      row.request_id = id
    }
    // CSV cells are text: a value column holds numbers.
    if (typeof row.value === 'string' && row.value.trim() !== '') row.value = Number(row.value)
    for (const name of ['label', 'value', 'time']) if (row[name] === '') delete row[name]
    const parsed = parseFeedback(row, 'row', received)
    if ('problem' in parsed)
      throw new UsageError('FEEDBACK_INVALID', `${options.input}:${line}: ${parsed.field}: ${parsed.problem}`, {
        hint: 'Each row needs request_id (or the --key column), label or value, and optionally time. Nothing was recorded.',
      })
    items.push(parsed.feedback)
  }
  const store = new FeedbackLog(feedbackPath(log))
  try {
    const {accepted, duplicates} = await store.add(items)
    return {file: shortPath(store.path), rows, accepted, duplicates, unmatched}
  } finally {
    await store.close()
  }
}

/** Logged request ids by the value of `field` in their first input record (or the entry itself). */
async function joinIndex(log: string, field: string): Promise<Map<string, string>> {
  const index = new Map<string, string>()
  const files = rotatedFiles(log)
  if (files.length === 0 && !existsSync(log))
    throw new UsageError('FEEDBACK_NO_LOG', `the request log ${log} does not exist, so --join has nothing to match`, {
      hint: 'Serve with serving.request_log.path set (inputs: all), or pass request ids instead of --key.',
    })
  for (const file of files)
    for await (const {record} of readRecords(file, {format: 'jsonl', onBadRow: () => undefined})) {
      const entry = record as {id?: unknown; status?: unknown; inputs?: unknown}
      if (typeof entry.id !== 'string' || entry.status !== 200) continue
      const first = Array.isArray(entry.inputs) ? (entry.inputs[0] as Record<string, unknown> | undefined) : undefined
      const value = first?.[field] ?? (record as Record<string, unknown>)[field]
      if (value !== undefined && value !== null && !index.has(String(value))) index.set(String(value), entry.id)
    }
  return index
}
