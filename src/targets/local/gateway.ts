// The local gateway: routes client traffic to the stable and candidate model servers (full, shadow, canary) and measures both.
import {randomBytes} from 'node:crypto'
import {type IncomingMessage, type Server, type ServerResponse, createServer} from 'node:http'
import type {AddressInfo} from 'node:net'

import {Authenticator, GATEWAY_TOKEN_HEADER} from '../../auth/authenticator.js'
import type {AuthSettings} from '../../auth/config.js'
import {tokenCheck} from '../../auth/token.js'
import {type TlsSettings, readTls, watchTls} from '../../http/tls.js'
import {HttpServer} from '../../http/server.js'
import {writeFileAtomically} from '../../system/atomic.js'
import type {DeployPaths} from '../../rollout/state.js'
import {processStart} from '../../system/process.js'
import {Serial} from '../../system/serial.js'
import type {Measurement, RolloutState, Stage} from '../../rollout/types.js'
import {type ServerSpec, type TargetServer, serversOf} from '../types.js'
import {FrontCluster, type RoutesMessage} from './front-cluster.js'
import {type ForwardedRequest, type FrontRoutes, frontHandler} from './front.js'
import type {Invocation} from './invocation.js'
import {ShadowMirror} from './mirror.js'
import {OutcomeWatcher} from './outcomes.js'
import {ModelServerProcess, serverKey} from './server-process.js'
import {StepWindow} from './stats.js'

export interface GatewayOptions {
  projectDir: string
  paths: DeployPaths
  cli: Invocation
  log: (line: string) => void
  /** Largest client request body, bytes. */
  maxBodyBytes?: number
  /** HTTPS on the client port, the files re-read when they change. */
  tls?: TlsSettings
  /** Client connections open at once (serving.max_connections); past it new ones are closed. */
  maxConnections?: number
  /** Processes serving the client port (deploy.gateway_workers); above 1, workers of this one (front-cluster.ts). */
  workers?: number
}

/** What `GET /v1/status` on the control API answers. */
export interface GatewayStatus {
  pid: number
  port: number
  controlPort: number
  startedAt: string
  revision?: number
  servers: TargetServer[]
  measurement: Measurement
  mirrorsInFlight: number
}

/** The gateway file (mode 0600): how commands find and authenticate to the running gateway. */
export interface GatewayInfo {
  pid: number
  started?: string
  port: number
  controlPort: number
  token: string
  /** What the model servers ask of the gateway's requests (x-mlops-gateway-token). */
  upstreamToken: string
  startedAt: string
}

interface Routes extends FrontRoutes {
  stable: ModelServerProcess
  candidate?: ModelServerProcess
  stage: Stage
  weight: number
  shadowShare: number
  mirrorMaxInFlight: number
  mirrorConcurrency: number
  stickyHeader?: string
  scoreTolerance: number
  window: StepWindow
}

export class Gateway {
  private readonly processes = new Map<string, ModelServerProcess>()
  private readonly retiring = new Set<ModelServerProcess>()
  private routes?: Routes
  private state?: RolloutState
  /** Checks client callers when the rollout state asks for it (serving.auth, deploy --auth). */
  private auth?: Authenticator
  private readonly outcomes = new OutcomeWatcher((line) => this.options.log(line))
  /** The mirror thread, started with the first shadow stage. */
  private mirror?: ShadowMirror
  /** Changes to the servers and routes, one at a time. */
  private readonly changes = new Serial()
  /** The client port: served here, or by workers (deploy.gateway_workers). */
  private readonly client?: HttpServer
  private readonly front?: FrontCluster
  private readonly control: Server
  private readonly token = randomBytes(32).toString('hex')
  private readonly authorizedControl = tokenCheck(this.token)
  /** What the model servers ask of the gateway (x-mlops-gateway-token): given them in their environment. */
  private readonly upstreamToken = randomBytes(32).toString('hex')
  private readonly startedAt = new Date().toISOString()
  private readonly maxBodyBytes: number
  private port = 0
  private controlPort = 0
  /** Control routes the process around the gateway adds (reconcile, shutdown). */
  private stopWatchingTls?: () => void
  private readonly controlHandlers = new Map<string, (body: unknown) => Promise<unknown>>()

