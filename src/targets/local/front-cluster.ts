// deploy.gateway_workers: the gateway's client port served by that many worker processes (node:cluster, one port), for a
// machine where one gateway process is the bottleneck. The gateway process keeps everything else: the model servers,
// routing decisions, the step's measurements, shadow mirroring, the control API. It sends each worker the routes (model
// server URLs, stage, weight, auth settings) and waits for every worker to switch before it retires a server; each worker
// forwards with its own pools, reports its counts every FLUSH_MS, and hands predictions to mirror back to the gateway.
import cluster, {type Worker} from 'node:cluster'

import {AggregatorRegistry} from 'prom-client'

import {Authenticator, GATEWAY_TOKEN_HEADER} from '../../auth/authenticator.js'
import type {AuthSettings} from '../../auth/config.js'
import type {Upstream} from '../../http/client.js'
import {HttpServer} from '../../http/server.js'
import {type TlsSettings, readTls, watchTls} from '../../http/tls.js'
import type {Stage} from '../../rollout/types.js'
import {SharedState, primaryServices} from '../../serve/shared.js'
import {type Backend, type ForwardedRequest, type FrontRoutes, frontHandler} from './front.js'
import {modelServerPool} from './server-process.js'
import {type CounterState, StepWindow} from './stats.js'

/** How the workers serve the client port: what the gateway process would use itself. */
export interface FrontSettings {
  port: number
  host: string
  maxBodyBytes: number
  /** Per worker. */
  maxConnections?: number
  tls?: TlsSettings
  /** Sent with every forwarded request (x-mlops-gateway-token): the model servers answer the gateway only. */
  upstreamToken: string
}

/** A model server as the workers are told of it. */
export interface BackendRoute {
  version: string
  url?: string
  ready: boolean
}

/** Where the workers send requests now. */
export interface RoutesMessage {
  stable: BackendRoute
  candidate?: BackendRoute
  stage: Stage
  weight: number
  stickyHeader?: string
  /** Share of stable's predictions handed back for mirroring (shadow stage), else 0. */
  mirrorShare: number
  /** The step's start: counts restart from zero when it changes. */
  since: string
  auth?: AuthSettings
}

/** A prediction for the gateway to mirror to the candidate, with stable's answer. */
export interface MirrorOffer {
  request: ForwardedRequest
  status: number
  answer: Buffer
}

type ToWorker = {type: 'gw:routes'; seq: number; routes: RoutesMessage} | {type: 'gw:close'}
type FromWorker =
  | {type: 'gw:listening'; port: number}
  | {type: 'gw:failed'; message: string}
  | {type: 'gw:ack'; seq: number}
  | {
      type: 'gw:stats'
      since: string
      stable: CounterState
      candidate: CounterState
      inFlight: Record<string, number>
    }
  | {type: 'gw:mirror'; request: ForwardedRequest; status: number; answer: Uint8Array}

const ENV = 'MLOPS_GATEWAY_FRONT'
/** How often a worker reports its counts: the analysis sees requests this late at most. */
const FLUSH_MS = 200
/** How long the gateway waits for every worker to take new routes before it goes on (a stuck worker is replaced). */
const ACK_TIMEOUT_MS = 5000
const MAX_BACKOFF_MS = 30_000

export interface FrontClusterOptions {
  count: number
  settings: Omit<FrontSettings, 'port' | 'host'>
  log: (line: string) => void
  /** The routes to send a worker now (the latest, to one that starts later too). */
  routes: () => RoutesMessage | undefined
  /** A worker's counts for the step that started at `since`. */
  counted: (workerId: number, since: string, counts: Record<'stable' | 'candidate', CounterState>) => void
  mirror: (offer: MirrorOffer) => void
}

/** In the gateway process: the workers, forked, told the routes, replaced when they die, and closed together. */
export class FrontCluster {
  private readonly workers = new Map<Worker, {listening: boolean; inFlight: Record<string, number>}>()
  private readonly acks = new Map<number, {waiting: Set<Worker>; done: () => void}>()
  private readonly shared = new SharedState(new AggregatorRegistry())
  private seq = 0
  private closing = false
  private backoffMs = 500
  private address = {port: 0, host: '127.0.0.1'}

  constructor(private readonly options: FrontClusterOptions) {}

  /** Forks the workers and resolves with the port they serve once all listen; rejects when one cannot. */
  async start(port: number, host: string): Promise<number> {
    this.address = {port, host}
    // advanced: Buffers (request and answer bodies to mirror) cross as bytes, not as JSON arrays of numbers.
    cluster.setupPrimary({stdio: ['ignore', 'ignore', 'inherit', 'ipc'], serialization: 'advanced'})
    const ports = Array.from({length: this.options.count}, () => this.fork())
    try {
      const [port] = await Promise.all(ports)
      return port
    } catch (error) {
      this.closing = true
      for (const worker of this.workers.keys()) worker.process.kill('SIGKILL')
      throw error
    }
  }

