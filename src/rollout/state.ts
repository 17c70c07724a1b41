// The rollout's files under <project>/.mlops/deploy/: desired state (atomic), the ledger (append + fsync) and the lock.
import {closeSync, constants, fsyncSync, openSync, readFileSync, unlinkSync, writeSync} from 'node:fs'
import {open, readFile, unlink} from 'node:fs/promises'
import {hostname} from 'node:os'
import {setTimeout as sleep} from 'node:timers/promises'
import {join, resolve} from 'node:path'

import {ExitCode, MlopsError} from '../errors.js'
import {diskError, makeDirectory, readJson, tornLineEnd, writeJsonAtomically} from '../system/atomic.js'
import {isAlive, processStart} from '../system/process.js'
import {DEFAULT_MIRROR_CONCURRENCY} from './config.js'
import type {Transition} from './plan.js'
import type {Analysis, LedgerEntry, RolloutState, StepMetrics} from './types.js'

export interface DeployPaths {
  dir: string
  state: string
  ledger: string
  lock: string
  /** pid, ports and control token of the running gateway (mode 0600). */
  gateway: string
  /** pids of the model servers the gateway started, so orphans of a killed gateway can be stopped. */
  servers: string
  /** The gateway's own output, for when it dies. */
  log: string
}

export function deployPaths(projectDir: string): DeployPaths {
  const dir = resolve(projectDir, '.mlops', 'deploy')
  return {
    dir,
    state: join(dir, 'rollout.json'),
    ledger: join(dir, 'ledger.jsonl'),
    lock: join(dir, 'lock'),
    gateway: join(dir, 'gateway.json'),
    servers: join(dir, 'servers.json'),
    log: join(dir, 'gateway.log'),
  }
}

export async function readState(paths: DeployPaths): Promise<RolloutState | undefined> {
  const state = await readJson<Omit<RolloutState, 'mirrorConcurrency'> & {mirrorConcurrency?: number}>(paths.state)
  if (state === undefined) return undefined
  const problem = stateProblem(state)
  if (problem) {
    throw new MlopsError('STATE_CORRUPT', `${paths.state} is not a rollout state: ${problem}`, {
      hint: 'Only mlops writes it: restore it from a backup, or run "mlops down --yes" (it stops the gateway and clears it; "mlops history" keeps every release) and deploy again.',
    })
  }
  // State written before deploy.shadow.concurrency existed goes on with its default.
  return {...state, mirrorConcurrency: state.mirrorConcurrency ?? DEFAULT_MIRROR_CONCURRENCY}
}

/** What every reader of the state relies on, checked once here rather than met as "undefined" further on. */
function stateProblem(value: unknown): string | undefined {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return 'not a JSON object'
  const state = value as Record<string, unknown>
  const release = (field: 'stable' | 'candidate') => {
    const r = state[field] as {version?: unknown} | undefined
    return r !== null && typeof r === 'object' && typeof r.version === 'string' && r.version !== ''
  }
  if (state.schemaVersion !== 1) return `schemaVersion is ${JSON.stringify(state.schemaVersion)}, not 1`
  if (!Number.isInteger(state.revision) || (state.revision as number) < 1) return 'revision is not a positive integer'
  if (!release('stable')) return 'stable has no version'
  if (state.candidate !== undefined && !release('candidate')) return 'candidate has no version'
  if (!['full', 'shadow', 'canary'].includes(state.stage as string))
    return `stage ${JSON.stringify(state.stage)} is not full, shadow or canary`
  if (typeof state.weight !== 'number' || state.weight < 0 || state.weight > 100) return 'weight is not a percentage'
  if (!Number.isInteger(state.port) || (state.port as number) < 1 || (state.port as number) > 65535)
    return 'port is not a port number'
  if (typeof state.stepStartedAt !== 'string' || Number.isNaN(Date.parse(state.stepStartedAt)))
    return 'stepStartedAt is not a time'
  if (!Array.isArray(state.steps) || state.analysis === null || typeof state.analysis !== 'object')
    return 'steps or analysis are missing'
  return undefined
}

export async function writeState(paths: DeployPaths, state: RolloutState): Promise<void> {
  // The deploy directory's files are the user's alone, like the gateway's token file.
  await writeJsonAtomically(paths.state, state, 0o600)
}

/** Who made a change and what it was judged on, for its ledger entry. */
export interface ChangeRecord {
  at: Date
  actor: string
  analysis?: Analysis
  metrics?: StepMetrics
  testReport?: string
}

/**
 * The commit point of every change, a command's or the gateway's own (--auto): the desired state, then its ledger entry.
 * A crash between the two leaves the new state without its entry, never an entry for a state that was not written.
 */
export async function commitTransition(
  paths: DeployPaths,
  {state, change}: Transition,
  record: ChangeRecord,
): Promise<LedgerEntry> {
  await writeState(paths, state)
  const entry = ledgerEntry({state, change}, record)
  await appendLedger(paths, entry)
  return entry
}

