// The current data drift is measured on: a batch file of records, or the requests the server logged in a time window.
import {existsSync} from 'node:fs'

import type {ReferenceProfile} from '../artifact/types.js'
import {readRecords} from '../data/records.js'
import type {CurrentData} from './drift.js'
import {flattenPrediction} from './profile.js'

export interface CurrentSource {
  data: CurrentData
  /** Records (one per predicted instance) the data holds. */
  records: number
  /** Lines or requests left out, by reason (other model, error status, no inputs logged, unreadable line). */
  skipped: Record<string, number>
  files: string[]
}

/** Columns of the baseline, filled from each record; a column no record has at all stays absent (a label, an id). */
class Columns {
  readonly values: Record<string, unknown[]> = {}
  private rows = 0

  constructor(private readonly names: string[]) {}

  add(record: Record<string, unknown>): void {
    for (const name of this.names) {
      if (!(name in record) && !this.values[name]) continue
      // A column first seen now was missing in every earlier record.
      this.values[name] ??= new Array<unknown>(this.rows).fill(null)
      this.values[name].push(record[name] ?? null)
    }
    this.rows++
  }
}

/**
 * The model's predictions for a batch of records, in their order; undefined for a record the pipeline refuses.
 * See src/monitor/score.ts.
 */
export type Score = (records: Record<string, unknown>[]) => Promise<(Record<string, unknown> | undefined)[]>

const SCORE_BATCH = 256

/** Why a record of a batch counts for its inputs and not for prediction drift. */
export const REFUSED = 'refused by the pipeline (inputs only)'

/**
 * Records of a CSV or JSONL file: their input features and, given `score`, the predictions the model makes for them
 * (a record the pipeline refuses counts for inputs only, and is counted in `skipped`).
 */
export async function readBatch(path: string, baseline: ReferenceProfile, score?: Score): Promise<CurrentSource> {
  const features = new Columns(Object.keys(baseline.features))
  const predictions = new Columns(Object.keys(baseline.predictions ?? {}))
  const skipped: Record<string, number> = {}
  let records = 0
  let batch: Record<string, unknown>[] = []
  const flush = async () => {
    if (!score || batch.length === 0) return
    for (const answer of await score(batch)) {
      if (answer) predictions.add(flattenPrediction(answer))
      else skipped[REFUSED] = (skipped[REFUSED] ?? 0) + 1
    }
    batch = []
  }
  for await (const {record} of readRecords(path)) {
    features.add(record)
    records++
    if (!score) continue
    batch.push(record)
    if (batch.length >= SCORE_BATCH) await flush()
  }
  await flush()
  return {
    data: {features: features.values, ...(score ? {predictions: predictions.values} : {})},
    records,
    skipped,
    files: [path],
  }
}

export interface LogWindow {
  /** The log file the server writes; its rotated files (`.1`, `.2`, …) are read too. */
  path: string
  from: Date
  to: Date
  /** Only requests to this model (by name) count, when given. */
  model?: string
}

interface LoggedRequest {
  time?: string
  route?: string
  status?: number
  model?: {name?: string}
  fallback?: boolean
  inputs?: unknown
  outputs?: {predictions?: unknown}
}

/**
 * The requests to /v1/predict logged between `from` and `to`: their input records, and the predictions the model
 * made (a fallback answer is not the model's, so it counts for inputs only). /v2 tensor requests carry no features.
 */
export async function readRequestLog(window: LogWindow, baseline: ReferenceProfile): Promise<CurrentSource> {
  const features = new Columns(Object.keys(baseline.features))
  const predictions = new Columns(Object.keys(baseline.predictions ?? {}))
  const skipped: Record<string, number> = {}
  const skip = (reason: string) => (skipped[reason] = (skipped[reason] ?? 0) + 1)
  let records = 0
  const files = rotatedFiles(window.path)
  for (const file of files) {
    for await (const {record} of readRecords(file, {format: 'jsonl', onBadRow: () => skip('unreadable line')})) {
      const entry = record as LoggedRequest
      const time = entry.time ? Date.parse(entry.time) : Number.NaN
      if (!(time >= window.from.getTime() && time <= window.to.getTime())) continue
      if (entry.route !== '/v1/predict') {
        skip('not a /v1/predict request')
        continue
      }
      if (entry.status !== 200) {
        skip('error status')
        continue
      }
      if (window.model !== undefined && entry.model?.name !== window.model) {
        skip('another model')
        continue
      }
      if (!Array.isArray(entry.inputs)) {
        skip('inputs not logged')
        continue
      }
      const answers =
        !entry.fallback && Array.isArray(entry.outputs?.predictions)
          ? (entry.outputs.predictions as unknown[])
          : undefined
      entry.inputs.forEach((input, i) => {
        if (input === null || typeof input !== 'object') return
        features.add(input as Record<string, unknown>)
        const answer = answers?.[i]
        if (answer !== null && typeof answer === 'object')
          predictions.add(flattenPrediction(answer as Record<string, unknown>))
        records++
      })
    }
  }
  return {data: {features: features.values, predictions: predictions.values}, records, skipped, files}
}

/** The log and its rotated files, oldest first: the order the requests came in. */
export function rotatedFiles(path: string): string[] {
  const files: string[] = []
  for (let i = 1; existsSync(`${path}.${i}`); i++) files.unshift(`${path}.${i}`)
  if (existsSync(path)) files.push(path)
  return files
}
