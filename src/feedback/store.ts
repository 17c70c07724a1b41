// Ground truth: what actually happened for a served request (a label or a value), appended beside the request log, first one per request id kept.
import {existsSync} from 'node:fs'
import {type FileHandle, open} from 'node:fs/promises'
import {dirname} from 'node:path'

import {readRecords} from '../data/records.js'
import {makeDirectory, tornLineEnd} from '../system/atomic.js'
import {Serial} from '../system/serial.js'

export interface Feedback {
  request_id: string
  /** A class the model could have predicted (classifiers). */
  label?: string | number | boolean
  /** The true value (regressors). */
  value?: number
  /** When the truth became known (default: when it was received). */
  time: string
  received: string
  /** Who sent it (a key name or a token subject). */
  caller?: string
}

/** The feedback file of a request log: `requests.jsonl` → `requests.jsonl.feedback.jsonl`, like its `.profiles.json`. */
export function feedbackPath(requestLog: string): string {
  return `${requestLog}.feedback.jsonl`
}

const ID = /^[\x21-\x7e]{1,200}$/
const MAX_LABEL_LENGTH = 200
export const MAX_FEEDBACK_ITEMS = 10_000
const FIELDS = ['request_id', 'label', 'value', 'time']

/** JSON Schema (2020-12) of one item as parseFeedback takes it, from the same limits: for the OpenAPI document. */
export function feedbackItemSchema(): Record<string, unknown> {
  return {
    type: 'object',
    additionalProperties: false,
    required: ['request_id'],
    properties: {
      request_id: {
        type: 'string',
        pattern: ID.source,
        description: 'The x-request-id of a served request (printable, at most 200 characters).',
      },
      label: {
        type: ['string', 'number', 'boolean'],
        maxLength: MAX_LABEL_LENGTH,
        description: 'The true class (classifiers).',
      },
      value: {type: 'number', description: 'The true value (regressors).'},
      time: {
        type: ['string', 'number'],
        description: 'When the truth became known: an ISO 8601 time or milliseconds since 1970. Default: on receipt.',
      },
    },
    oneOf: [{required: ['label']}, {required: ['value']}],
  }
}

/** The body of POST /v1/feedback: one item, or `{"feedback": [items]}`; and its answer. */
export function feedbackSchemas(item: Record<string, unknown>): {request: object; response: object} {
  return {
    request: {
      oneOf: [
        item,
        {
          type: 'object',
          additionalProperties: false,
          required: ['feedback'],
          properties: {feedback: {type: 'array', minItems: 1, maxItems: MAX_FEEDBACK_ITEMS, items: item}},
        },
      ],
    },
    response: {
      type: 'object',
      required: ['accepted', 'duplicates'],
      properties: {
        accepted: {type: 'integer', minimum: 0, description: 'Items kept: the first feedback for their request id.'},
        duplicates: {type: 'integer', minimum: 0, description: 'Items for a request id that already had feedback.'},
      },
    },
  }
}

/** One item as sent, checked: a problem names the field (`feedback[3].label`) and what it must be. */
export function parseFeedback(
  value: unknown,
  field: string,
  received: Date,
): {feedback: Feedback} | {problem: string; field: string} {
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    return {problem: 'must be an object {"request_id", "label" or "value", "time"}', field}
  const item = value as Record<string, unknown>
  for (const key of Object.keys(item))
    if (!FIELDS.includes(key))
      return {
        problem: `unknown field "${key}"; an item has request_id, label or value, and time`,
        field: `${field}.${key}`,
      }
  if (typeof item.request_id !== 'string' || !ID.test(item.request_id))
    return {
      problem: 'must be the x-request-id of a served request (printable, at most 200 characters)',
      field: `${field}.request_id`,
    }
  const hasLabel = item.label !== undefined && item.label !== null
  const hasValue = item.value !== undefined && item.value !== null
  if (hasLabel === hasValue) return {problem: 'give exactly one of "label" (a class) or "value" (a number)', field}
  if (hasLabel && !['string', 'number', 'boolean'].includes(typeof item.label))
    return {problem: 'must be a string, number or boolean', field: `${field}.label`}
  if (hasLabel && typeof item.label === 'string' && item.label.length > MAX_LABEL_LENGTH)
    return {problem: `must be at most ${MAX_LABEL_LENGTH} characters`, field: `${field}.label`}
  if (hasValue && (typeof item.value !== 'number' || !Number.isFinite(item.value)))
    return {problem: 'must be a finite number', field: `${field}.value`}
  let time = received.toISOString()
  if (item.time !== undefined) {
    const ms =
      typeof item.time === 'string' || typeof item.time === 'number' ? new Date(item.time).getTime() : Number.NaN
    if (Number.isNaN(ms)) return {problem: 'must be a time, e.g. 2026-12-03T09:00:00Z', field: `${field}.time`}
    time = new Date(ms).toISOString()
  }
  return {
    feedback: {
      request_id: item.request_id,
      ...(hasLabel ? {label: item.label as string | number | boolean} : {value: item.value as number}),
      time,
      received: received.toISOString(),
    },
  }
}

/** The first feedback of each request id in the file (later ones for the same id are repeats, and ignored). */
export async function readFeedback(path: string): Promise<Map<string, Feedback>> {
  const out = new Map<string, Feedback>()
  if (!existsSync(path)) return out
  for await (const {record} of readRecords(path, {format: 'jsonl', onBadRow: () => undefined})) {
    const item = record as unknown as Feedback
    if (typeof item.request_id === 'string' && !out.has(item.request_id)) out.set(item.request_id, item)
  }
  return out
}

/** Appends feedback once per request id; writes are serialized, each batch one write of whole lines. */
export class FeedbackLog {
  private ids?: Set<string>
  private file?: FileHandle
  private readonly serial = new Serial()

  constructor(readonly path: string) {}

  /** Appends the items whose request id has no feedback yet; the others are counted as duplicates. */
  add(items: Feedback[]): Promise<{accepted: number; duplicates: number}> {
    return this.serial.run(() => this.append(items))
  }

  async close(): Promise<void> {
    await this.serial.idle()
    await this.file?.close()
    this.file = undefined
  }

  private async append(items: Feedback[]): Promise<{accepted: number; duplicates: number}> {
    this.ids ??= new Set((await readFeedback(this.path)).keys())
    const fresh: Feedback[] = []
    for (const item of items) {
      if (this.ids.has(item.request_id)) continue
      this.ids.add(item.request_id)
      fresh.push(item)
    }
    if (fresh.length > 0) {
      if (!this.file) {
        await makeDirectory(dirname(this.path))
        this.file = await open(this.path, 'a+', 0o600)
        const start = await tornLineEnd(this.file, (await this.file.stat()).size)
        if (start) await this.file.write(start)
      }
      await this.file.write(fresh.map((f) => JSON.stringify(f) + '\n').join(''))
    }
    return {accepted: fresh.length, duplicates: items.length - fresh.length}
  }
}
