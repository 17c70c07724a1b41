// Commands' side of the gateway: find it from its file, talk to its control API with the token, start it detached, stop it.
import type {TlsSettings} from '../../http/tls.js'
import {openSync, closeSync, readFileSync, readdirSync} from 'node:fs'
import {readFile, unlink} from 'node:fs/promises'
import {resolve} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import {request} from 'undici'

import {MlopsError, UsageError} from '../../errors.js'
import {readJson} from '../../system/atomic.js'
import {start} from '../../system/exec.js'
import type {DeployPaths} from '../../rollout/state.js'
import {isAlive, processStart} from '../../system/process.js'
import type {ServerSpec} from '../types.js'
import type {GatewayInfo, GatewayStatus} from './gateway.js'
import {gatewayInvocation} from './invocation.js'

export class GatewayClient {
  constructor(readonly info: GatewayInfo) {}

  status(): Promise<GatewayStatus> {
    return this.call<GatewayStatus>('GET', '/v1/status', undefined, 5000)
  }

  prepare(servers: ServerSpec[]): Promise<void> {
    return this.call('POST', '/v1/prepare', {servers}, 180_000)
  }

  reconcile(): Promise<{revision?: number}> {
    return this.call('POST', '/v1/reconcile', {}, 180_000)
  }

  shutdown(): Promise<void> {
    return this.call('POST', '/v1/shutdown', {}, 5000)
  }

  private async call<T>(method: 'GET' | 'POST', path: string, body: unknown, timeoutMs: number): Promise<T> {
    const response = await request(`http://127.0.0.1:${this.info.controlPort}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${this.info.token}`,
        ...(body === undefined ? {} : {'content-type': 'application/json'}),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    })
    const value = (await response.body.json()) as T & {error?: {code: string; message: string; hint?: string}}
    if (response.statusCode !== 200) {
      const error = value.error
      throw new MlopsError(
        error?.code ?? 'GATEWAY_ERROR',
        error?.message ?? `the gateway answered ${response.statusCode} to ${method} ${path}`,
        {hint: error?.hint ?? 'See .mlops/deploy/gateway.log.'},
      )
    }
    return value
  }
}

/**
 * The running gateway, or undefined when there is none (never started, stopped, or killed). Its file is how to reach it:
 * an unreadable one counts as none, and `strayGateways` finds a process that still runs without it.
 */
export async function findGateway(paths: DeployPaths): Promise<GatewayClient | undefined> {
  const info = await readJson<GatewayInfo>(paths.gateway).catch(() => undefined)
  if (!info || typeof info.pid !== 'number' || !isAlive({pid: info.pid, started: info.started})) return undefined
  return new GatewayClient(info)
}

/**
 * Gateway processes of this project that its gateway file does not lead to (the file removed or damaged): found by their
 * command line in /proc (Linux; elsewhere none), so that `down` can still stop them and `deploy` does not start a second.
 */
export function strayGateways(projectDir: string): number[] {
  let entries: string[]
  try {
    entries = readdirSync('/proc').filter((name) => /^\d+$/.test(name))
  } catch {
    return []
  }
  const pids: number[] = []
  for (const name of entries) {
    let argv: string[]
    try {
      argv = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0')
    } catch {
      continue
    }
    const at = argv.indexOf('--dir')
    if (
      argv.some((arg) => GATEWAY_ENTRY.test(arg)) &&
      at > 0 &&
      resolve(argv[at + 1] ?? '') === resolve(projectDir) &&
      Number(name) !== process.pid
    )
      pids.push(Number(name))
  }
  return pids
}

/** The gateway's entry point, from the build or the sources (see invocation.ts). */
const GATEWAY_ENTRY = /targets[/\\]local[/\\]main\.[jt]s$/

/** What a stray gateway is, for status and for a refused deploy alike. */
export function strayDescription(pids: number[], paths: DeployPaths): string {
  return `a gateway (pid ${pids.join(', ')}) runs for this project, but ${paths.gateway} does not say how to reach it (removed or damaged)`
}

function strayError(pids: number[], paths: DeployPaths): UsageError {
  return new UsageError('GATEWAY_UNREACHABLE', strayDescription(pids, paths), {
    hint: 'Run "mlops down" to stop it (it finds the process), then deploy again.',
  })
}

