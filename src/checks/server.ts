// The server under test: `mlops serve REF --port 0 --json` as a child process (the real server, as shipped), or one already running.
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {packageRoot} from '../paths.js'
import {type ProcessExit, startServeChild} from '../serve/child.js'

export interface TargetServer {
  url: string
  /** Set when this run started the server. */
  pid?: number
  /** How the child ended, waiting up to `ms` for it: undefined while it runs (and always for a server this run did not start). */
  exited(ms: number): Promise<ProcessExit | undefined>
  /** The last lines the server wrote to stderr. */
  stderrTail(): string
  stop(): Promise<void>
}

export interface StartServerOptions {
  dir: string
  ref: string
  /** Extra environment, e.g. MLOPS_FAULT_* for tests. */
  env?: Record<string, string>
  timeoutMs?: number
}

/** The CLI of the same tree as this module: the sources through oclif's development mode, or the build. */
function cliEntry(): string {
  return join(packageRoot, 'bin', fileURLToPath(import.meta.url).endsWith('.ts') ? 'dev.js' : 'run.js')
}

export async function startServer(options: StartServerOptions): Promise<TargetServer> {
  // One process: an input that crashes the server is seen as the server ending, not hidden by a worker restarted.
  const args = [
    ...[cliEntry(), 'serve', options.ref, '--port', '0', '--host', '127.0.0.1', '--json', '--dir', options.dir],
    ...['--workers', '1'],
  ]
  const server = await startServeChild({
    command: process.execPath,
    args,
    env: {...process.env, ...options.env, CI: 'true'},
    timeoutMs: options.timeoutMs ?? 60_000,
    name: `"mlops serve ${options.ref}"`,
    hint: 'Run the same "mlops serve VERSION" yourself to see why, or test a running server with --url.',
  })
  return {
    url: server.ready.url,
    pid: server.ready.pid,
    async exited(ms) {
      let timer: NodeJS.Timeout | undefined
      await Promise.race([server.exited, new Promise((resolve) => (timer = setTimeout(resolve, ms)))])
      clearTimeout(timer)
      return server.exit()
    },
    stderrTail: () => server.stderrTail().split('\n').slice(-10).join('\n'),
    stop: () => server.stop(10_000),
  }
}

/** A server someone else runs: nothing to start or stop. */
export function externalServer(url: string): TargetServer {
  return {
    url: url.replace(/\/+$/, ''),
    exited: async () => undefined,
    stderrTail: () => '',
    stop: async () => undefined,
  }
}

/** GET /v2/health/ready within `timeoutMs`: false on any answer but 200, and on no answer. */
export async function isReady(url: string, timeoutMs = 2000): Promise<boolean> {
  try {
    const response = await fetch(`${url}/v2/health/ready`, {signal: AbortSignal.timeout(timeoutMs)})
    await response.arrayBuffer()
    return response.status === 200
  } catch {
    return false
  }
}
