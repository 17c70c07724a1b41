// What the workers of one port share, kept by their primary and reached over node:cluster's IPC channel: callers' rate
// buckets (a limit of N per second holds for the port, not per worker), the request log and feedback files (one writer
// each: no interleaved lines, one rotation), the live drift profiles (every worker's share merged into one file), and
// /metrics (every worker's counts summed).
import type {Worker} from 'node:cluster'

import type {AggregatorRegistry, RegistryContentType} from 'prom-client'

import {RateLimiter} from '../auth/rate.js'
import {type Feedback, FeedbackLog, feedbackPath} from '../feedback/store.js'
import {type LiveLimits, type LiveSnapshot, mergeLiveSnapshots} from '../monitor/live.js'
import {readJson, writeJsonAtomically} from '../system/atomic.js'
import {Serial} from '../system/serial.js'
import type {RequestLogSettings} from './config.js'
import {LogFile} from './request-log.js'

export interface SharedServices {
  /** One token of `caller`'s bucket: 0 when allowed, else the seconds until one is there. */
  takeToken: (caller: string, perSecond: number, burst: number) => Promise<number>
  /** Appends whole request log lines. */
  appendLog: (text: string) => Promise<void>
  /** Appends feedback once per request id, across all workers. */
  addFeedback: (items: Feedback[]) => Promise<{accepted: number; duplicates: number}>
  /** This worker's own live profiles (without the restored windows), merged into the saved file. */
  saveLive: (snapshot: LiveSnapshot) => Promise<void>
  /** The /metrics text of all workers together. */
  metrics: () => Promise<string>
}

/** What a worker tells its primary when ready, for the shared services: paths are resolved, limits filled in. */
export interface SharedSetup {
  requestLog?: RequestLogSettings
  live?: {path: string; limits: LiveLimits}
}

type Ask = {type: 'mlops:ask'; id: number; kind: keyof SharedServices; args: unknown[]}
type Answer = {type: 'mlops:answer'; id: number; value?: unknown; error?: string}

/** In a worker: each service a request to the primary, answered by id. */
export function primaryServices(): SharedServices {
  let next = 0
  const waiting = new Map<number, {resolve: (value: unknown) => void; reject: (error: Error) => void}>()
  process.on('message', (message: Answer) => {
    if (message?.type !== 'mlops:answer') return
    const pending = waiting.get(message.id)
    waiting.delete(message.id)
    if (message.error === undefined) pending?.resolve(message.value)
    else pending?.reject(new Error(message.error))
  })
  const ask = <T>(kind: keyof SharedServices, ...args: unknown[]) =>
    new Promise<T>((resolve, reject) => {
      const id = next++
      waiting.set(id, {resolve: resolve as (value: unknown) => void, reject})
      process.send!({type: 'mlops:ask', id, kind, args} satisfies Ask, undefined, undefined, (error) => {
        if (!error) return
        waiting.delete(id)
        reject(error)
      })
    })
  return {
    takeToken: (caller, perSecond, burst) => ask('takeToken', caller, perSecond, burst),
    appendLog: (text) => ask('appendLog', text),
    addFeedback: (items) => ask('addFeedback', items),
    saveLive: (snapshot) => ask('saveLive', snapshot),
    metrics: () => ask('metrics'),
  }
}

/** In the primary: the one state behind every worker's services. */
export class SharedState {
  private readonly limiter = new RateLimiter()
  private log?: LogFile
  private feedback?: FeedbackLog
  private live?: {path: string; limits: LiveLimits; base: Promise<LiveSnapshot[]>; byWorker: Map<number, LiveSnapshot>}
  private readonly saving = new Serial()

  constructor(private readonly aggregator: AggregatorRegistry<RegistryContentType>) {}

  /** From the first worker ready (all are alike); the saved live profiles are read once, as the workers did. */
  configure(setup: SharedSetup): void {
    if (this.log || this.live) return
    if (setup.requestLog) {
      this.log = new LogFile(setup.requestLog)
      this.feedback = new FeedbackLog(feedbackPath(setup.requestLog.path))
    }
    if (setup.live) {
      const {path, limits} = setup.live
      // An unreadable file: the workers warned already, and the next save replaces it.
      const base = readJson<LiveSnapshot>(path).then(
        (snapshot) => (snapshot ? [snapshot] : []),
        () => [],
      )
      this.live = {path, limits, base, byWorker: new Map()}
    }
  }

  /** Answers the asks of the worker at `index` (a replacement gets the index of the worker it replaces). */
  answer(worker: Worker, index: number): void {
    const services = this.services(index)
    worker.on('message', (message: Ask) => {
      if (message?.type !== 'mlops:ask') return
      const reply = (answer: Omit<Answer, 'type' | 'id'>) =>
        worker.isConnected() && worker.send({type: 'mlops:answer', id: message.id, ...answer} satisfies Answer)
      const service = services[message.kind] as (...args: unknown[]) => Promise<unknown>
      Promise.resolve()
        .then(() => service(...message.args))
        .then(
          (value) => reply({value}),
          (error: Error) => reply({error: error.message}),
        )
    })
  }

  /** A worker that died: what it last reported stays in the file, under the others' and its replacement's. */
  workerGone(index: number): void {
    const live = this.live
    const last = live?.byWorker.get(index)
    if (!live || !last) return
    live.byWorker.delete(index)
    live.base = live.base.then((base) => [mergeLiveSnapshots([...base, last], live.limits)])
  }

  async close(): Promise<void> {
    await this.saving.idle()
    await this.log?.close()
    await this.feedback?.close()
  }

  private services(index: number): SharedServices {
    return {
      takeToken: async (caller, perSecond, burst) => this.limiter.take(caller, perSecond, burst),
      appendLog: (text) => this.require(this.log, 'request log').write(text),
      addFeedback: (items) => this.require(this.feedback, 'request log').add(items),
      saveLive: async (snapshot) => {
        const live = this.require(this.live, 'live profile')
        live.byWorker.set(index, snapshot)
        const save = async () => {
          const merged = mergeLiveSnapshots([...(await live.base), ...live.byWorker.values()], live.limits)
          await writeJsonAtomically(live.path, merged)
        }
        await this.saving.run(save)
      },
      metrics: () => this.aggregator.clusterMetrics(),
    }
  }

  private require<T>(value: T | undefined, what: string): T {
    if (value === undefined) throw new Error(`no ${what} is configured in this server`)
    return value
  }
}