  /** Requests the workers have on their way to the model server at `url`. */
  inFlight(url: string | undefined): number {
    if (!url) return 0
    let sum = 0
    for (const {inFlight} of this.workers.values()) sum += inFlight[url] ?? 0
    return sum
  }

  /** Sends the current routes to every worker; resolves once all took them (or ACK_TIMEOUT_MS passed). */
  publish(): Promise<void> {
    const routes = this.options.routes()
    if (!routes || this.closing) return Promise.resolve()
    const seq = ++this.seq
    const waiting = new Set([...this.workers.keys()].filter((worker) => worker.isConnected()))
    if (waiting.size === 0) return Promise.resolve()
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.acks.delete(seq)
        this.options.log(`${waiting.size} gateway worker(s) did not take routes within ${ACK_TIMEOUT_MS} ms`)
        resolve()
      }, ACK_TIMEOUT_MS)
      this.acks.set(seq, {
        waiting,
        done: () => {
          clearTimeout(timer)
          this.acks.delete(seq)
          resolve()
        },
      })
      for (const worker of waiting) this.tell(worker, {type: 'gw:routes', seq, routes})
    })
  }

  /** Every worker stops taking connections, answers what it holds, and exits; one that takes too long is killed. */
  async close(timeoutMs = 10_000): Promise<void> {
    this.closing = true
    const all = [...this.workers.keys()]
    const exited = all.map((worker) => new Promise<void>((resolve) => worker.once('exit', () => resolve())))
    for (const worker of all) this.tell(worker, {type: 'gw:close'})
    const late = setTimeout(() => all.forEach((worker) => worker.process.kill('SIGKILL')), timeoutMs)
    await Promise.all(exited)
    clearTimeout(late)
    await this.shared.close()
  }

  private tell(worker: Worker, message: ToWorker): void {
    if (worker.isConnected()) worker.send(message)
  }

  private fork(): Promise<number> {
    const {settings, count} = this.options
    const perWorker = settings.maxConnections ? Math.max(1, Math.ceil(settings.maxConnections / count)) : undefined
    const front: FrontSettings = {...settings, ...this.address, maxConnections: perWorker}
    const worker = cluster.fork({[ENV]: JSON.stringify(front)})
    const entry = {listening: false, inFlight: {}}
    this.workers.set(worker, entry)
    this.shared.answer(worker, worker.id)
    return new Promise<number>((resolve, reject) => {
      worker.on('message', (message: FromWorker) => {
        switch (message?.type) {
          case 'gw:listening': {
            entry.listening = true
            // A replacement listens on the port the first ones got (port 0 asked for any).
            this.address.port = message.port
            this.backoffMs = 500
            const routes = this.options.routes()
            if (routes) this.tell(worker, {type: 'gw:routes', seq: this.seq, routes})
            return resolve(message.port)
          }
          case 'gw:failed':
            return reject(new Error(message.message))
          case 'gw:ack':
            return this.acked(worker)
          case 'gw:stats':
            entry.inFlight = message.inFlight
            return this.options.counted(worker.id, message.since, message)
          case 'gw:mirror':
            return this.options.mirror({
              request: {...message.request, body: asBuffer(message.request.body)},
              status: message.status,
              answer: asBuffer(message.answer),
            })
        }
      })
      worker.once('exit', (code, signal) => {
        this.workers.delete(worker)
        this.acked(worker)
        if (!entry.listening)
          reject(new Error(`a gateway worker exited (${signal ?? `code ${code}`}) before it listened`))
        if (this.closing || !entry.listening) return
        this.options.log(`gateway worker pid ${worker.process.pid} ended (${signal ?? `code ${code}`}); restarting it`)
        const delay = this.backoffMs
        this.backoffMs = Math.min(MAX_BACKOFF_MS, this.backoffMs * 2)
        setTimeout(() => {
          if (this.closing) return
          this.fork().catch((error: Error) => this.options.log(`could not restart a gateway worker: ${error.message}`))
        }, delay).unref()
      })
    })
  }

  /** `worker` took the latest routes, or is gone: each publish waiting on it stops waiting. */
  private acked(worker: Worker): void {
    for (const {waiting, done} of [...this.acks.values()]) {
      waiting.delete(worker)
      if (waiting.size === 0) done()
    }
  }
}

/** IPC's advanced serialization hands a Buffer over as a Uint8Array. */
function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}

/** A model server as a worker knows it: the routes' URL, and this worker's own pool to it. */
class RemoteBackend implements Backend {
  readonly release: {version: string}
  readonly url?: string
  readonly pool?: Upstream
  ready: boolean
  inFlight = 0

