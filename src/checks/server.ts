// The server under test: `mlops serve REF --port 0 --json` as a child process (the real server, as shipped), or one already running.
import type {ChildProcess} from 'node:child_process'
import {join} from 'node:path'
import {createInterface} from 'node:readline'
import {fileURLToPath} from 'node:url'

import {MlopsError} from '../errors.js'
import {packageRoot} from '../paths.js'
import {start} from '../system/exec.js'

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

export interface ProcessExit {
  code: number | null
  signal: NodeJS.Signals | null
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
  const child = start(process.execPath, args, {env: {...process.env, ...options.env, CI: 'true'}})
  let stderr = ''
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString('utf8')).slice(-8000)
  })
  let exit: ProcessExit | undefined
  const exited = new Promise<void>((resolve) =>
    child.once('exit', (code, signal) => {
      exit = {code, signal}
      resolve()
    }),
  )
  const url = await readyUrl(child, exited, options.timeoutMs ?? 60_000, () => stderr)
  return {
    url,
    pid: child.pid,
    async exited(ms) {
      let timer: NodeJS.Timeout | undefined
      await Promise.race([exited, new Promise((resolve) => (timer = setTimeout(resolve, ms)))])
      clearTimeout(timer)
      return exit
    },
    stderrTail: () => stderr.trim().split('\n').slice(-10).join('\n'),
    async stop() {
      if (exit) return
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
      await exited
      clearTimeout(timer)
    },
  }
}

function readyUrl(
  child: ChildProcess,
  exited: Promise<void>,
  timeoutMs: number,
  stderr: () => string,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const lines = createInterface({input: child.stdout!})
    let settled = false
    const fail = (why: string) => {
      if (settled) return
      settled = true
      child.kill('SIGKILL')
      reject(
        new MlopsError(
          'TEST_SERVER_FAILED',
          `"mlops serve" ${why}${stderr() ? `:\n${stderr().trim().split('\n').slice(-10).join('\n')}` : ''}`,
          {hint: 'Run the same "mlops serve VERSION" yourself to see why, or test a running server with --url.'},
        ),
      )
    }
    const timer = setTimeout(() => fail(`was not ready within ${timeoutMs / 1000} s`), timeoutMs)
    lines.once('line', (line) => {
      clearTimeout(timer)
      if (settled) return
      settled = true
      try {
        resolve((JSON.parse(line) as {url: string}).url)
      } catch {
        settled = false
        fail(`printed "${line.slice(0, 200)}" instead of its ready line`)
      }
    })
    void exited.then(() => {
      clearTimeout(timer)
      fail('exited before it was ready')
    })
  })
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