  constructor(private readonly options: GatewayOptions) {
    this.maxBodyBytes = options.maxBodyBytes ?? 64 * 1024 * 1024
    const tls = options.tls
    const limits = {
      maxBodyBytes: this.maxBodyBytes,
      maxConnections: options.maxConnections,
      keepAliveTimeoutMs: 65_000,
      ...(tls ? {tls: readTls(tls)} : {}),
    }
    this.control = createServer((req, res) => void this.onControlRequest(req, res))
    if ((options.workers ?? 1) > 1) {
      this.front = new FrontCluster({
        count: options.workers!,
        settings: {
          maxBodyBytes: this.maxBodyBytes,
          maxConnections: options.maxConnections,
          tls,
          upstreamToken: this.upstreamToken,
        },
        log: options.log,
        routes: () => this.routesMessage(),
        counted: (id, since, counts) => {
          if (this.routes?.window.since === since) this.routes.window.workers.set(id, counts)
        },
        mirror: ({request, status, answer}) => {
          const routes = this.routes
          if (routes?.stage === 'shadow') this.startMirror(routes, request, status, answer, true)
        },
      })
      return
    }
    const client = new HttpServer(
      limits,
      frontHandler<Routes>({
        forwardHeaders: [GATEWAY_TOKEN_HEADER, this.upstreamToken],
        routes: () => this.routes,
        auth: () => this.auth,
        measured: (routes, role, ms, failed) =>
          (role === 'candidate' ? routes.window.candidate : routes.window.stable).record(ms, failed),
        answeredByStable: (routes, request, answer) => {
          if (routes.stage === 'shadow') this.startMirror(routes, request, answer.status, answer.body)
        },
      }),
    )
    this.client = client
    if (tls) this.stopWatchingTls = watchTls(tls, (context) => client.setSecureContext(context), options.log)
  }

  /** Binds the client port (host 127.0.0.1) and a free control port on 127.0.0.1, and writes the gateway file. */
  async listen(port: number, host = '127.0.0.1'): Promise<GatewayInfo> {
    this.port = this.front ? await this.front.start(port, host) : (await this.client!.listen(port, host)).port
    this.controlPort = await bind(this.control, 0, '127.0.0.1')
    const info: GatewayInfo = {
      pid: process.pid,
      started: processStart(process.pid),
      port: this.port,
      controlPort: this.controlPort,
      token: this.token,
      upstreamToken: this.upstreamToken,
      startedAt: this.startedAt,
    }
    await writeFileAtomically(this.options.paths.gateway, JSON.stringify(info, null, 2) + '\n', 0o600)
    return info
  }

  onControl(route: string, handler: (body: unknown) => Promise<unknown>): void {
    this.controlHandlers.set(route, handler)
  }

  get revision(): number | undefined {
    return this.state?.revision
  }

  get current(): RolloutState | undefined {
    return this.state
  }

  /** Starts (or keeps) each model server and waits until all are ready; routing does not change. */
  prepare(servers: ServerSpec[]): Promise<void> {
    return this.changes.run(async () => {
      await Promise.all(servers.map((server) => this.processFor(server)))
    })
  }

  /**
   * The reconcile step: servers for the desired releases up and ready first, then routing switched in one assignment,
   * then servers no longer wanted retired once the requests already sent to them are answered.
   */
  apply(state: RolloutState): Promise<void> {
    return this.changes.run(async () => {
      await this.useAuth(state.auth)
      const servers = serversOf(state)
      const stable = await this.processFor(servers.stable)
      const candidate = servers.candidate ? await this.processFor(servers.candidate) : undefined
      const window =
        this.routes && this.routes.window.since === state.stepStartedAt
          ? this.routes.window
          : new StepWindow(state.stepStartedAt)
      this.routes = {
        stable,
        candidate,
        stage: state.stage,
        weight: state.weight,
        shadowShare: state.shadowShare,
        mirrorMaxInFlight: state.mirrorMaxInFlight,
        mirrorConcurrency: state.mirrorConcurrency,
        stickyHeader: state.stickyHeader,
        scoreTolerance: state.analysis.scoreTolerance,
        window,
      }
      this.state = state
      // Workers take the new routes before a server they may still send to is retired.
      await this.front?.publish()
      this.outcomes.use(state)
      if (state.stage === 'shadow') this.mirror ??= new ShadowMirror({log: this.options.log})
      this.mirror?.use(state.stage === 'shadow' ? window : undefined)
      const wanted = new Set([stable, candidate].filter(Boolean))
      const retired = [...this.processes.entries()].filter(([, proc]) => !wanted.has(proc))
      for (const [key, proc] of retired) {
        this.processes.delete(key)
        this.retiring.add(proc)
      }
      await Promise.all(
        retired.map(async ([, proc]) => {
          await proc.stop()
          this.retiring.delete(proc)
        }),
      )
      await this.recordServers()
    })
  }