/** The gateway, started detached when none runs; it listens on `port` for clients. */
export async function ensureGateway(
  paths: DeployPaths,
  projectDir: string,
  port: number,
  tls?: TlsSettings,
): Promise<GatewayClient> {
  const running = await findGateway(paths)
  if (running) {
    if (running.info.port !== port)
      throw new UsageError('GATEWAY_PORT', `the gateway already listens on port ${running.info.port}, not ${port}`, {
        hint: 'Run "mlops down" first to move it to another port, or leave --port out.',
      })
    return running
  }
  const strays = strayGateways(projectDir)
  if (strays.length > 0) throw strayError(strays, paths)
  return startGateway(paths, projectDir, port, tls)
}

async function startGateway(
  paths: DeployPaths,
  projectDir: string,
  port: number,
  tls?: TlsSettings,
): Promise<GatewayClient> {
  await unlink(paths.gateway).catch(() => undefined)
  const {command, args} = gatewayInvocation()
  const logFd = openSync(paths.log, 'a', 0o600)
  const https = tls
    ? [
        ...['--tls-cert', tls.cert, '--tls-key', tls.key],
        ...(tls.clientCa ? ['--tls-client-ca', tls.clientCa] : []),
        ...(tls.upstreamCa ? ['--tls-upstream-ca', tls.upstreamCa] : []),
      ]
    : []
  const child = start(command, [...args, '--dir', projectDir, '--port', String(port), ...https], {
    cwd: projectDir,
    detached: true,
    stdout: logFd,
    stderr: logFd,
    env: process.env,
  })
  closeSync(logFd)
  let exited: string | undefined
  child.once('exit', (code, signal) => (exited = signal ?? `code ${code}`))
  child.unref()
  const deadline = Date.now() + 60_000
  while (Date.now() < deadline) {
    if (exited !== undefined) {
      const tail = (await readFile(paths.log, 'utf8').catch(() => '')).trimEnd().split('\n').slice(-15).join('\n')
      const inUse = /EADDRINUSE/.test(tail)
      throw new (inUse ? UsageError : MlopsError)(
        inUse ? 'PORT_IN_USE' : 'GATEWAY_START_FAILED',
        inUse
          ? `port ${port} is already in use, so the gateway cannot listen on it`
          : `the gateway exited (${exited}) while starting:\n${tail}`,
        {hint: inUse ? 'Pass another --port (or set deploy.port), or stop what listens there.' : `See ${paths.log}.`},
      )
    }
    const info = await readJson<GatewayInfo>(paths.gateway).catch(() => undefined)
    if (info && info.pid === child.pid) return new GatewayClient(info)
    await sleep(50)
  }
  child.kill('SIGKILL')
  throw new MlopsError('GATEWAY_START_TIMEOUT', 'the gateway did not come up within 60s', {hint: `See ${paths.log}.`})
}

/** Asks the gateway to stop (it drains and stops its model servers); kills it if it does not go within `timeoutMs`. */
export async function stopGateway(
  paths: DeployPaths,
  projectDir: string,
  timeoutMs = 30_000,
): Promise<{stopped: boolean; pid?: number}> {
  const client = await findGateway(paths)
  // Without its file, a gateway still stops on SIGTERM the same way: draining, then stopping its model servers.
  const [stray] = client ? [] : strayGateways(projectDir)
  if (!client && stray === undefined) {
    await stopOrphans(paths)
    await unlink(paths.gateway).catch(() => undefined)
    return {stopped: false}
  }
  const {pid, started} = client ? client.info : {pid: stray, started: processStart(stray)}
  if (client) await client.shutdown().catch(() => undefined)
  else process.kill(pid, 'SIGTERM')
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline && isAlive({pid, started})) await sleep(50)
  if (isAlive({pid, started})) process.kill(pid, 'SIGKILL')
  await stopOrphans(paths)
  await unlink(paths.gateway).catch(() => undefined)
  return {stopped: true, pid}
}

/** Model servers a killed gateway left behind (their pids and start times are on disk): SIGTERM, so they drain. */
export async function stopOrphans(paths: DeployPaths): Promise<number> {
  let servers: {pid: number; started?: string}[]
  try {
    servers = JSON.parse(readFileSync(paths.servers, 'utf8')) as {pid: number; started?: string}[]
  } catch {
    return 0
  }
  let stopped = 0
  for (const server of servers) {
    if (server.pid === process.pid || !isAlive(server)) continue
    process.kill(server.pid, 'SIGTERM')
    stopped++
  }
  await unlink(paths.servers).catch(() => undefined)
  return stopped
}
