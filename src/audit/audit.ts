// `mlops audit REQUEST_ID`: who answered a request and under which release: the request log, the ledger and the feedback, joined.
import {loadConfig} from '../config/load.js'
import {readRecords} from '../data/records.js'
import {MlopsError} from '../errors.js'
import {type Feedback, feedbackPath, readFeedback} from '../feedback/store.js'
import {rotatedFiles} from '../monitor/current.js'
import {requestLogPath} from '../monitor/performance.js'
import {deployPaths, readLedger} from '../rollout/state.js'
import type {LedgerEntry, Stage} from '../rollout/types.js'

export interface AuditOptions {
  dir: string
  requestId: string
  log?: string
}

export interface AuditResult {
  request_id: string
  time: string
  route: string
  status: number
  latency_ms?: number
  caller?: string
  model: {name: string; version: string; digest?: string}
  /** What the model answered, as logged. */
  prediction?: unknown
  fallback?: boolean
  /** The rollout at the time: absent when the request was served outside a deployment (plain mlops serve). */
  release?: {
    role: 'stable' | 'candidate' | 'other'
    stage: Stage
    /** The share of client traffic this version had, percent. */
    weight: number
    /** The change in effect when the request was served. */
    in_effect: LedgerRef
    /** The change that put this version where it was (its deploy, or the promotion that moved it). */
    deployed_by?: LedgerRef
  }
  truth?: Omit<Feedback, 'request_id'>
}

export interface LedgerRef {
  revision: number
  action: string
  at: string
  actor: string
  reason: string
  automatic: boolean
  digest?: string
}

interface LoggedEntry {
  id?: string
  time?: string
  route?: string
  status?: number
  latency_ms?: number
  caller?: string
  fallback?: boolean
  model?: {name: string; version: string; digest?: string}
  outputs?: {predictions?: unknown; outputs?: unknown}
}

export async function audit(options: AuditOptions): Promise<AuditResult> {
  const loaded = await loadConfig(options.dir)
  const log = requestLogPath(options.log, loaded, 'mlops audit')
  const entry = await findRequest(log, options.requestId)
  if (!entry?.time || !entry.model)
    throw new MlopsError('REQUEST_NOT_FOUND', `no request ${options.requestId} in the request log ${log}`, {
      exitCode: 1,
      hint: 'Request ids are the x-request-id header of each answer; rotated files beyond serving.request_log.max_files are gone.',
    })
  const {entries} = await readLedger(deployPaths(loaded.dir))
  const truth = (await readFeedback(feedbackPath(log))).get(options.requestId)
  const prediction = entry.outputs?.predictions ?? entry.outputs?.outputs
  const release = releaseAt(entries, Date.parse(entry.time), entry.model.version)
  return {
    request_id: options.requestId,
    time: entry.time,
    route: entry.route ?? '',
    status: entry.status ?? 0,
    ...(entry.latency_ms === undefined ? {} : {latency_ms: entry.latency_ms}),
    ...(entry.caller ? {caller: entry.caller} : {}),
    model:
      entry.model.digest || !release?.deployed_by?.digest
        ? entry.model
        : {...entry.model, digest: release.deployed_by.digest},
    ...(prediction === undefined ? {} : {prediction}),
    ...(entry.fallback ? {fallback: true} : {}),
    ...(release ? {release} : {}),
    ...(truth ? {truth: withoutId(truth)} : {}),
  }
}

function withoutId({request_id: _, ...rest}: Feedback): Omit<Feedback, 'request_id'> {
  return rest
}

async function findRequest(log: string, id: string): Promise<LoggedEntry | undefined> {
  // Newest file first: a request id the caller chose may repeat, and the latest is the one asked about.
  let found: LoggedEntry | undefined
  for (const file of rotatedFiles(log).reverse()) {
    for await (const {record} of readRecords(file, {format: 'jsonl', onBadRow: () => undefined}))
      if ((record as LoggedEntry).id === id) found = record
    if (found) return found
  }
  return undefined
}

function ref(entry: LedgerEntry): LedgerRef {
  return {
    revision: entry.revision,
    action: entry.action,
    at: entry.at,
    actor: entry.actor,
    reason: entry.reason,
    automatic: entry.automatic,
    ...(entry.digest ? {digest: entry.digest} : {}),
  }
}

/** The ledger entry in effect at `time`, where `version` stood in it, and the change that put it there. */
export function releaseAt(entries: LedgerEntry[], time: number, version: string): AuditResult['release'] {
  const before = entries.filter((e) => Date.parse(e.at) <= time)
  const current = before.at(-1)
  if (!current?.to) return undefined
  const {stage, weight, stable, candidate} = current.to
  const role = version === candidate ? 'candidate' : version === stable ? 'stable' : 'other'
  const share =
    role === 'candidate'
      ? stage === 'canary'
        ? weight
        : 0
      : role === 'stable'
        ? 100 - (stage === 'canary' ? weight : 0)
        : 0
  const placing = [...before].reverse().find((e) => e.version === version && e.action !== 'rollback')
  return {role, stage, weight: share, in_effect: ref(current), ...(placing ? {deployed_by: ref(placing)} : {})}
}