  measurement(): Measurement {
    const routes = this.routes
    if (!routes) return {error: 'the gateway has not applied a rollout yet'}
    const metrics = routes.window.snapshot(Boolean(routes.candidate?.ready), routes.stage === 'shadow')
    const outcomes = this.outcomes.snapshot(metrics.since)
    return {metrics: outcomes ? {...metrics, outcomes} : metrics}
  }

  status(): GatewayStatus {
    const routes = this.routes
    const describe = (proc: ModelServerProcess, role: TargetServer['role']): TargetServer => ({
      version: proc.release.version,
      role,
      ...(proc.pid ? {pid: proc.pid} : {}),
      ...(proc.url ? {url: proc.url} : {}),
      ...(proc.background ? {background: true} : {}),
      ready: proc.ready,
      restarts: proc.restarts,
      inFlight: proc.inFlight + (this.front?.inFlight(proc.url) ?? 0),
    })
    const servers = [
      ...(routes ? [describe(routes.stable, 'stable')] : []),
      ...(routes?.candidate ? [describe(routes.candidate, 'candidate')] : []),
      ...[...this.retiring].map((proc) => describe(proc, 'retiring')),
    ]
    return {
      pid: process.pid,
      port: this.port,
      controlPort: this.controlPort,
      startedAt: this.startedAt,
      revision: this.state?.revision,
      servers,
      measurement: this.measurement(),
      mirrorsInFlight: this.mirror?.inFlight ?? 0,
    }
  }

  /** Stops taking traffic, retires every server and closes both ports. */
  async close(): Promise<void> {
    await this.changes.run(async () => {
      void this.client?.close()
      await this.front?.close()
      const all = [...this.processes.values(), ...this.retiring]
      this.processes.clear()
      this.routes = undefined
      await Promise.all(all.map((proc) => proc.stop(10_000)))
      await this.recordServers()
    })
    await this.mirror?.close()
    this.stopWatchingTls?.()
    this.auth?.close()
    this.outcomes.close()
    this.control.closeAllConnections()
    await new Promise<void>((resolve) => this.control.close(() => resolve()))
  }

  /** A new authenticator when the settings changed; the key file it reads is watched for revocations meanwhile. */
  private async useAuth(settings: AuthSettings | undefined): Promise<void> {
    if (JSON.stringify(settings) === JSON.stringify(this.auth?.settings)) return
    const next = settings && settings.mode !== 'none' ? new Authenticator(settings) : undefined
    await next?.start()
    this.auth?.close()
    this.auth = next
  }

  /**
   * The running server for a spec, or a new one. A shadow candidate taking traffic becomes a new server at normal priority
   * (an unprivileged process cannot raise its priority back): it is ready before routing moves, like any replacement.
   */
  private async processFor({release, background}: ServerSpec): Promise<ModelServerProcess> {
    const key = serverKey(release, background)
    const existing = this.processes.get(key)
    if (existing) return existing
    const proc = new ModelServerProcess({
      release,
      background,
      projectDir: this.options.projectDir,
      cli: this.options.cli,
      log: this.options.log,
      onChange: () => {
        void this.recordServers()
        // A server restarted (a new URL) or gone: the workers follow.
        void this.front?.publish()
      },
      upstreamCa: this.options.tls?.upstreamCa,
      gatewayToken: this.upstreamToken,
    })
    await proc.start()
    this.processes.set(key, proc)
    return proc
  }

  /** The model servers' pids on disk, so a gateway that replaces one killed with -9 can stop the orphans. */
  private async recordServers(): Promise<void> {
    const pids = [...this.processes.values(), ...this.retiring]
      .filter((p) => p.pid)
      .map((p) => ({pid: p.pid!, started: processStart(p.pid!), version: p.release.version}))
    await writeFileAtomically(this.options.paths.servers, JSON.stringify(pids) + '\n', 0o600).catch((error: Error) =>
      this.options.log(`could not record model server pids: ${error.message}`),
    )
  }

