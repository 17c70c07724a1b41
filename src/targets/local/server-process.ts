// One model server (`mlops serve … --port 0 --json`) under the gateway: started, watched, restarted when it dies, drained when retired.
import {readFileSync} from 'node:fs'

import {Upstream} from '../../http/client.js'
import {type ProcessExit, type ServeChild, startServeChild} from '../../serve/child.js'
import {backgroundCommand} from '../../system/priority.js'

import type {Release} from '../../rollout/types.js'
import type {Invocation} from './invocation.js'

export interface ServerProcessOptions {
  release: Release
  projectDir: string
  cli: Invocation
  log: (line: string) => void
  /** Called whenever the child's pid changes (started, restarted, gone), so the gateway can record it. */
  onChange?: () => void
  readyTimeoutMs?: number
  /** The CA to check the server's certificate with: it serves HTTPS (serving.tls) when given, plain HTTP otherwise. */
  upstreamCa?: string
  /** Given the server in its environment: it answers only requests carrying it (x-mlops-gateway-token). */
  gatewayToken?: string
  /** Start at background CPU priority (SCHED_IDLE and nice 10 from the command line, so every thread has it; not on Windows). */
  background?: boolean
}

const MAX_BACKOFF_MS = 30_000

/**
 * The gateway's keep-alive pool to a model server (the gateway process's, or a gateway worker's): HTTPS checked against
 * `caPath` when given. Bounded in connections and in time, whatever the server does.
 */
export function modelServerPool(url: string, caPath?: string): Upstream {
  const ca = caPath ? readFileSync(caPath) : undefined
  return new Upstream(new URL(url), {connections: 128, idleMs: 4000, timeoutMs: 120_000, ca})
}

/** The identity of a model server: a release served the same way, at the same priority, is the same server. */
export function serverKey(release: Release, background = false): string {
  return JSON.stringify([
    release.version,
    release.ref ?? null,
    release.model ?? null,
    release.digest ?? null,
    release.env ?? null,
    background,
  ])
}

export class ModelServerProcess {
  readonly release: Release
  readonly background: boolean
  pool?: Upstream
  url?: string
  pid?: number
  ready = false
  restarts = 0
  /** Gateway requests (client or mirror) on their way to this server. */
  inFlight = 0
  private child?: ServeChild
  private stopping = false
  /** Aborts a start still waiting for its ready line when the server is retired meanwhile. */
  private readonly stopped = new AbortController()
  private backoffMs = 500
  private restartTimer?: NodeJS.Timeout
  private idleWaiters: (() => void)[] = []

  constructor(private readonly options: ServerProcessOptions) {
    this.release = options.release
    this.background = Boolean(options.background) && process.platform !== 'win32'
  }

  get label(): string {
    return this.release.version
  }

  /** Spawns the server and resolves once it printed its ready line; rejects with its stderr when it exits first. */
  async start(): Promise<void> {
    const {release, cli, projectDir} = this.options
    const target = release.model
      ? ['--model', release.model, '--model-version', release.version]
      : [release.ref ?? release.version]
    // The gateway, stable and candidate share this machine: pool threads spinning between runs would take its cores.
    // The gateway checks callers and names them in x-mlops-caller; its servers, on 127.0.0.1, log whom it names.
    const access = ['--auth', 'none', '--trust-caller-header', ...(this.options.upstreamCa ? [] : ['--plain-http'])]
    // One process each: the gateway shares the cores with its model servers, and is then the bottleneck (measured on 2
    // cores under wrk at c=16: 3.9k req/s with one process per model server, 1.7k with two workers each).
    const args = [
      ...[...cli.args, ...target, '--port', '0', '--json', '--no-thread-spinning', '--dir', projectDir],
      ...access,
      ...['--workers', '1'],
    ]
    const {command, args: argv} = this.background
      ? await backgroundCommand(cli.command, args)
      : {command: cli.command, args}
    const log = (line: string) => this.options.log(`[${release.version}] ${line}`)
    const served = await startServeChild({
      command,
      args: argv,
      cwd: projectDir,
      env: {
        ...process.env,
        ...release.env,
        CI: 'true',
        ...(this.options.gatewayToken ? {MLOPS_GATEWAY_TOKEN: this.options.gatewayToken} : {}),
      },
      timeoutMs: this.options.readyTimeoutMs ?? 120_000,
      name: `the model server for ${release.version}`,
      hint: `Try it alone: "mlops serve ${target.join(' ')}".`,
      onLine: log,
      signal: this.stopped.signal,
    })
    this.child = served
    const {ready} = served
    this.url = ready.url
    this.pid = ready.pid
    this.pool = modelServerPool(ready.url, this.options.upstreamCa)
    this.ready = true
    this.backoffMs = 500
    this.options.onChange?.()
    void served.exited.then((exit) => this.onUnexpectedExit(served, exit))
  }

  private onUnexpectedExit(child: ServeChild, {code, signal}: ProcessExit): void {
    if (this.stopping || child !== this.child) return
    this.ready = false
    this.options.log(
      `[${this.release.version}] model server pid ${this.pid} exited (${signal ?? `code ${code}`}); restarting in ${this.backoffMs} ms`,
    )
    const pool = this.pool
    this.pool = undefined
    this.pid = undefined
    void pool?.close()
    this.options.onChange?.()
    this.restartTimer = setTimeout(() => void this.restart(), this.backoffMs)
    this.backoffMs = Math.min(MAX_BACKOFF_MS, this.backoffMs * 2)
  }

  private async restart(): Promise<void> {
    if (this.stopping) return
    this.restarts++
    try {
      await this.start()
    } catch (error) {
      this.options.log(`[${this.release.version}] restart failed: ${(error as Error).message}`)
      if (!this.stopping) this.restartTimer = setTimeout(() => void this.restart(), this.backoffMs)
      this.backoffMs = Math.min(MAX_BACKOFF_MS, this.backoffMs * 2)
    }
  }

  acquire(): void {
    this.inFlight++
  }

  releaseOne(): void {
    this.inFlight--
    if (this.inFlight === 0 && this.idleWaiters.length > 0) {
      for (const wake of this.idleWaiters.splice(0)) wake()
    }
  }

  /**
   * Retires the server: the gateway has already stopped routing to it, so wait for requests still on their way, then
   * SIGTERM (the server drains its own in-flight requests) and wait for it to exit.
   */
  async stop(drainMs = 30_000): Promise<void> {
    this.stopping = true
    this.stopped.abort()
    clearTimeout(this.restartTimer)
    if (this.inFlight > 0)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, drainMs)
        this.idleWaiters.push(() => (clearTimeout(timer), resolve()))
      })
    this.ready = false
    await this.child?.stop(drainMs)
    await this.pool?.close()
    this.pool = undefined
    this.pid = undefined
    this.options.onChange?.()
  }
}
