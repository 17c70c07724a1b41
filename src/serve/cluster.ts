// serving.workers: that many model-server processes on one port (node:cluster), each with its own onnxruntime session and
// adaptive batching. The primary loads no model: it forks the workers (each runs this same command), says ready once all
// are, restarts one that dies, keeps what they share (src/serve/shared.ts: rate buckets, the request log and feedback
// files, live drift profiles, /metrics summed), and on SIGTERM has them all drain together.
import cluster, {type Worker} from 'node:cluster'
import {availableParallelism} from 'node:os'

import {AggregatorRegistry} from 'prom-client'

import {projectStore} from '../artifact/project.js'
import {MlopsError, UsageError} from '../errors.js'
import {serveSettings} from './config.js'
import {type LoadServableOptions, type Serving, sharedSetup, startServing} from './load.js'
import type {ModelIdentity} from './server.js'
import {type SharedSetup, SharedState, primaryServices} from './shared.js'

export interface RunningServer {
  url: string
  port: number
  identity: ModelIdentity
  warnings: string[]
  /** Processes serving the port: 1 for a single process. */
  workers: number
  /** This process is one worker of several: the primary says ready, and this one stays quiet. */
  worker: boolean
  /** Drains in-flight requests (up to `timeoutMs`) and releases the model(s). True when nothing was cut off. */
  stop(timeoutMs?: number): Promise<boolean>
}

export interface ServeOptions extends LoadServableOptions {
  /** Overrides serving.workers. */
  workers?: number
}

type FromWorker =
  | {type: 'mlops:ready'; url: string; identity: ModelIdentity; warnings: string[]; setup: SharedSetup}
  | {type: 'mlops:drained'; drained: boolean}
  | {type: 'mlops:failed'; code: string; message: string; hint?: string; exitCode: number}

/** More restarts than workers within this window is a crash loop: serving stops rather than forking forever. */
const RESTART_WINDOW_MS = 10_000

/** This process is a worker of `mlops serve --workers N`: its primary reports for it. */
export function isServeWorker(): boolean {
  return cluster.isWorker
}

/** Serves from this process, or from `serving.workers` worker processes under this one. */
export async function serve(options: ServeOptions): Promise<RunningServer> {
  if (cluster.isWorker) return serveAsWorker(options)
  const {loaded} = await projectStore(options.dir)
  const settings = serveSettings(loaded?.config.serving, options.settings)
  const workers = options.workers ?? settings.workers
  if (workers <= 1) {
    const serving = await startServing(options)
    return single(serving, false, (timeoutMs) => serving.stop(timeoutMs))
  }
  return servePrimary(workers, settings.maxConnections, loaded?.config.model.threads === undefined)
}

async function serveAsWorker(options: ServeOptions): Promise<RunningServer> {
  const connections = Number(process.env.MLOPS_SERVE_WORKER_CONNECTIONS) || undefined
  const threads = Number(process.env.MLOPS_SERVE_WORKER_THREADS) || undefined
  const serving = await startServing({
    ...options,
    settings: {...options.settings, ...(connections ? {maxConnections: connections} : {})},
    intraOpThreads: threads,
    shared: primaryServices(),
  }).catch((error: unknown) => {
    // The primary reports it as its own, with the same code and exit code.
    const e = error instanceof MlopsError ? error : new MlopsError('SERVE_FAILED', String((error as Error).message))
    process.send!({type: 'mlops:failed', code: e.code, message: e.message, hint: e.hint, exitCode: e.exitCode})
    throw error
  })
  AggregatorRegistry.setRegistries([serving.server.metrics.registry])
  // Constructed for its side effect: in a worker, it starts answering the primary's requests for this registry.
  new AggregatorRegistry()
  // The primary gone (killed with -9): stop as if told to.
  process.once('disconnect', () => process.kill(process.pid, 'SIGTERM'))
  process.send!({
    type: 'mlops:ready',
    url: serving.url,
    identity: serving.servable.identity,
    warnings: serving.servable.warnings,
    setup: sharedSetup(serving.servable),
  } satisfies FromWorker)
  return single(serving, true, async (timeoutMs) => {
    const drained = await serving.stop(timeoutMs)
    if (process.connected) {
      process.send!({type: 'mlops:drained', drained} satisfies FromWorker)
      process.disconnect()
    }
    return drained
  })
}