  constructor(route: BackendRoute, caPath: string | undefined) {
    this.release = {version: route.version}
    this.url = route.url
    this.ready = route.ready
    if (route.url) this.pool = modelServerPool(route.url, caPath)
  }

  acquire(): void {
    this.inFlight++
  }

  releaseOne(): void {
    this.inFlight--
  }
}

type WorkerRoutes = FrontRoutes & {mirrorShare: number; since: string}

/** In a gateway worker: serves the client port with the routes the gateway sends, until told to close. */
export async function runFrontWorker(): Promise<void> {
  const settings = JSON.parse(process.env[ENV] ?? '{}') as FrontSettings
  const send = (message: FromWorker) => process.connected && process.send!(message)
  const takeToken = primaryServices().takeToken
  let routes: WorkerRoutes | undefined
  let auth: Authenticator | undefined
  let window = new StepWindow('')
  let dirty = false
  const backends = new Map<string, RemoteBackend>()

  const backendFor = (route: BackendRoute): RemoteBackend => {
    const key = `${route.version} ${route.url ?? ''}`
    let backend = backends.get(key)
    if (!backend) backends.set(key, (backend = new RemoteBackend(route, settings.tls?.upstreamCa)))
    backend.ready = route.ready
    return backend
  }

  const use = async (next: RoutesMessage): Promise<void> => {
    if (JSON.stringify(next.auth) !== JSON.stringify(auth?.settings)) {
      const fresh = next.auth && next.auth.mode !== 'none' ? new Authenticator(next.auth, takeToken) : undefined
      await fresh?.start()
      auth?.close()
      auth = fresh
    }
    const stable = backendFor(next.stable)
    const candidate = next.candidate ? backendFor(next.candidate) : undefined
    if (next.since !== window.since) {
      flush()
      window = new StepWindow(next.since)
    }
    routes = {
      stable,
      candidate,
      stage: next.stage,
      weight: next.weight,
      stickyHeader: next.stickyHeader,
      mirrorShare: next.mirrorShare,
      since: next.since,
    }
    // Pools to servers no longer routed to finish what they carry, then close.
    for (const [key, backend] of backends)
      if (backend !== stable && backend !== candidate) {
        backends.delete(key)
        void backend.pool?.end()
      }
  }

  const flush = () => {
    if (!dirty) return
    dirty = false
    const inFlight: Record<string, number> = {}
    for (const backend of backends.values()) if (backend.url) inFlight[backend.url] = backend.inFlight
    send({
      type: 'gw:stats',
      since: window.since,
      stable: window.stable.state(),
      candidate: window.candidate.state(),
      inFlight,
    })
  }
  const flusher = setInterval(flush, FLUSH_MS)

  const server = new HttpServer(
    {
      maxBodyBytes: settings.maxBodyBytes,
      maxConnections: settings.maxConnections,
      keepAliveTimeoutMs: 65_000,
      ...(settings.tls ? {tls: readTls(settings.tls)} : {}),
    },
    frontHandler<WorkerRoutes>({
      forwardHeaders: [GATEWAY_TOKEN_HEADER, settings.upstreamToken],
      routes: () => routes,
      auth: () => auth,
      measured: (current, role, ms, failed) => {
        if (current.since !== window.since) return
        ;(role === 'candidate' ? window.candidate : window.stable).record(ms, failed)
        dirty = true
      },
      answeredByStable: (current, request, answer) => {
        const share = current.mirrorShare
        if (share <= 0 || (share < 1 && Math.random() >= share)) return
        send({type: 'gw:mirror', request, status: answer.status, answer: answer.body})
      },
    }),
  )
  const stopWatching = settings.tls
    ? watchTls(
        settings.tls,
        (context) => server.setSecureContext(context),
        (line) => process.stderr.write(`${line}\n`),
      )
    : undefined

  let closing = false
  const close = async () => {
    if (closing) return
    closing = true
    stopWatching?.()
    await server.close()
    clearInterval(flusher)
    flush()
    auth?.close()
    process.exit(0)
  }
  process.on('message', (message: ToWorker) => {
    if (message?.type === 'gw:close') return void close()
    if (message?.type !== 'gw:routes') return
    use(message.routes).then(
      () => send({type: 'gw:ack', seq: message.seq}),
      (error: Error) => process.stderr.write(`gateway worker: could not take the routes: ${error.message}\n`),
    )
  })
  // The gateway gone (killed with -9): nothing tells this worker where to send requests any more.
  process.once('disconnect', () => void close())
  process.once('SIGTERM', () => void close())
  try {
    const {port} = await server.listen(settings.port, settings.host)
    send({type: 'gw:listening', port})
  } catch (error) {
    send({type: 'gw:failed', message: (error as Error).message})
    process.exit(1)
  }
}