/** The ledger entry of a change: what changed, who made it and what it was judged on. */
export function ledgerEntry({state, change}: Transition, record: ChangeRecord): LedgerEntry {
  const {analysis, metrics} = record
  return {
    ...change,
    at: record.at.toISOString(),
    actor: record.actor,
    revision: state.revision,
    ...(analysis ? {analysis: {verdict: analysis.verdict, gates: analysis.gates, ...(metrics ? {metrics} : {})}} : {}),
    ...(record.testReport ? {testReport: record.testReport} : {}),
  }
}

export async function removeState(paths: DeployPaths): Promise<void> {
  await unlink(paths.state).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'ENOENT') throw error
  })
}

/** Appends one line and fsyncs it; a line torn by a crash is skipped by readLedger and the next entry starts a new line. */
export async function appendLedger(paths: DeployPaths, entry: LedgerEntry): Promise<void> {
  await makeDirectory(paths.dir)
  try {
    const handle = await open(paths.ledger, 'a+', 0o600)
    try {
      const prefix = await tornLineEnd(handle, (await handle.stat()).size)
      await handle.write(prefix + JSON.stringify(entry) + '\n')
      await handle.sync()
    } finally {
      await handle.close()
    }
  } catch (error) {
    throw diskError(paths.ledger, error)
  }
}

export interface Ledger {
  entries: LedgerEntry[]
  /** Lines that are not JSON: a write torn by a crash. */
  skipped: number
}

export async function readLedger(paths: DeployPaths): Promise<Ledger> {
  let text: string
  try {
    text = await readFile(paths.ledger, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {entries: [], skipped: 0}
    throw error
  }
  return parseLedger(text)
}

/** One entry a line; a line that is not JSON (torn by a crash) is counted and skipped. */
export function parseLedger(text: string): Ledger {
  const entries: LedgerEntry[] = []
  let skipped = 0
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue
    try {
      entries.push(JSON.parse(line) as LedgerEntry)
    } catch {
      skipped++
    }
  }
  return {entries, skipped}
}

export interface LockHolder {
  pid: number
  command: string
  since: string
  host: string
  /** The process's start time from /proc, so a recycled pid is not mistaken for the holder. */
  started?: string
}

export interface DeployLock {
  holder: LockHolder
  release(): void
}

/**
 * Takes the deploy lock at once or refuses, naming who holds it: one change at a time, and a second command is told
 * rather than queued. A lock whose process is gone (a kill -9) is stale and is broken.
 */
export async function acquireLock(paths: DeployPaths, command: string): Promise<DeployLock> {
  await makeDirectory(paths.dir)
  const holder: LockHolder = {
    pid: process.pid,
    command,
    since: new Date().toISOString(),
    host: hostname(),
    ...(processStart(process.pid) ? {started: processStart(process.pid)} : {}),
  }
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(paths.lock, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600)
      writeSync(fd, JSON.stringify(holder))
      fsyncSync(fd)
      closeSync(fd)
      let released = false
      return {
        holder,
        release() {
          if (released) return
          released = true
          removeIfOurs(paths.lock, holder)
        },
      }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw diskError(paths.lock, error)
    }
    const current = readHolder(paths.lock)
    if (current && isAlive(current)) {
      throw new MlopsError(
        'DEPLOY_LOCKED',
        `another mlops command is changing this deployment: pid ${current.pid} (${current.command}) since ${current.since}`,
        {
          exitCode: ExitCode.inProgress,
          hint: 'Wait for it to finish (see "mlops status"), then run the command again.',
          details: {holder: current},
        },
      )
    }
    breakStaleLock(paths.lock, current)
  }
  throw new MlopsError('DEPLOY_LOCKED', `could not take the deploy lock ${paths.lock}: it keeps changing hands`, {
    exitCode: ExitCode.inProgress,
    hint: 'Run the command again.',
  })
}

/**
 * With `waitMs`, a lock held by a live process is waited for (polling) up to that long before refusing: for a command
 * such as `mlops down` that should not fail because the gateway was in the middle of an automatic step.
 */
export async function withLock<T>(
  paths: DeployPaths,
  command: string,
  fn: () => Promise<T>,
  options: {waitMs?: number} = {},
): Promise<T> {
  const deadline = Date.now() + (options.waitMs ?? 0)
  let lock: DeployLock
  for (;;) {
    try {
      lock = await acquireLock(paths, command)
      break
    } catch (error) {
      if ((error as MlopsError).code !== 'DEPLOY_LOCKED' || Date.now() >= deadline) throw error
      await sleep(100)
    }
  }
  try {
    return await fn()
  } finally {
    lock.release()
  }
}

function readHolder(path: string): LockHolder | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as LockHolder
  } catch {
    // Empty or torn: its writer died between creating and writing it.
    return undefined
  }
}

/** Removes the lock only if it still holds what was judged stale, so a lock just taken by someone else survives. */
function breakStaleLock(path: string, stale: LockHolder | undefined): void {
  const now = readHolder(path)
  if (JSON.stringify(now) !== JSON.stringify(stale)) return
  try {
    unlinkSync(path)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
  }
}

function removeIfOurs(path: string, holder: LockHolder): void {
  const current = readHolder(path)
  if (current?.pid !== holder.pid || current.since !== holder.since) return
  try {
    unlinkSync(path)
  } catch {
    // already gone
  }
}