/** One process's server as a RunningServer: alone, or one worker of several. */
function single(serving: Serving, worker: boolean, stop: RunningServer['stop']): RunningServer {
  const {identity, warnings} = serving.servable
  return {url: serving.url, port: serving.port, identity, warnings, workers: 1, worker, stop}
}

async function servePrimary(workers: number, maxConnections: number, ownThreads: boolean): Promise<RunningServer> {
  const env = (index: number) => ({
    MLOPS_SERVE_WORKER_INDEX: String(index),
    MLOPS_SERVE_WORKER_CONNECTIONS: String(Math.max(1, Math.ceil(maxConnections / workers))),
    // The cores shared out: N sessions each with a thread per core would fight over them.
    ...(ownThreads
      ? {MLOPS_SERVE_WORKER_THREADS: String(Math.max(1, Math.floor(availableParallelism() / workers)))}
      : {}),
  })
  const shared = new SharedState(new AggregatorRegistry())
  const running = new Map<Worker, number>()
  const drained: boolean[] = []
  let stopping = false
  const restarts: number[] = []

  const fork = (index: number): Worker => {
    const worker = cluster.fork(env(index))
    running.set(worker, index)
    shared.answer(worker, index)
    worker.on('message', (message: FromWorker) => {
      if (message.type === 'mlops:ready') shared.configure(message.setup)
      else if (message.type === 'mlops:drained') drained.push(message.drained)
    })
    return worker
  }

  // A worker's stdout would only repeat what the primary says (its ready line, its start failure in --json); its stderr
  // is the server log (errors while serving), kept.
  cluster.setupPrimary({stdio: ['ignore', 'ignore', 'inherit', 'ipc']})
  const ready = await new Promise<FromWorker & {type: 'mlops:ready'}>((resolve, reject) => {
    let count = 0
    // The first worker that cannot start fails them all at once: the others would fail the same way (a --host that is
    // not this machine's) or serve a port the user was told is not served; and a failed worker may not exit by itself.
    const fail = (error: MlopsError) => {
      cluster.off('exit', onExit)
      for (const worker of running.keys()) worker.process.kill('SIGKILL')
      reject(error)
    }
    const onExit = (_worker: Worker, code: number | null, signal: string | null) =>
      fail(new MlopsError('SERVE_FAILED', `a worker exited (${signal ?? `code ${code}`}) before it was ready`))
    cluster.on('exit', onExit)
    for (let i = 0; i < workers; i++)
      fork(i).on('message', (message: FromWorker) => {
        if (message.type === 'mlops:failed') {
          const {code, message: text, hint} = message
          return fail(message.exitCode === 2 ? new UsageError(code, text, {hint}) : new MlopsError(code, text, {hint}))
        }
        if (message.type !== 'mlops:ready' || ++count < workers) return
        cluster.off('exit', onExit)
        resolve(message)
      })
  })

  // A worker that dies (a crash, the OOM killer) is replaced; the others serve meanwhile.
  cluster.on('exit', (worker, code, signal) => {
    const index = running.get(worker)
    running.delete(worker)
    if (stopping || index === undefined) return
    shared.workerGone(index)
    const now = Date.now()
    restarts.push(now)
    while (restarts[0] < now - RESTART_WINDOW_MS) restarts.shift()
    if (restarts.length > workers) {
      process.stderr.write(`mlops serve: workers keep dying (last: ${signal ?? `code ${code}`}); stopping\n`)
      return void process.kill(process.pid, 'SIGTERM')
    }
    process.stderr.write(
      `mlops serve: worker pid ${worker.process.pid} ended (${signal ?? `code ${code}`}); restarting it\n`,
    )
    fork(index)
  })

  return {
    url: ready.url,
    port: Number(new URL(ready.url).port),
    identity: ready.identity,
    warnings: ready.warnings,
    workers,
    worker: false,
    async stop(timeoutMs = 30_000) {
      stopping = true
      const all = [...running.keys()]
      const exited = all.map((worker) => new Promise<void>((resolve) => worker.once('exit', () => resolve())))
      // All at once: each stops accepting and finishes what it has, as one server would.
      for (const worker of all) worker.process.kill('SIGTERM')
      const late = setTimeout(() => all.forEach((worker) => worker.process.kill('SIGKILL')), timeoutMs + 5000)
      await Promise.all(exited)
      clearTimeout(late)
      await shared.close()
      return drained.length === all.length && drained.every(Boolean)
    },
  }
}