  /**
   * Hands a prediction and stable's answer to the mirror thread, which sends the copy to the candidate and compares. Dropped
   * when too many are in flight: a slow candidate costs the client path one counter.
   */
  private startMirror(
    routes: Routes,
    {method, path, headers, body}: ForwardedRequest,
    status: number,
    answer: Buffer,
    sampled = false,
  ): void {
    const candidate = routes.candidate
    const share = routes.shadowShare
    if (!candidate || (!sampled && (share <= 0 || (share < 1 && Math.random() >= share)))) return
    const window = routes.window
    if (
      !this.mirror?.running ||
      !candidate.ready ||
      !candidate.url ||
      this.mirror.inFlight >= routes.mirrorMaxInFlight
    ) {
      window.shadow.dropped++
      return
    }
    window.shadow.mirrored++
    this.mirror.send({
      url: candidate.url,
      concurrency: routes.mirrorConcurrency,
      method,
      path,
      headers: [...headers, 'x-mlops-shadow', '1'],
      body,
      status,
      answer,
      tolerance: routes.scoreTolerance,
    })
  }

  /** The routes as the workers take them: where each version's server listens, and what the step asks of them. */
  private routesMessage(): RoutesMessage | undefined {
    const routes = this.routes
    if (!routes) return undefined
    const describe = (proc: ModelServerProcess) => ({
      version: proc.release.version,
      ...(proc.ready && proc.url ? {url: proc.url} : {}),
      ready: proc.ready,
    })
    return {
      stable: describe(routes.stable),
      ...(routes.candidate ? {candidate: describe(routes.candidate)} : {}),
      stage: routes.stage,
      weight: routes.weight,
      ...(routes.stickyHeader ? {stickyHeader: routes.stickyHeader} : {}),
      mirrorShare: routes.stage === 'shadow' ? routes.shadowShare : 0,
      since: routes.window.since,
      ...(this.auth ? {auth: this.auth.settings} : {}),
    }
  }

  private async onControlRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!this.authorized(req.headers.authorization))
      return sendError(
        res,
        401,
        'UNAUTHORIZED',
        'the control API needs "authorization: Bearer <token>" from the gateway file',
      )
    const route = `${req.method} ${(req.url ?? '/').split('?')[0]}`
    try {
      const input = await readJsonBody(req, 1024 * 1024)
      if (route === 'GET /v1/status') return sendJson(res, 200, this.status())
      const handler = this.controlHandlers.get(route)
      if (!handler) return sendError(res, 404, 'NOT_FOUND', `no control route ${route}`)
      sendJson(res, 200, (await handler(input)) ?? {ok: true})
    } catch (error) {
      const e = error as {code?: string; message?: string; hint?: string; status?: number}
      sendJson(res, e.status ?? 500, {
        error: {
          code: e.code ?? 'GATEWAY_ERROR',
          message: e.message ?? String(error),
          ...(e.hint ? {hint: e.hint} : {}),
        },
      })
    }
  }

  private authorized(header: string | undefined): boolean {
    return this.authorizedControl(header?.startsWith('Bearer ') ? header.slice(7) : '')
  }
}

/** A control request the gateway cannot act on (not JSON, or not the shape its route takes): a 400. */
export function badControlRequest(message: string): Error & {status: number; code: string} {
  return Object.assign(new Error(message), {status: 400, code: 'BAD_REQUEST'})
}

/** The body as JSON (undefined when empty): a 400 when it is not JSON, a 413 past `limit` bytes. */
async function readJsonBody(req: IncomingMessage, limit: number): Promise<unknown> {
  const text = (await readBody(req, limit)).toString('utf8')
  if (!text) return undefined
  try {
    return JSON.parse(text) as unknown
  } catch {
    throw badControlRequest('the request body is not JSON')
  }
}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    req.on('data', (chunk: Buffer) => {
      size += chunk.length
      if (size > limit) {
        req.destroy()
        reject(
          Object.assign(new Error(`the request body is larger than ${limit} bytes`), {
            status: 413,
            code: 'PAYLOAD_TOO_LARGE',
          }),
        )
        return
      }
      chunks.push(chunk)
    })
    req.on('end', () => resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)))
    req.on('error', reject)
  })
}

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value)
  res.writeHead(status, {'content-type': 'application/json', 'content-length': Buffer.byteLength(body)})
  res.end(body)
}

function sendError(res: ServerResponse, status: number, code: string, message: string): void {
  sendJson(res, status, {error: {code, message}})
}

function bind(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve((server.address() as AddressInfo).port)
    })
  })
}
